"""An ``environment_factory`` class for TRL's ``GRPOTrainer``: the env's tools as methods.

TRL's own tool loop (``GRPOTrainer(environment_factory=...)``) makes one instance per rollout,
calls ``reset(**row)`` before generation, exposes every public method as a tool in the chat
template's tool-calling format (hermes-style ``<tool_call>`` JSON for Qwen templates), runs the
calls the model makes, masks the tool-response tokens out of the loss, and scores the rollout
with ``get_reward()``.

:func:`environment_class` builds such a class for a branchgym env. Its methods are the env's
enabled tools (``search(query)``, ``python(code)``, ``browse(url)``, each documented from the
tool's own schema, so TRL renders a correct JSON schema) plus ``answer(answer)``, which submits the
final answer. Each method sends the call to the branchgym env as one action (written in the env's
protocol, e.g. ``<search>q</search>``), so the env's limits, sandbox and reward all apply; the
method returns the env's observation. ``get_reward()`` is the sum of the env's step rewards (0
when the model never answered).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from branchgym.errors import ConfigError

__all__ = ["ToolEnvironment", "environment_class"]

_TYPES = {"string": str, "integer": int, "number": float, "boolean": bool}


class ToolEnvironment:
    """Base of the classes :func:`environment_class` builds (no public methods but the protocol's)."""

    _make_env: Callable[[], Any]

    def __init__(self) -> None:
        self._env = type(self)._make_env()
        self._base = self._env.unwrapped
        self._return = 0.0
        self._done = True
        self.episode: list[tuple[str, float]] = []
        """This episode's (action sent to the env, reward) pairs."""
        self.task_id: str | None = None
        """The task of this episode (from ``info["task"]``)."""

    def reset(self, **row: Any) -> str:
        """Start an episode on ``row["task_id"]`` (else the env draws a task); returns the question,
        which TRL appends to the prompt's last user message."""
        tid = row.get("task_id")
        _, info = self._env.reset(options={"task_id": str(tid)} if tid is not None else None)
        self._return, self._done, self.episode = 0.0, False, []
        self.task_id = (info.get("task") or {}).get("id", tid)
        messages = info.get("messages") or []
        if not messages:
            raise ConfigError(f"{self._env!r} returned no info['messages'] from reset(); it is not a branchgym ToolEnv.")
        return str(messages[-1]["content"])

    def get_reward(self) -> float:
        """The env's reward for this episode (sum of its step rewards; 0 without an answer)."""
        return self._return

    def _act(self, action: str) -> str:
        if self._done:
            return "The episode is over; no more tool calls are accepted."
        obs, reward, terminated, truncated, _ = self._env.step(action)
        self._return += float(reward)
        self.episode.append((action, float(reward)))
        self._done = bool(terminated or truncated)
        return obs.strip()

    def _call(self, tool: str, value: Any) -> str:
        main = getattr(self._base.tools[tool], "main_arg", "input")
        return self._act(self._base.protocol.format_call(tool, str(value), main))

    def answer(self, answer: str) -> str:
        """Submit the final answer; this ends the episode.

        Args:
            answer: the final answer, as short as possible (a name, a number, a date).

        Returns:
            A confirmation.
        """
        obs = self._act(self._base.protocol.format_answer(answer))
        return obs or "Answer submitted."

    def _close(self) -> None:
        self._env.close()


def _tool_method(name: str, schema: dict[str, Any]) -> Callable[..., str]:
    params = schema.get("parameters") or {}
    props = params.get("properties") or {}
    if len(props) != 1:
        raise ConfigError(f"tool {name!r} has parameters {sorted(props)}; the TRL adapter supports one-argument "
                          "tools (every branchgym tool has one).")
    (arg, spec), = props.items()
    kind = _TYPES.get(spec.get("type", "string"), str)

    def method(self: ToolEnvironment, *args: Any, **kwargs: Any) -> str:
        bound = method.__signature__.bind(self, *args, **kwargs)  # type: ignore[attr-defined]
        return self._call(name, bound.arguments[arg])

    method.__name__ = method.__qualname__ = name
    method.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
         inspect.Parameter(arg, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=kind)],
        return_annotation=str,
    )
    method.__annotations__ = {arg: kind, "return": str}
    desc = " ".join(str(schema.get("description") or f"The {name} tool.").split())
    method.__doc__ = (f"{desc}\n\nArgs:\n    {arg}: {' '.join(str(spec.get('description', arg)).split())}\n\n"
                      f"Returns:\n    The {name} tool's output.")
    return method


def environment_class(make_env: Callable[[], Any], *, name: str = "BranchgymEnv") -> type[ToolEnvironment]:
    """A class for ``GRPOTrainer(environment_factory=...)`` over the env ``make_env()`` builds.

    One env is built here to read its tools; each instance TRL makes builds its own. ``name`` is
    the class name, under which TRL logs the reward (``rewards/<name>/mean``).
    """
    if not callable(make_env):
        raise ConfigError(f"make_env={make_env!r} must be a callable that returns a branchgym env.")
    probe = make_env()
    try:
        base = probe.unwrapped
        tools = getattr(base, "tools", None)
        if not isinstance(tools, dict) or not hasattr(base, "protocol"):
            raise ConfigError(f"{probe!r} is not a branchgym ToolEnv (no tools/protocol); environment_class needs one.")
        methods = {n: _tool_method(n, t.schema()) for n, t in tools.items()}
    finally:
        probe.close()
    clash = set(methods) & {"reset", "get_reward", "answer"}
    if clash:
        raise ConfigError(f"tool names {sorted(clash)} clash with the environment protocol's methods.")
    return type(name, (ToolEnvironment,), {"_make_env": staticmethod(make_env), **methods,
                                            "__doc__": f"TRL environment over {base!r}: tools {sorted(methods)} + answer."})
