"""CompareConfig and Budget: equal shared sizes per preset, clear errors, budget crossing points."""

from __future__ import annotations

import pytest

from branchgym.algorithms.compare.budget import Budget, cumulative
from branchgym.algorithms.compare.config import DEFAULT_ALGOS, CompareConfig
from branchgym.algorithms.train_config import PRESETS
from branchgym.errors import ConfigError


def test_default_algos_are_presets_and_each_run_has_the_same_batch() -> None:
    assert set(DEFAULT_ALGOS) <= set(PRESETS)
    cfg = CompareConfig(group_size=8, prompts_per_step=4)
    for algo in cfg.algos:
        tc = cfg.train_config(algo, model="m", out="o", seed=1)
        assert tc.tree_size == 8 and tc.prompts_per_step == 4 and tc.lr == cfg.lr, algo
        assert tc.call_limit == cfg.call_limit and tc.max_new_tokens == cfg.max_new_tokens, algo
        assert tc.loss == PRESETS[algo].loss and tc.advantage == PRESETS[algo].advantage, algo
    arpo = cfg.train_config("arpo", model="m", out="o", seed=0)
    assert arpo.branching.initial == 4  # the preset's n/initial ratio (16/8) at n = 8
    high = PRESETS["high_entropy"].settings.get("micro_batch_size")
    assert cfg.train_config("high_entropy", model="m", out="o", seed=0).micro_batch_size == (high or 32)


def test_config_errors_name_the_value_and_the_fix() -> None:
    with pytest.raises(ConfigError, match="unknown preset.*'grpoo'"):
        CompareConfig(algos=("grpo", "grpoo"))
    with pytest.raises(ConfigError, match="reference='dapo' is not among algos"):
        CompareConfig(algos=("grpo", "arpo"), reference="dapo")
    with pytest.raises(ConfigError, match="budget_kind"):
        CompareConfig(budget_kind="flops")
    with pytest.raises(ConfigError, match="unknown compare option"):
        CompareConfig().replace(budgets=3)
    assert CompareConfig(algos="grpo, arpo").algos == ("grpo", "arpo")  # the CLI's comma list


def test_fingerprint_ignores_what_does_not_change_a_job() -> None:
    a = CompareConfig()
    assert a.fingerprint() == a.replace(parallel=2, seeds=5, algos=("grpo",), out="x").fingerprint()
    assert a.fingerprint() != a.replace(budget=1234.0).fingerprint()
    assert CompareConfig(eval_samples=8).k_values == (1, 2, 4, 8)
    assert CompareConfig(eval_samples=6).k_values == (1, 2, 4, 6)


def test_budget_stops_at_the_first_step_that_reaches_it() -> None:
    b = Budget.even("tokens", 1000.0, 4)
    assert b.add({"rollout/generated_tokens": 200}) == []
    assert b.add({"rollout/generated_tokens": 400}) == [250.0, 500.0]  # one step may cross two points
    assert not b.exhausted
    assert b.add({"rollout/generated_tokens": 500}) == [750.0, 1000.0]
    assert b.exhausted and b.spent == 1100 and b.steps == 3
    rows = [{"rollout/trajectories": 8}, {"rollout/trajectories": 16}]
    assert cumulative(rows, "trajectories") == [8.0, 24.0]
    with pytest.raises(ConfigError, match="budget kind 'flops'"):
        cumulative(rows, "flops")
