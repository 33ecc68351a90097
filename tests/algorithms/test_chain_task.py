"""The two-call chain task: oracle solves it with two calls, one call cannot, held-out keys unseen."""

from __future__ import annotations

import re

import pytest

from branchgym.algorithms.chain_task import CHAIN_SPLITS, chain_corpus, chain_tasks, make_chain_env
from branchgym.errors import ConfigError


def _keys(split: str) -> set[str]:
    return {step.argument for t in chain_tasks(split) for step in t.gold_path}


def _play(env, agent, index: int) -> tuple[float, dict]:
    obs, info = env.reset(options={"index": index})
    agent.reset(obs, info)
    done = False
    while not done:
        obs, r, term, trunc, info = env.step(agent.act(obs))
        done = term or trunc
    return r, info


def test_splits_are_disjoint_in_both_keys_and_deterministic() -> None:
    for a in CHAIN_SPLITS:
        for b in CHAIN_SPLITS:
            assert a == b or not _keys(a) & _keys(b), (a, b)
    assert [len(chain_tasks(s)) for s in CHAIN_SPLITS] == list(CHAIN_SPLITS.values())
    assert all(len(_keys(s)) == 2 * n for s, n in CHAIN_SPLITS.items())  # two distinct keys per task
    assert chain_tasks("test") == chain_tasks("test") and chain_tasks("test", seed=1) != chain_tasks("test")
    assert len(chain_corpus()) == 2 * sum(CHAIN_SPLITS.values())
    with pytest.raises(ConfigError, match="chain split"):
        make_chain_env("dev")
    with pytest.raises(ConfigError, match="chain split"):
        chain_tasks("dev")


def test_oracle_solves_every_task_with_exactly_two_calls() -> None:
    from branchgym.agents.scripted import OracleAgent

    env = make_chain_env("test")
    for i in range(CHAIN_SPLITS["test"]):
        r, info = _play(env, OracleAgent(), i)
        assert r == 1.0 and info["tool_calls"] == {"search": 2}, (i, info["tool_calls"])
    env.close()


def test_one_call_cannot_solve_it() -> None:
    """Answering after the first search (with the only number it reveals) or without any search fails."""
    from branchgym.agents.scripted import NoToolAgent, ScriptedAgent

    env = make_chain_env("test")
    total_one = total_none = 0.0
    for i, task in enumerate(chain_tasks("test")):
        first = task.gold_path[0].argument
        obs, _ = env.reset(options={"index": i})
        obs, _, _, _, _ = env.step(f"<think>search</think>\n<search>{first}</search>")
        linked = re.search(r"link=(\d+)", obs).group(1)  # the first page names the second item...
        assert linked == task.gold_path[1].argument and task.answers[0] not in obs  # ...not the code
        _, r, term, _, _ = env.step(f"<think>answer</think>\n<answer>\\boxed{{{linked}}}</answer>")
        assert term
        total_one += r
        total_none += _play(env, NoToolAgent(), i)[0]
    assert total_one == 0.0 and total_none == 0.0
    env.close()


def test_env_passes_check_env() -> None:
    from branchgym.envs import check_env

    # The checker plays more actions than the task's 5 turns: it raises the limit for its episode
    # checks, then checks the limit itself (tests/envs/test_checker.py).
    env = make_chain_env("smoke")
    check_env(env)
    env.close()
