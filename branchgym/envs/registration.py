"""Registration of branchgym's env ids with Gymnasium (lazy string entry points).

``register_envs()`` is called by the ``gymnasium.envs`` import hook (``branchgym/_gym_hook.py``)
and by the ``gymnasium.envs`` entry point, so ``gym.make("WebSearch-Offline-v0")`` works without
``import branchgym``. It imports nothing heavy: the entry point is the string
``"branchgym.envs.core:ToolEnv"``, loaded by ``gym.make``.

Offline families (README: Environments); every kwarg can be overridden in ``gym.make(id,
**kwargs)``.
They draw from the ``train`` split unless ``split=`` says otherwise (evaluate on ``"test"``):

=========================  ==========================  =========================  =========
id                         source                      tools                      max_turns
=========================  ==========================  =========================  =========
WebSearch-Offline-v0       offline-websearch           search                     16
Browse-Offline-v0          offline-browse              browse                     16
CodeExec-Offline-v0        offline-codeexec            python                     8
DeepResearch-Offline-v0    offline-deepresearch        search, browse, python     24
=========================  ==========================  =========================  =========
"""

from __future__ import annotations

from typing import Any

__all__ = ["register_envs", "OFFLINE_ENVS", "ENTRY_POINT"]

ENTRY_POINT = "branchgym.envs.core:ToolEnv"

#: id -> default kwargs of the offline envs.
OFFLINE_ENVS: dict[str, dict[str, Any]] = {
    "WebSearch-Offline-v0": {
        "source": "offline-websearch",
        "split": "train",
        "tools": ("search",),
        "max_turns": 16,
        "reward": "f1",
    },
    "Browse-Offline-v0": {
        "source": "offline-browse",
        "split": "train",
        "tools": ("browse",),
        "max_turns": 16,
        "reward": "f1",
    },
    "CodeExec-Offline-v0": {
        "source": "offline-codeexec",
        "split": "train",
        "tools": ("python",),
        "max_turns": 8,
        "reward": "math_equal",
    },
    "DeepResearch-Offline-v0": {
        "source": "offline-deepresearch",
        "split": "train",
        "tools": ("search", "browse", "python"),
        "max_turns": 24,
        "max_calls": {"search": 10, "browse": 10, "python": 5},
        "reward": "f1",
    },
}


def register_envs() -> None:
    """Register every branchgym env id with Gymnasium. Idempotent; imports nothing heavy."""
    from gymnasium.envs.registration import register, registry

    for env_id, kwargs in OFFLINE_ENVS.items():
        if env_id not in registry:
            # No max_episode_steps: the env truncates at max_turns itself, with a message.
            register(id=env_id, entry_point=ENTRY_POINT, kwargs=dict(kwargs))

    from branchgym.envs.benchmarks.table import register_benchmark_envs  # real benchmarks

    register_benchmark_envs()
