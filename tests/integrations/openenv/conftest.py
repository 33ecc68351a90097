"""Fixtures: one ``branchgym serve`` process and the tiny model, shared by the session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from openenv_server import start_server  # noqa: E402


@pytest.fixture(scope="session")
def code_server():
    """CodeExec (python tool, Docker sandbox) on the smoke split."""
    server = start_server("CodeExec-Offline-v0", "split=smoke", "sandbox=docker")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tiny_model():
    """The rollout tests' tiny model (same config, same cache)."""
    from branchgym.agents import tiny

    return tiny.build_cached(vocab_size=1024, layers=2, hidden=64, head_dim=32, kv_heads=1,
                             intermediate=128, seed=0)
