"""The hostile-input suite: code, pages, files and configs written to break branchgym.

Every test here reproduces one attack or one damaged input and checks that it is contained and
reported (an observation, a clear error, a restarted session) and that nothing is lost. All of
them carry the ``hostile`` marker (``pytest -m hostile`` runs the suite alone); the Docker
variants also carry ``docker`` and run in CI.
"""

from __future__ import annotations

import pathlib

import pytest

_HERE = pathlib.Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _HERE in pathlib.Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.hostile)
