"""``make_vec(id, n, mode)``: a Gymnasium vector env of ``ToolEnv``s.

Gymnasium's ``AsyncVectorEnv`` puts observations in shared memory by default, which for
``Text`` spaces silently yields zero-filled (empty) strings; ``make_vec`` always passes
``shared_memory=False`` so that observations are pickled through the pipes instead.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from branchgym.errors import ConfigError

__all__ = ["make_vec"]

_MODES = ("sync", "async")


def make_vec(env_id: str, n: int, mode: str = "sync", **kwargs: Any) -> gym.vector.VectorEnv:
    """``n`` copies of ``gym.make(env_id, **kwargs)`` in a sync or async vector env.

    Args:
        env_id: a registered id, e.g. ``"WebSearch-Offline-v0"``.
        n: number of sub-envs (>= 1).
        mode: ``"sync"`` (one process) or ``"async"`` (one worker process per sub-env).
        **kwargs: passed to every ``gym.make`` (``tools``, ``protocol``, ``split``, ...).
    """
    if not isinstance(n, int) or n < 1:
        raise ConfigError(f"make_vec(n={n!r}): n must be an int >= 1.")
    if mode not in _MODES:
        raise ConfigError(f"make_vec(mode={mode!r}): use one of {list(_MODES)}.")
    fns = [lambda: gym.make(env_id, **kwargs) for _ in range(n)]
    if mode == "sync":
        return gym.vector.SyncVectorEnv(fns)
    # shared_memory=False: Text observations cannot live in shared memory (they read back empty).
    return gym.vector.AsyncVectorEnv(fns, shared_memory=False, context="spawn")
