"""Fixtures for the algorithms tests: verl's reference ``core_algos`` (test extra) and helpers."""

from __future__ import annotations

import importlib
import os
from typing import Any

import pytest


def import_verl(module: str) -> Any:
    """A verl module, the reference implementation. Off CI a missing install skips with the fix;
    in CI (``BRANCHGYM_REQUIRE_DOCKER=1``, where ``make setup`` installs it) it fails, so a
    dependency the project forgot to install cannot hide the reference tests."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        msg = (f"verl's {module} does not import ({e}); it is the reference implementation: "
               f"`make setup` installs it (pip install --no-deps verl==0.9.1 and the test extra)")
        if os.environ.get("BRANCHGYM_REQUIRE_DOCKER"):
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="session")
def verl_core() -> Any:
    """verl's ``core_algos`` (installed with ``pip install --no-deps verl==0.9.1``; test extra)."""
    return import_verl("verl.trainer.ppo.core_algos")


@pytest.fixture(scope="session")
def verl_actor_config() -> Any:
    """Factory for verl ``ActorConfig`` objects with given clip settings."""
    import_verl("verl.workers.config")
    from verl.workers.config import ActorConfig, PolicyLossConfig

    def make(
        clip_low: float = 0.2, clip_high: float = 0.2, c: float = 3.0, **policy_loss: Any
    ) -> Any:
        return ActorConfig(
            strategy="fsdp",
            rollout_n=4,
            clip_ratio=clip_low,
            clip_ratio_low=clip_low,
            clip_ratio_high=clip_high,
            clip_ratio_c=c,
            ppo_micro_batch_size_per_gpu=1,
            policy_loss=PolicyLossConfig(**policy_loss) if policy_loss else PolicyLossConfig(),
        )

    return make
