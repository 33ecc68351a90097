"""branchgym envs as GEM envs (``pip install 'branchgym[gem]'``; docs/integrations/gem.md).

:class:`BranchgymGemEnv` is a ``gem.Env`` around one branchgym env (a whole ``gym.make`` stack).
GEM's API is Gymnasium's text form, so ``reset`` and ``step`` pass through: observations and
actions are strings, ``step`` returns ``(obs, reward, terminated, truncated, info)``.

``spawn(same_state=True)`` is :func:`branchgym.envs.clone`: a mid-episode copy whose future
equals this env's for the same actions and whose state is independent afterwards (the python
tool's sandbox session is forked: interpreter state and workspace files). GEM's own envs copy
only a start state; this one can branch anywhere in an episode. ``spawn(same_state=False)``
builds a fresh env of the same kind (keyword arguments override its settings).

Registration: ``"branchgym:<id>"`` for every branchgym Gymnasium id (``gem.make(
"branchgym:WebSearch-Offline-v0", split="smoke")``), and ``"branchgym:env"``, which takes
``env=<id or "module:factory">``. GEM has no plugin mechanism; branchgym's import hook
(``branchgym-gymnasium.pth``, installed with the wheel) registers them as soon as ``gem.envs`` is
imported, so nothing needs importing by hand; ``import branchgym.integrations.gem`` registers
them too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

try:
    from gem.core import Env as GemEnv
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError(f"branchgym.integrations.gem needs GEM: pip install 'branchgym[gem]' ({e})") from e

from branchgym.errors import ConfigError
from branchgym.integrations.envspec import branchgym_env_ids, build_env

__all__ = ["BranchgymGemEnv", "register_gem_envs", "ID_PREFIX"]

ID_PREFIX = "branchgym:"


class BranchgymGemEnv(GemEnv):
    """A branchgym env as a ``gem.Env``.

    Args:
        env: a Gymnasium id, ``"module:factory"`` or a callable returning a branchgym env.
        task_id: play this task on every reset (default: the env draws one, seeded by ``seed``).
        seed: the seed of the first ``reset()`` without one (``gem.make_vec`` passes one per env).
        **env_kwargs: keyword arguments for ``gym.make`` / the factory (``split="smoke"``, ...).
    """

    def __init__(self, env: str | Callable[..., Any] = "", *, task_id: str | None = None, seed: int | None = None,
                 **env_kwargs: Any) -> None:
        super().__init__()
        if not env:
            raise ConfigError(
                "BranchgymGemEnv needs env=<Gymnasium id or 'module:factory'>; or make 'branchgym:<id>', e.g. "
                "gem.make('branchgym:WebSearch-Offline-v0')."
            )
        self._spec = (env, dict(env_kwargs))
        self.env = build_env(env, env_kwargs)
        self.task_id = task_id
        self._seed = seed

    @classmethod
    def _around(cls, inner: Any, like: BranchgymGemEnv) -> BranchgymGemEnv:
        twin = object.__new__(cls)
        twin.__dict__.update(like.__dict__)
        twin.env = inner
        return twin

    def reset(self, seed: int | None = None, task_id: str | None = None) -> tuple[str, dict[str, Any]]:
        """Start an episode (``task_id`` here or in the constructor picks the task)."""
        if seed is None:
            seed, self._seed = self._seed, None
        tid = task_id if task_id is not None else self.task_id
        return self.env.reset(seed=seed, options={"task_id": str(tid)} if tid is not None else None)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """The model's text to the env; Gymnasium's 5-tuple back."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, float(reward), bool(terminated), bool(truncated), info

    def spawn(self, same_state: bool = False, **kwargs: Any) -> BranchgymGemEnv:
        """``same_state=True``: :func:`branchgym.envs.clone` of this env, mid-episode (no kwargs);
        else a fresh env of the same kind, ``kwargs`` overriding its settings."""
        if same_state:
            if kwargs:
                raise ConfigError(f"spawn(same_state=True) copies this env as it is; it takes no settings, got "
                                  f"{sorted(kwargs)}. Use spawn(same_state=False, ...) for a changed env.")
            from branchgym.envs.clone import clone

            return self._around(clone(self.env), self)
        env, env_kwargs = self._spec
        task_id = kwargs.pop("task_id", self.task_id)
        seed = kwargs.pop("seed", None)
        return type(self)(env, task_id=task_id, seed=seed, **{**env_kwargs, **kwargs})

    def sample_random_action(self) -> str:
        """A well-formed call of a random enabled tool (or a final answer when there is none)."""
        base = self.env.unwrapped
        names = sorted(base.tools)
        rng = base.np_random
        if not names:
            return base.protocol.format_answer("unknown")
        name = names[int(rng.integers(len(names)))]
        return base.protocol.format_call(name, "test", getattr(base.tools[name], "main_arg", "input"))

    def get_state(self) -> dict[str, Any]:
        """The base env's JSON snapshot (``ToolEnv.get_state``)."""
        return self.env.unwrapped.get_state()

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`get_state` snapshot."""
        self.env.unwrapped.set_state(state)

    def close(self) -> None:
        """Close the env (its sandbox sessions). Idempotent."""
        self.env.close()

    def __repr__(self) -> str:
        return f"BranchgymGemEnv({self.env!r})"


def register_gem_envs() -> None:
    """Register ``"branchgym:env"`` and ``"branchgym:<id>"`` for every branchgym id. Idempotent."""
    from gem.envs.registration import ENV_REGISTRY, register

    entry = f"{__name__}:BranchgymGemEnv"
    if ID_PREFIX + "env" not in ENV_REGISTRY:
        register(ID_PREFIX + "env", entry)
    for env_id in branchgym_env_ids():
        if ID_PREFIX + env_id not in ENV_REGISTRY:
            register(ID_PREFIX + env_id, entry, env=env_id)


register_gem_envs()
