"""SkyRL-gym's own ``skyrl_gym.make`` builds branchgym envs through the adapter and plays episodes."""

from __future__ import annotations

import subprocess
import sys

import pytest

skyrl_gym = pytest.importorskip("skyrl_gym")

LOOKUP = "branchgym.algorithms.quickstart_task:make_lookup_env"


def test_ids_are_registered_without_importing_the_adapter():
    code = ("import skyrl_gym; print('branchgym/WebSearch-Offline-v0' in skyrl_gym.registry, "
            "'branchgym' in skyrl_gym.registry)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["True", "True"], out.stderr[-2000:]


def test_skyrl_make_plays_an_episode():
    from skyrl_gym.envs.base_text_env import BaseTextEnv

    from branchgym.algorithms.quickstart_task import lookup_tasks

    task = lookup_tasks("smoke")[4]
    env = skyrl_gym.make("branchgym", env_config={"env": LOOKUP, "env_kwargs": {"split": "smoke"}},
                         extras={"task_id": task.id})
    assert isinstance(env, BaseTextEnv)
    messages, meta = env.init([{"role": "user", "content": "ignored: the env renders its prompt"}])
    assert meta["task_id"] == task.id
    assert [m["role"] for m in messages] == ["system", "user"] and task.question in messages[1]["content"]
    out = env.step(f"<search>{task.gold_path[0].argument}</search>")
    assert out["done"] is False and out["reward"] == 0.0 and out["metadata"]["tool"] == "search"
    assert out["observations"][0]["role"] == "user" and f"={task.answers[0]}" in out["observations"][0]["content"]
    out = env.step("<answer>\\boxed{%s}</answer>" % task.answers[0])
    assert out["done"] is True and out["reward"] == 1.0 and out["observations"] == []
    metrics = env.get_metrics()
    assert metrics["return"] == 1.0 and metrics["em"] == 1.0 and metrics["turns"] == 2
    agg = type(env).aggregate_metrics([metrics, {**metrics, "return": 0.0}])
    assert agg["return"] == 0.5
    env.close()


def test_registered_ids_take_omegaconf_config_and_truncate():
    from omegaconf import OmegaConf

    env = skyrl_gym.make("branchgym/WebSearch-Offline-v0",
                         env_config=OmegaConf.create({"env_kwargs": {"split": "smoke", "max_turns": 2}}),
                         extras={"seed": 0})
    messages, _ = env.init([])
    assert env.max_turns == 2 and messages[-1]["role"] == "user"
    assert env.step("<search>a</search>")["done"] is False
    last = env.step("<search>b</search>")
    assert last["done"] is True and last["metadata"]["truncation_reason"] == "max_turns"
    env.close()


def test_missing_env_is_a_clear_error():
    from branchgym.errors import ConfigError

    with pytest.raises(ConfigError, match="branchgym/WebSearch-Offline-v0"):
        skyrl_gym.make("branchgym", env_config={}, extras={})


def test_docs_example_runs():
    import runpy
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "integrations" / "skyrl_episode.py"
    out = runpy.run_path(str(example))["main"]()
    assert out["reward"] == 1.0 and out["done"] is True and out["metrics"]["em"] == 1.0
