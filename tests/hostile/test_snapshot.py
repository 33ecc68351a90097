"""Garbage snapshots: ``set_state`` refuses each one with :class:`InvalidSnapshot` naming the
field, before it changes anything, on every registered offline env; the env's next step is the
step it would have taken without the attempt."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any, ClassVar

import gymnasium as gym
import pytest

from branchgym.envs.core import ToolEnv
from branchgym.envs.registration import OFFLINE_ENVS
from branchgym.envs.tools.base import Tool, ToolOutput
from branchgym.envs.types import Task
from branchgym.errors import ConfigError, InvalidSnapshot

State = dict[str, Any]


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def _set(key: str, value: Any) -> Callable[[State], Any]:
    def edit(s: State) -> State:
        s[key] = value
        return s
    return edit


def _edit(fn: Callable[[State], None]) -> Callable[[State], Any]:
    def edit(s: State) -> State:
        fn(s)
        return s
    return edit


def _first_tool(s: State) -> str:
    return sorted(s["tools"])[0]


# (name, how to damage a valid snapshot, the field the error must name)
GARBAGE: list[tuple[str, Callable[[State], Any], str]] = [
    ("list", lambda s: [s], "snapshot"),
    ("none", lambda s: None, "snapshot"),
    ("version-99", _set("version", 99), "version"),
    ("version-str", _set("version", "1"), "version"),
    ("missing-turn", _edit(lambda s: s.pop("turn")), "turn"),
    ("unknown-key", _set("evil", 1), "evil"),
    ("turn-negative", _set("turn", -5), "turn"),
    ("turn-str", _set("turn", "3"), "turn"),
    ("turn-bool", _set("turn", True), "turn"),
    ("turn-huge", _set("turn", 10**9), "turn"),
    ("calls-empty", _set("calls", {}), "calls"),
    ("calls-negative", _edit(lambda s: s["calls"].update({_first_tool(s): -1})), "calls"),
    ("calls-str", _edit(lambda s: s["calls"].update({_first_tool(s): "x"})), "calls"),
    ("calls-extra-tool", _edit(lambda s: s["calls"].update({"nuke": 1})), "calls"),
    ("calls-over-limit", _edit(lambda s: s["calls"].update({_first_tool(s): 10**6})), "calls"),
    ("refused-none", _set("refused", None), "refused"),
    ("invalid-float", _set("invalid", 1.5), "invalid"),
    ("chars-negative", _set("chars", -1), "chars"),
    ("chars-nan", _set("chars", float("nan")), "chars"),
    ("tokens-str", _set("tokens", "many"), "tokens"),
    ("done-str", _set("done", "no"), "done"),
    ("messages-str", _set("messages", "hello"), "messages"),
    ("messages-role", _edit(lambda s: s["messages"].append({"role": "root", "content": "x"})),
     "messages"),
    ("messages-content-int", _edit(lambda s: s["messages"].append(
        {"role": "user", "content": 5})), "messages"),
    ("messages-10MB", _edit(lambda s: s["messages"].append(
        {"role": "user", "content": "A" * 10_000_000})), "messages"),
    ("messages-deep", _set("messages", _nested(100_000)), "messages"),
    ("response-ints", _set("response", [1, 2]), "response"),
    ("task-partial", _set("task", {"id": "x"}), "task"),
    ("task-str", _set("task", "t0"), "task"),
    ("task-no-answers", _edit(lambda s: s["task"].update(answers=[])), "task"),
    ("task-question-int", _edit(lambda s: s["task"].update(question=7)), "task"),
    ("task-metadata-deep", _edit(lambda s: s["task"].update(metadata={"m": _nested(100_000)})),
     "task"),
    ("task-none-not-done", _set("task", None), "done"),
    ("rng-name", _set("np_random", {"bit_generator": "system", "state": {}}), "np_random"),
    ("rng-state", _edit(lambda s: s["np_random"].update(state="x")), "np_random"),
    ("tools-empty", _set("tools", {}), "tools"),
    ("tool-state-garbage", _edit(lambda s: s["tools"].update(
        {name: "garbage" for name in s["tools"]})), "tools."),
    ("tool-state-deep", _edit(lambda s: s["tools"].update(
        {name: {"seen": _nested(50_000), "history": _nested(50_000)} for name in s["tools"]})),
     "tools."),
]

# a first step that uses each env's tool, and a second one to compare after the attempts
ACTIONS = {
    "WebSearch-Offline-v0": ("<search>harbour lighthouse</search>", "<search>founder</search>"),
    "Browse-Offline-v0": ("<browse>https://nowhere.example/</browse>",
                          "<browse>https://nowhere.example/two</browse>"),
    "CodeExec-Offline-v0": ("<python>x = 20</python>", "<python>print(x + 22)</python>"),
    "DeepResearch-Offline-v0": ("<python>x = 20</python>", "<python>print(x + 22)</python>"),
}


def test_every_offline_env_has_actions() -> None:
    assert set(ACTIONS) == set(OFFLINE_ENVS)


@pytest.mark.parametrize("env_id", sorted(OFFLINE_ENVS))
def test_garbage_snapshots_are_refused_and_change_nothing(env_id: str) -> None:
    env = gym.make(env_id, split="smoke", sandbox="local").unwrapped
    first, second = ACTIONS[env_id]
    try:
        env.reset(seed=0)
        env.step(first)
        twin = env.clone()  # the future without any set_state attempt
        valid = json.loads(json.dumps(env.get_state()))
        failures = []
        for name, damage, field in GARBAGE:
            bad = damage(copy.deepcopy(valid))
            try:
                env.set_state(bad)
            except InvalidSnapshot as exc:
                if field not in str(exc) or not isinstance(exc, (ValueError, ConfigError)):
                    failures.append(f"{name}: the error does not name {field!r}: {exc}")
            except Exception as exc:  # noqa: BLE001 - every other outcome is a failure to report
                failures.append(f"{name}: raised {type(exc).__name__}: {str(exc)[:200]}")
            else:
                failures.append(f"{name}: accepted")
            if env.get_state() != valid:
                failures.append(f"{name}: the refused set_state changed the env")
        assert failures == [], "\n".join(failures)
        assert env.step(second)[:4] == twin.step(second)[:4]
        twin.close()
    finally:
        env.close()


class Notes(Tool):
    """A third-party tool with episode state and no ``check_state``: its ``set_state`` fails."""

    name: ClassVar[str] = "search"
    main_arg: ClassVar[str] = "query"

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def call(self, argument: str) -> ToolOutput:
        self.seen.add(argument)
        return ToolOutput(f"noted {argument}")

    def get_state(self) -> Any:
        return sorted(self.seen)

    def set_state(self, state: Any) -> None:
        self.seen = set(state)  # TypeError on an int

    def reset(self) -> None:
        self.seen = set()


TASKS = [Task("t0", "Who?", ("Ostra",)), Task("t1", "Where?", ("Dunmere",))]


def test_a_failing_tool_restore_leaves_the_env_as_it_was() -> None:
    """Every field is checked before any is applied: a tool that fails to restore its state
    leaves task, messages, counters and the other tools as they were."""
    env = ToolEnv(TASKS, tools=[Notes()])
    env.reset(seed=0, options={"index": 0})
    env.step("<search>velmora</search>")
    bad = json.loads(json.dumps(env.get_state()))
    bad["tools"]["search"] = 12345
    other = ToolEnv(TASKS, tools=[Notes()])
    other.reset(seed=1, options={"index": 1})
    other.step("<search>dunmere</search>")
    before = other.get_state()
    with pytest.raises(InvalidSnapshot, match="tools.search"):
        other.set_state(bad)
    assert other.get_state() == before
    assert other.task.id == "t1"
