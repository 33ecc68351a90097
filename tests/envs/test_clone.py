"""branchgym.envs.clone: a whole gym.make wrapper stack, mid-episode, after tool calls."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest
from gymnasium.wrappers import RecordEpisodeStatistics

from branchgym.envs.clone import clone
from branchgym.envs.registration import OFFLINE_ENVS
from branchgym.errors import CloneNotSupported


def _stack(env):
    out = []
    while isinstance(env, gym.Wrapper):
        out.append(env)
        env = env.env
    return out, env


def test_wrapper_state_is_copied_and_independent() -> None:
    env = RecordEpisodeStatistics(
        gym.make("WebSearch-Offline-v0", split="smoke", max_episode_steps=5)
    )
    obs, info = env.reset(seed=0)
    gold = info["task"]["gold_path"]
    env.step(f"<search>{gold[0]['argument']}</search>")
    env.step("<search>some other query</search>")
    twin = clone(env)
    wrappers, base = _stack(twin)
    names = [type(w).__name__ for w in wrappers]
    assert {"RecordEpisodeStatistics", "TimeLimit", "OrderEnforcing", "PassiveEnvChecker"} <= set(
        names
    )
    orig, _ = _stack(env)
    for a, b in zip(orig, wrappers, strict=False):
        assert a is not b and type(a) is type(b)
    limit = next(w for w in wrappers if type(w).__name__ == "TimeLimit")
    assert limit._elapsed_steps == 2
    assert twin.episode_lengths == env.episode_lengths == 2
    # same future
    actions = ["<search>third query</search>", "<search>fourth</search>", "<search>fifth</search>"]
    ref = [env.step(a)[:4] for a in actions]
    got = [twin.step(a)[:4] for a in actions]
    assert got == ref and ref[-1][3] is True  # TimeLimit truncated both at step 5
    assert len(env.return_queue) == len(twin.return_queue) == 1
    # independence: the original's episode statistics do not leak into the clone
    env.reset(seed=1)
    env.step("<search>x</search>")
    assert twin.episode_lengths == 0 or twin.episode_lengths == 5
    env.close()
    twin.close()


def test_unclonable_env_is_a_clear_error() -> None:
    env = gym.make("CartPole-v1")
    with pytest.raises(CloneNotSupported, match="CartPole"):
        clone(env)


@pytest.mark.parametrize("sandbox", ["local", pytest.param("docker", marks=pytest.mark.docker)])
def test_python_sandbox_is_forked_by_stack_clone(sandbox: str) -> None:
    env = gym.make("CodeExec-Offline-v0", split="smoke", sandbox=sandbox, max_episode_steps=6)
    try:
        env.reset(seed=0)
        env.step("<python>acc = [1, 2, 3]\nopen('notes.txt', 'w').write('v1')</python>")
        env.step("<python>acc.append(4)</python>")
        twin = clone(env)
        # the original moves on and rewrites both the variable and the workspace file
        env.step("<python>acc = None\nopen('notes.txt', 'w').write('v2')</python>")
        seen = twin.step("<python>print(sum(acc), open('notes.txt').read())</python>")[0]
        assert "10 v1" in seen
        assert "None v2" in env.step("<python>print(acc, open('notes.txt').read())</python>")[0]
        # the clone's own future equals a clone-of-clone's
        third = clone(twin)
        a = twin.step("<python>acc.append(5)\nprint(acc)</python>")[:4]
        b = third.step("<python>acc.append(5)\nprint(acc)</python>")[:4]
        assert a == b and "[1, 2, 3, 4, 5]" in a[0]
        third.close()
        twin.close()
        twin.close()
    finally:
        env.close()


def test_package_level_clone_is_callable_even_after_submodule_import() -> None:
    import branchgym.envs as envs
    import branchgym.envs.clone as module  # sets the package attribute to the module

    env = gym.make("WebSearch-Offline-v0", split="smoke")
    env.reset(seed=0)
    for fn in (envs.clone, module, module.clone):
        twin = fn(env)
        assert isinstance(twin, gym.Wrapper) and twin.unwrapped is not env.unwrapped
    env.close()


@pytest.mark.parametrize("env_id", sorted(OFFLINE_ENVS))
def test_snapshots_restore_into_a_fresh_env_at_every_step(env_id: str) -> None:
    """set_state checks every field; no snapshot get_state gives is refused, up to the step
    that ends the episode (turn limit, and a context budget crossed by one long action)."""
    actions = {"WebSearch-Offline-v0": "<search>harbour lighthouse</search>",
               "Browse-Offline-v0": "<browse>https://nowhere.example/</browse>",
               "CodeExec-Offline-v0": "<python>print(6 * 7)</python>",
               "DeepResearch-Offline-v0": "<python>print(6 * 7)</python>"}
    for kw, script in (({"max_turns": 3}, [actions[env_id], "no tool call", actions[env_id]]),
                       ({"max_context_chars": 20_000}, [actions[env_id], "x" * 40_000])):
        env = gym.make(env_id, split="smoke", sandbox="local", **kw).unwrapped
        fresh = gym.make(env_id, split="smoke", sandbox="local", **kw).unwrapped
        try:
            env.reset(seed=0)
            fresh.set_state(json.loads(json.dumps(env.get_state())))  # a fresh env's state too
            for action in script:
                *_, terminated, truncated, _ = env.step(action)
                fresh.set_state(json.loads(json.dumps(env.get_state())))
                assert fresh.get_state() == env.get_state()
            assert truncated and not terminated
        finally:
            env.close()
            fresh.close()
