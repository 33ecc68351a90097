"""``branchgym compare``: algorithm presets against each other at an equal budget, over seeds.

See docs/compare.md. Entry points: :class:`CompareConfig`, :func:`run_compare`, :func:`write_report`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CompareConfig", "run_compare", "write_report"]


def __getattr__(name: str) -> Any:  # lazy: `branchgym --help` imports no torch
    if name == "CompareConfig":
        from branchgym.algorithms.compare.config import CompareConfig

        return CompareConfig
    if name == "run_compare":
        from branchgym.algorithms.compare.runner import run_compare

        return run_compare
    if name == "write_report":
        from branchgym.algorithms.compare.report import write_report

        return write_report
    raise AttributeError(name)
