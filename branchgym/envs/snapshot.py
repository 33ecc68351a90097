"""JSON snapshots of a ``ToolEnv`` episode (``get_state``/``set_state``) and RNG copies.

A snapshot holds the episode's bookkeeping (task, messages, counters), the ``np_random`` state and
every tool's own state; tools decide how they restore (the python tool replays its code).

``restore`` checks the *whole* snapshot before it changes anything — every key present and no
other, types, ranges (``0 <= turn <= max_turns``, call counts within the env's limits), sizes (text
at most :func:`max_snapshot_chars`, JSON nesting at most :data:`MAX_DEPTH`), and each tool's state
(``Tool.check_state``) — and raises :class:`~branchgym.errors.InvalidSnapshot` naming the first
bad field. Then it applies the snapshot all or nothing: tools first (a tool that fails puts back
the tools already restored), then the env's own fields, which cannot fail.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from branchgym.errors import InvalidSnapshot

__all__ = [
    "STATE_VERSION",
    "MAX_DEPTH",
    "snapshot",
    "restore",
    "check_snapshot",
    "max_snapshot_chars",
    "json_size",
    "copy_rng",
    "rng_from_state",
]

STATE_VERSION = 1
#: The deepest JSON nesting a snapshot may hold (task metadata, tool states).
MAX_DEPTH = 64
_KEYS = frozenset({"version", "task", "messages", "response", "turn", "calls", "refused",
                   "invalid", "chars", "tokens", "done", "np_random", "tools"})
_ROLES = frozenset({"system", "user", "assistant", "tool"})
_BIT_GENERATORS = frozenset({"PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"})
_HINT = "pass a dict from ToolEnv.get_state() of an env built with the same arguments"


def copy_rng(rng: np.random.Generator) -> np.random.Generator:
    """An independent generator in the same state (4x faster than ``deepcopy``)."""
    return rng_from_state(rng.bit_generator.state)


def rng_from_state(state: Mapping[str, Any]) -> np.random.Generator:
    """A generator whose bit generator (named in ``state``) is in ``state``."""
    bitgen = getattr(np.random, state["bit_generator"])(0)
    bitgen.state = state
    return np.random.Generator(bitgen)


def snapshot(env: Any) -> dict[str, Any]:
    """``env.get_state()``: the episode of a ``ToolEnv`` as a JSON-serialisable dict."""
    return {
        "version": STATE_VERSION,
        "task": None if env._task is None else env._task.to_dict(),
        "messages": [dict(m) for m in env._messages],
        "response": list(env._response),
        "turn": env._turn,
        "calls": dict(env._calls),
        "refused": dict(env._refused),
        "invalid": env._invalid,
        "chars": env._chars,
        "tokens": env._tokens,
        "done": env._done,
        "np_random": None if env._np_random is None else env._np_random.bit_generator.state,
        "tools": {name: tool.get_state() for name, tool in env.tools.items()},
    }


def _bad(field: str, problem: str, value: Any = ...) -> InvalidSnapshot:
    got = "" if value is ... else f" (got {_show(value)})"
    return InvalidSnapshot(field, f"set_state: snapshot field {field!r} {problem}{got}; "
                                  f"nothing was changed. {_HINT}.")


def _show(value: Any) -> str:
    if isinstance(value, (str, list, dict, tuple)) and len(value) > 40:
        return f"{type(value).__name__} of length {len(value)}"
    try:
        text = repr(value)
    except RecursionError:
        text = f"a deeply nested {type(value).__name__}"
    return text if len(text) <= 80 else text[:77] + "..."


def json_size(value: Any, *, max_depth: int = MAX_DEPTH) -> int:
    """Characters of text in a JSON value (strings and keys), checked without recursion.

    Raises:
        ValueError: nesting deeper than ``max_depth``, or a non-JSON type (names it).
    """
    total, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            raise ValueError(f"is nested deeper than {max_depth} levels")
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, Mapping):
            for k, v in item.items():
                if not isinstance(k, str):
                    raise ValueError(f"has a non-string key {_show(k)}")
                total += len(k)
                stack.append((v, depth + 1))
        elif isinstance(item, (list, tuple)):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError(f"holds the non-finite number {item!r}")
        elif item is not None and not isinstance(item, (bool, int)):
            raise ValueError(f"holds a {type(item).__name__}, which is not JSON")
    return total


def max_snapshot_chars(env: Any) -> int:
    """The most text ``messages`` (and ``response``) may hold: twice the context budget plus
    twice the largest observation/action, which covers the step that crosses the budget."""
    space = getattr(env.observation_space, "max_length", 1_000_000)
    return 2 * (env.max_context_chars + int(space))


def _count(state: Mapping[str, Any], field: str, high: int) -> int:
    value = state[field]
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= high:
        raise _bad(field, f"must be an int in [0, {high}]", value)
    return value


def _check_text(field: str, items: Any, limit: int, count: int) -> None:
    if not isinstance(items, list) or len(items) > count:
        raise _bad(field, f"must be a list of at most {count} entries", items)
    total = 0
    for i, item in enumerate(items):
        if field == "messages":
            if not isinstance(item, dict) or not {"role", "content"} <= set(item) <= {
                    "role", "content", "name"}:
                raise _bad(f"messages[{i}]", "must be a dict with 'role', 'content' (and "
                           "'name' for a tool)", item)
            if item["role"] not in _ROLES or not all(isinstance(v, str) for v in item.values()):
                raise _bad(f"messages[{i}]", f"needs a role in {sorted(_ROLES)} and str "
                           "values", item)
            total += len(item["content"])
        elif not isinstance(item, str):
            raise _bad(f"{field}[{i}]", "must be a str", item)
        else:
            total += len(item)
        if total > limit:
            raise _bad(field, f"holds more than {limit} characters of text")


def _check_task(env: Any, task: Any, done: Any) -> Any:
    from branchgym.envs.types import Task

    if task is None:
        if done is not True:
            raise _bad("done", "must be True when 'task' is None (no episode)", done)
        return None
    if not isinstance(task, dict):
        raise _bad("task", "must be None or a dict from Task.to_dict()", task)
    fields = {"id": str, "question": str, "answer_type": str, "family": str, "split": str}
    for name, kind in fields.items():
        if name in task and not isinstance(task[name], kind):
            raise _bad(f"task.{name}", f"must be a {kind.__name__}", task[name])
    answers = task.get("answers")
    if not isinstance(answers, list) or not answers or not all(
            isinstance(a, str) for a in answers):
        raise _bad("task.answers", "must be a non-empty list of str", answers)
    level = task.get("level")
    if level is not None and (not isinstance(level, int) or isinstance(level, bool)):
        raise _bad("task.level", "must be None or an int", level)
    gold = task.get("gold_path", [])
    if not isinstance(gold, list) or not all(
            isinstance(g, dict) and set(g) <= {"tool", "argument", "expect"}
            and isinstance(g.get("tool"), str) and isinstance(g.get("argument"), str)
            and (g.get("expect") is None or isinstance(g["expect"], str)) for g in gold):
        raise _bad("task.gold_path", "must be a list of {tool, argument, expect} dicts", gold)
    if not isinstance(task.get("metadata", {}), dict):
        raise _bad("task.metadata", "must be a dict", task.get("metadata"))
    try:
        if json_size(task) > max_snapshot_chars(env):
            raise ValueError(f"holds more than {max_snapshot_chars(env)} characters")
        return Task.from_dict(task)
    except (TypeError, ValueError) as exc:
        raise _bad("task", f"is not a task: {exc}") from None


def _check_counters(env: Any, state: Mapping[str, Any]) -> int:
    turn = _count(state, "turn", env.max_turns)
    for field in ("calls", "refused"):
        counts = state[field]
        if not isinstance(counts, dict) or set(counts) != set(env.tools):
            raise _bad(field, f"must map exactly the env's tools {sorted(env.tools)} to "
                       "counts", counts)
        for name, value in counts.items():
            limit = env.max_calls.get(name) if field == "calls" else None
            high = turn if limit is None else min(turn, limit)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= high:
                raise _bad(f"{field}.{name}", f"must be an int in [0, {high}] (turn={turn}"
                           + (f", limit {limit})" if limit is not None else ")"), value)
    _count(state, "invalid", turn)
    _count(state, "chars", max_snapshot_chars(env))
    _count(state, "tokens", 4 * max_snapshot_chars(env))  # a character can be several tokens
    return turn


def _check_rng(value: Any) -> np.random.Generator | None:
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("bit_generator") not in _BIT_GENERATORS:
        raise _bad("np_random", f"must be None or a bit generator state naming one of "
                   f"{sorted(_BIT_GENERATORS)}", value)
    try:
        json_size(value, max_depth=8)
        return rng_from_state(value)
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise _bad("np_random", f"is not a valid {value['bit_generator']} state: {exc}") from None


def check_snapshot(env: Any, state: Any) -> dict[str, Any]:
    """Check every field of ``state`` against ``env``; return the parsed values to apply.

    Raises:
        InvalidSnapshot: the first bad field, named, with its value and the fix.
    """
    if not isinstance(state, Mapping):
        raise _bad("snapshot", "must be a dict from ToolEnv.get_state()", type(state).__name__)
    if state.get("version") != STATE_VERSION or isinstance(state.get("version"), bool):
        raise _bad("version", f"must be {STATE_VERSION}", state.get("version"))
    missing, extra = _KEYS - set(state) - {"tokens"}, set(state) - _KEYS
    if missing or extra:
        name = sorted(missing or extra)[0]
        raise _bad(name, "is missing" if missing else "is not a snapshot field")
    if not isinstance(state["done"], bool):
        raise _bad("done", "must be a bool", state["done"])
    task = _check_task(env, state["task"], state["done"])
    if task is None and state["turn"] != 0:
        raise _bad("turn", "must be 0 when 'task' is None", state["turn"])
    state = dict(state)
    state.setdefault("tokens", 0)  # snapshots written before token budgets
    turn = _check_counters(env, state)
    limit = max_snapshot_chars(env)
    # per turn: the action, a tool result or feedback, and a final truncation message
    _check_text("messages", state["messages"], limit, 3 * turn + 2)
    _check_text("response", state["response"], limit, 2 * turn)
    rng = _check_rng(state["np_random"])
    tools = state["tools"]
    if not isinstance(tools, dict) or set(tools) != set(env.tools):
        raise _bad("tools", f"must map exactly the env's tools {sorted(env.tools)} to their "
                   "states", tools)
    for name, tool_state in tools.items():
        try:
            env.tools[name].check_state(tool_state)
        except (TypeError, ValueError) as exc:  # ConfigError is a ValueError
            raise _bad(f"tools.{name}", f"is not a state of the {name} tool: {exc}") from None
    return {**{k: state[k] for k in _KEYS}, "task": task, "rng": rng, "turn": turn}


def restore(env: Any, state: Mapping[str, Any]) -> None:
    """``env.set_state(state)``: restore a :func:`snapshot` into an env built the same way.

    All or nothing: on :class:`InvalidSnapshot` (or a tool that fails to restore) the env is
    unchanged.
    """
    new = check_snapshot(env, state)
    before = {name: tool.get_state() for name, tool in env.tools.items()}
    done: list[str] = []
    try:
        for name, tool_state in new["tools"].items():
            env.tools[name].set_state(tool_state)
            done.append(name)
    except Exception as exc:
        for name in done:  # put back the tools restored so far
            env.tools[name].set_state(before[name])
        if isinstance(exc, (TypeError, ValueError, KeyError)):
            raise _bad(f"tools.{name}", f"could not be restored: {exc}") from exc
        raise
    env._task = new["task"]
    env._messages = [dict(m) for m in new["messages"]]
    env._response = list(new["response"])
    env._turn = new["turn"]
    env._calls = dict(new["calls"])
    env._refused = dict(new["refused"])
    env._invalid = new["invalid"]
    env._chars = new["chars"]
    env._tokens = new["tokens"]
    env._done = new["done"]
    if new["rng"] is not None:
        env._np_random = new["rng"]
