"""Fixtures for the policy tests: one tiny model per machine (cached), an HF policy over it.

The tiny model is built once (~30 s of CPU: tokenizer training + a short pretraining so that it
closes tool tags) and cached by ``branchgym.agents.tiny.build_cached`` (``$BRANCHGYM_CACHE`` or
``~/.cache/branchgym``), keyed by its config and ``tiny.py``, so tests reuse it across sessions.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TEST_TINY = {"vocab_size": 2048, "layers": 2, "hidden": 64, "pretrain_steps": 200, "seed": 0}


def tiny_model_dir(**cfg: int) -> Path:
    """Build (once per machine) and return the cached tiny model for ``cfg``."""
    from branchgym.agents import tiny

    return tiny.build_cached(**cfg)


@pytest.fixture(scope="session")
def tiny_path() -> Path:
    return tiny_model_dir(**TEST_TINY)


@pytest.fixture(scope="session")
def hf_policy(tiny_path):
    from branchgym.agents.hf import HFPolicy

    return HFPolicy(tiny_path, device="cpu", seed=0)


@pytest.fixture(autouse=True, scope="module")
def _user_tools_stay_in_their_module():
    """Modules here register the README's ``calculator`` tool; the registry is process-wide, so
    it is removed again after the module, and the rest of the suite sees only what it registers."""
    from branchgym.envs import TOOLS

    before = set(TOOLS)
    yield
    for name in set(TOOLS) - before:
        TOOLS.unregister(name)
