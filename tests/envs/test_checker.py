"""check_env passes on the four offline envs, directly and through gym.make; it catches bugs."""

from __future__ import annotations

import gymnasium as gym
import pytest

from branchgym.envs.checker import check_env
from branchgym.envs.core import ToolEnv
from branchgym.envs.registration import OFFLINE_ENVS


@pytest.mark.parametrize("env_id", sorted(OFFLINE_ENVS))
def test_offline_envs_pass_through_gym_make(env_id: str) -> None:
    env = gym.make(env_id, split="smoke", sandbox="local")
    try:
        check_env(env)
    finally:
        env.close()


@pytest.mark.parametrize("env_id", sorted(OFFLINE_ENVS))
def test_offline_envs_pass_unwrapped(env_id: str) -> None:
    kwargs = dict(OFFLINE_ENVS[env_id], split="smoke", sandbox="local")
    env = ToolEnv(**kwargs)
    try:
        check_env(env, skip_gymnasium=True)
    finally:
        env.close()


def test_checker_catches_a_clone_that_shares_state(make_env) -> None:
    env = make_env()

    class Shallow(ToolEnv):
        def clone(self):  # a buggy clone: same tool objects, same dedup set
            twin = super().clone()
            twin.tools = self.tools
            return twin

    bad = Shallow.__new__(Shallow)
    bad.__dict__.update(env.__dict__)
    with pytest.raises(AssertionError, match="clone"):
        check_env(bad, skip_gymnasium=True, actions=["<search>velmora</search>"])


@pytest.mark.docker
@pytest.mark.parametrize("env_id", ["CodeExec-Offline-v0", "DeepResearch-Offline-v0"])
def test_python_envs_pass_with_docker_sandbox(env_id: str) -> None:
    env = gym.make(env_id, split="smoke", sandbox="docker")
    try:
        check_env(env)
    finally:
        env.close()


@pytest.mark.parametrize("protocol", ["search-r1", "hermes"])
@pytest.mark.parametrize("env_id", ["WebSearch-Offline-v0", "DeepResearch-Offline-v0"])
def test_other_protocols_pass(env_id: str, protocol: str) -> None:
    env = gym.make(env_id, split="smoke", sandbox="local", protocol=protocol)
    try:
        check_env(env, skip_gymnasium=True)
    finally:
        env.close()


def test_in_test_env_and_toolless_env_pass(make_env) -> None:
    check_env(make_env())
    check_env(make_env(tools=[]), skip_gymnasium=True)


@pytest.mark.parametrize("factory", ["quickstart_task:make_lookup_env", "chain_task:make_chain_env"])
def test_envs_with_few_turns_pass_and_keep_their_limit(factory: str) -> None:
    # The checks play more actions than max_turns=4/5 allows: they run with the limit raised,
    # then the limit itself is checked and restored.
    import importlib

    module, name = factory.split(":")
    env = getattr(importlib.import_module(f"branchgym.algorithms.{module}"), name)()
    limit = env.unwrapped.max_turns
    assert limit < 8
    check_env(env, skip_gymnasium=True)
    assert env.unwrapped.max_turns == limit


@pytest.mark.parametrize("shift,match", [(-1, r"truncated after 2 of max_turns=3"),
                                         (+1, r"max_turns=3 actions were played and the episode "
                                              r"was not truncated")])
def test_checker_catches_a_wrong_turn_limit(make_env, shift: int, match: str) -> None:
    env = make_env(max_turns=3)

    class OffByOne(ToolEnv):
        def step(self, action):  # reports the turn limit one action early or late
            obs, r, term, trunc, info = super().step(action)
            if shift < 0 and self._turn == self.max_turns - 1:
                trunc, info["truncation_reason"] = True, "max_turns"
            if shift > 0 and info.get("truncation_reason") == "max_turns":
                trunc = False
            return obs, r, term, trunc, info

    bad = OffByOne.__new__(OffByOne)
    bad.__dict__.update(env.__dict__)
    with pytest.raises(AssertionError, match=match):
        check_env(bad, skip_gymnasium=True)
