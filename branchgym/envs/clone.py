"""``clone(env)``: clone a whole wrapper stack as ``gym.make`` returns it.

Each wrapper is copied (a shallow copy whose mutable containers — lists, dicts, sets, deques,
arrays — are copied one level deep, so counters such as TimeLimit's ``_elapsed_steps``,
OrderEnforcing's ``_has_reset``, PassiveEnvChecker's flags and RecordEpisodeStatistics' running
sums and queues are independent) and re-pointed at the clone of the env below it; the base env
is cloned with its own ``clone()``. A wrapper whose state needs more than that defines
``clone_wrapper(self, inner) -> Wrapper``.
"""

from __future__ import annotations

import copy
import sys
import types
from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np

from branchgym.errors import CloneNotSupported

__all__ = ["clone"]

_CONTAINERS = (list, dict, set, deque, np.ndarray, bytearray)


def clone(env: gym.Env[Any, Any]) -> gym.Env[Any, Any]:
    """Return an independent copy of ``env`` (wrappers included) with an equal future.

    Raises:
        CloneNotSupported: the base env has no ``clone()`` (e.g. a vector env or a
            third-party env); the message names it.
    """
    if isinstance(env, gym.Wrapper):
        inner = clone(env.env)
        custom = getattr(env, "clone_wrapper", None)
        if callable(custom):
            return custom(inner)
        twin = copy.copy(env)
        for key, value in vars(twin).items():
            if key != "env" and isinstance(value, _CONTAINERS):
                setattr(twin, key, copy.copy(value))
            elif isinstance(value, np.random.Generator):
                setattr(twin, key, copy.deepcopy(value))
        twin.env = inner
        return twin
    method = getattr(env, "clone", None)
    if not callable(method):
        raise CloneNotSupported(
            f"{type(env).__name__} has no clone() method, so it cannot be cloned; only "
            "branchgym ToolEnv stacks (and envs that implement clone()) can."
        )
    return method()


class _CallableModule(types.ModuleType):
    """This module, callable as :func:`clone`.

    ``clone`` is both this submodule's name and the function users call as
    ``branchgym.envs.clone(env)``. Importing the submodule makes Python set the package attribute
    ``branchgym.envs.clone`` to the *module*, which would shadow the function; making the module
    callable keeps ``branchgym.envs.clone(env)`` and ``from branchgym.envs.clone import clone``
    both working.
    """

    def __call__(self, env: gym.Env[Any, Any]) -> gym.Env[Any, Any]:
        return clone(env)


sys.modules[__name__].__class__ = _CallableModule
