"""What the SkyRL-gym and GEM adapters share: building a branchgym env from a name, and the ids.

An env is named the way ``branchgym train --env`` names it: a Gymnasium id
(``"WebSearch-Offline-v0"``, a benchmark id, ...) or ``"package.module:factory"`` (e.g.
``"branchgym.algorithms.quickstart_task:make_lookup_env"``); keyword arguments go to
``gym.make`` or to the factory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from branchgym.errors import ConfigError

__all__ = ["build_env", "branchgym_env_ids", "ENTRY_POINT"]

ENTRY_POINT = "branchgym.envs.core:ToolEnv"


def build_env(env: str | Callable[..., Any], env_kwargs: Mapping[str, Any] | None = None) -> Any:
    """A fresh branchgym env: ``gym.make(env, **env_kwargs)``, ``factory(**env_kwargs)`` for a
    ``"module:factory"`` string, or ``env(**env_kwargs)`` for a callable."""
    kw = dict(env_kwargs or {})
    if callable(env):
        return env(**kw)
    if not isinstance(env, str) or not env:
        raise ConfigError(
            f"env={env!r}: name a branchgym env by its Gymnasium id ('WebSearch-Offline-v0') or as "
            "'package.module:factory'."
        )
    from branchgym.algorithms.trainer import make_env_factory

    split = str(kw.pop("split", "train"))
    return make_env_factory(env, kw, split)()


def branchgym_env_ids() -> list[str]:
    """Every Gymnasium id whose entry point is branchgym's ``ToolEnv`` (offline envs, benchmarks)."""
    from gymnasium.envs.registration import registry

    from branchgym.envs.registration import register_envs

    register_envs()
    return sorted(i for i, s in registry.items() if s.entry_point == ENTRY_POINT)
