from __future__ import annotations

import pytest
from toy_tool_env import ToyToolEnv

from branchgym.agents.core import Agent
from branchgym.agents.policy import SamplingParams
from branchgym.agents.policy_agent import PolicyAgent
from branchgym.errors import ConfigError, EnvError


def test_policy_agent_plays_a_plain_gym_loop(hf_policy):
    env = ToyToolEnv(max_turns=3)
    agent = PolicyAgent(hf_policy, SamplingParams(max_new_tokens=40, seed=9), env=env)
    assert isinstance(agent, Agent) and agent.stop == env.protocol.stop_strings
    obs, info = env.reset()
    agent.reset(obs, info)
    done, turns = False, 0
    while not done and turns < 5:
        action = agent.act(obs)
        obs, _, term, trunc, _ = env.step(action)
        done, turns = term or trunc, turns + 1
    t = agent.trajectory
    assert env.actions and all(isinstance(a, str) for a in env.actions)
    # the agent's token record decodes to prompt + its actions + the observations it was shown
    assert hf_policy.decode(t.token_ids) == t.transcript
    assert [t.pieces[i] for i in range(0, len(t.pieces), 2)] == [
        hf_policy.decode(t.response_ids[s.start : s.end]) for s in t.segments
    ]
    for seg in t.segments:
        if seg.finish_reason == "stop":
            assert seg.stop_string in env.protocol.stop_strings


def test_policy_agent_errors(hf_policy):
    with pytest.raises(ConfigError, match="Policy"):
        PolicyAgent(object())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="n=2"):
        PolicyAgent(hf_policy, SamplingParams(n=2))
    with pytest.raises(EnvError, match="reset"):
        PolicyAgent(hf_policy).act("hi")


def test_eval_of_a_policy_agent_reraises_the_envs_own_exception(hf_policy):
    # eval plays policy agents through the engine, which records a raising step as the end of
    # that trajectory; eval then raises the env's exception itself (type and traceback kept).
    from branchgym.envs.evaluate import run_episode
    from branchgym.errors import SandboxError

    class BrokenSandboxEnv(ToyToolEnv):
        def reset(self, seed=None, options=None):
            obs, info = super().reset(seed=seed, options=options)
            return obs, {**info, "task": {"id": "toy-0", "answer": self.gold}}

        def step(self, action):
            raise SandboxError("the container stopped")

    env = BrokenSandboxEnv(max_turns=3)
    agent = PolicyAgent(hf_policy, SamplingParams(max_new_tokens=40, seed=9), env=env)
    with pytest.raises(SandboxError, match="the container stopped"):
        run_episode(env, agent, seed=0)
