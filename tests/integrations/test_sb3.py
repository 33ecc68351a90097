"""SB3 on branchgym envs through the bytes-Box + Discrete adapters: SB3's own env checker, the
encoding, cloning, and a PPO run that learns the lookup task's search-then-answer policy."""

from __future__ import annotations

import re

import numpy as np
import pytest

from branchgym.algorithms.quickstart_task import make_lookup_env
from branchgym.envs import clone
from branchgym.errors import ConfigError, InvalidAction
from branchgym.integrations.sb3 import BytesObservation, DiscreteActions, decode_bytes, make_sb3_env

pytest.importorskip("stable_baselines3", reason="the sb3 extra: pip install 'branchgym[sb3]'")


def search_question_number(obs: str) -> str:
    m = re.search(r"#(\d+)\?", obs)
    return f"<search>{m.group(1) if m else ''}</search>"


def answer_seen_code(obs: str) -> str:
    m = re.search(r"code=(\d+)", obs)
    return f"<answer>\\boxed{{{m.group(1) if m else ''}}}</answer>"


MENU = [search_question_number, answer_seen_code, "<answer>\\boxed{0}</answer>"]


def lookup(split: str = "train"):
    return make_sb3_env(make_lookup_env(split), MENU, length=96)


def test_passes_sb3_check_env_and_gymnasium_checks() -> None:
    import gymnasium as gym
    from stable_baselines3.common.env_checker import check_env

    check_env(lookup(), warn=True)
    env = make_sb3_env("WebSearch-Offline-v0", ["<search>a town</search>", "<answer>\\boxed{x}</answer>"], length=256)
    check_env(env, warn=True)
    obs, _ = env.reset(seed=1)
    assert env.observation_space.contains(obs) and isinstance(env.action_space, gym.spaces.Discrete)


def test_bytes_round_trip_head_and_tail() -> None:
    env = lookup()
    obs, info = env.reset(seed=0)
    text = make_lookup_env("train").reset(seed=0)[0]
    assert len(text.encode()) > 96 and decode_bytes(obs) == text.encode()[:96].decode()
    obs, r, term, trunc, info = env.step(0)
    assert info["action_text"].startswith("<search>") and "code=" in decode_bytes(obs)
    obs, r, term, trunc, info = env.step(1)
    assert term and r == 1.0
    tail = BytesObservation(DiscreteActions(make_lookup_env("train"), MENU), length=20, keep="tail")
    o, _ = tail.reset(seed=0)
    assert decode_bytes(o) == text[-20:] and o.shape == (20,)


def test_bad_menu_and_bad_index_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="at least one action"):
        DiscreteActions(make_lookup_env("smoke"), [])
    with pytest.raises(ConfigError, match="actions\\[1\\]"):
        DiscreteActions(make_lookup_env("smoke"), ["a", 3])
    with pytest.raises(ConfigError, match="length"):
        BytesObservation(make_lookup_env("smoke"), length=0)
    env = lookup("smoke")
    env.reset(seed=0)
    with pytest.raises(InvalidAction, match=r"outside the menu \[0, 2\]"):
        env.step(7)
    with pytest.raises(ConfigError, match="env id"):
        make_sb3_env(make_lookup_env("smoke"), MENU, max_episode_steps=3)


def test_clone_copies_the_adapter_state() -> None:
    env = lookup()
    env.reset(seed=3)
    env.step(0)  # the search result is now the menu functions' input
    twin = clone(env)
    a = env.step(1)
    b = twin.step(1)
    assert np.array_equal(a[0], b[0]) and a[1:4] == b[1:4] == (1.0, True, False)


@pytest.mark.slow
def test_ppo_learns_to_search_then_answer() -> None:
    """Random choice from the menu solves ~1/9 of the tasks; PPO on the byte observations learns
    to search at the question and answer at the result, on held-out keys."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.evaluation import evaluate_policy

    def score(model) -> float:
        from stable_baselines3.common.monitor import Monitor

        env = Monitor(lookup("test"))
        mean, _ = evaluate_policy(model, env, n_eval_episodes=30, deterministic=True)
        return float(mean)

    model = PPO("MlpPolicy", lookup(), n_steps=256, batch_size=64, learning_rate=1e-3, seed=0, verbose=0)
    before = score(model)
    model.learn(total_timesteps=4096)
    after = score(model)
    assert after >= 0.9 > before + 0.3, (before, after)
