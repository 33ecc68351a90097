"""Env handles: the rollout engine's seam to environments (docs/rollout.md).

The engine never touches a Gymnasium env directly; it holds an :class:`EnvHandle`, which starts an
episode on a task, steps it with the agent's text, clones it and closes it. :class:`LocalEnvHandle`
is the in-process implementation over any ``gym.make`` stack of a branchgym ``ToolEnv`` (or any env
with ``reset``/``step`` and, for trees, ``clone``). Other implementations (a session on a remote
env server, say) only need the four methods and ``stop_strings``; a clone lives where its env
lives, so a remote handle clones on its server and a local one forks its sandbox session locally.

``as_env_handle(obj)`` turns what a rollout's ``make_env()`` returned into a handle: an object
that already is one is used as it is, anything else is wrapped in a :class:`LocalEnvHandle`.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["EnvHandle", "LocalEnvHandle", "as_env_handle", "StepResult"]

StepResult = tuple[str, float, bool, bool, dict[str, Any]]
"""``(observation, reward, terminated, truncated, info)``, as ``gymnasium.Env.step`` returns."""


@runtime_checkable
class EnvHandle(Protocol):
    """One episode's environment, as the rollout engine sees it.

    Contract:

    - ``start(seed, options) -> (observation, info)``: begin an episode. ``options`` carries the
      task (``{"task_id": ...}`` or ``{"index": ...}``); ``info["messages"]`` (chat messages) is
      what the engine tokenises into the prompt; without it the observation is the user turn.
    - ``step(action) -> (observation, reward, terminated, truncated, info)``: ``action`` is the
      decoded text of one model segment. It may run for seconds (a tool call) and is called from
      a worker thread of the engine's tool executor, at most once at a time per handle. An
      exception it raises ends that trajectory only (``end_reason == "env_error"``).
    - ``clone() -> EnvHandle``: an independent handle whose future equals this one's for the same
      actions (tree rollouts). Raise ``branchgym.errors.SandboxError`` when this one clone
      cannot be made now (the tree rollout records "no branch here" and goes on), and
      ``branchgym.errors.CloneNotSupported`` when the env can never clone (the rollout stops:
      a tree rollout needs a clonable env).
    - ``close()``: release the episode's resources (sandbox session, connections); idempotent.
    - ``stop_strings``: the tool-call protocol's stop strings (``("</search>", ..., "</answer>")``),
      which end a generated segment.
    """

    stop_strings: tuple[str, ...]

    def start(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]: ...

    def step(self, action: str) -> StepResult: ...

    def clone(self) -> EnvHandle: ...

    def close(self) -> None: ...


class LocalEnvHandle:
    """An :class:`EnvHandle` over an env in this process (``gym.make(...)`` or a ``ToolEnv``).

    ``clone()`` uses :func:`branchgym.envs.clone.clone`, which copies the wrapper stack and forks
    the python tool's sandbox session in place (the fork stays on the host that runs the session).
    """

    def __init__(self, env: Any) -> None:
        self.env = env
        proto = getattr(getattr(env, "unwrapped", env), "protocol", None)
        self.stop_strings: tuple[str, ...] = tuple(getattr(proto, "stop_strings", ()) or ())

    def start(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        return self.env.reset(seed=seed, options=options)

    def step(self, action: str) -> StepResult:
        return self.env.step(action)

    def clone(self) -> LocalEnvHandle:
        from branchgym.envs.clone import clone

        return LocalEnvHandle(clone(self.env))

    def close(self) -> None:
        self.env.close()

    def __repr__(self) -> str:
        return f"LocalEnvHandle({self.env!r})"


def as_env_handle(obj: Any) -> EnvHandle:
    """``obj`` if it already is an :class:`EnvHandle`, else a :class:`LocalEnvHandle` around it."""
    if isinstance(obj, EnvHandle):
        return obj
    if not (callable(getattr(obj, "reset", None)) and callable(getattr(obj, "step", None))):
        raise TypeError(
            f"expected an env (reset/step) or an EnvHandle (start/step/clone/close), got "
            f"{type(obj).__name__}; make_env() must return gym.make(...) or an EnvHandle"
        )
    return LocalEnvHandle(obj)
