"""The quickstart: its task (learnable, held-out keys unseen), the verdict, and a quick full run."""

from __future__ import annotations

import json

import pytest

from branchgym.algorithms.quickstart import QUICKSTART_TASKS, QuickstartConfig, run_quickstart
from branchgym.algorithms.quickstart_report import heldout_curves, learning_verdict
from branchgym.algorithms.quickstart_task import LOOKUP_SPLITS, lookup_tasks, make_lookup_env
from branchgym.errors import ConfigError


def test_lookup_splits_are_disjoint_and_need_the_tool() -> None:
    from branchgym.agents.scripted import NoToolAgent, OracleAgent

    keys = {s: {t.question for t in lookup_tasks(s)} for s in LOOKUP_SPLITS}
    for a in LOOKUP_SPLITS:
        for b in LOOKUP_SPLITS:
            assert a == b or not keys[a] & keys[b], (a, b)
    assert [len(lookup_tasks(s)) for s in LOOKUP_SPLITS] == list(LOOKUP_SPLITS.values())
    assert lookup_tasks("test") == lookup_tasks("test")  # deterministic
    env = make_lookup_env("test")
    for agent, expect in ((OracleAgent(), 1.0), (NoToolAgent(), 0.0)):
        total = 0.0
        for i in range(10):
            obs, info = env.reset(options={"index": i})
            agent.reset(obs, info)
            done = False
            while not done:
                obs, r, term, trunc, info = env.step(agent.act(obs))
                done = term or trunc
            total += r
        assert total / 10 == expect
    env.close()
    with pytest.raises(ConfigError, match="lookup split"):
        make_lookup_env("dev")


def _results(sft, grpo, aepo):
    ev = lambda a: {"sampled_accuracy": a, "greedy_accuracy": a}  # noqa: E731
    return {"seeds": {str(i): {"eval": {"sft": ev(s), "grpo": ev(g), "aepo": ev(a)}}
                      for i, (s, g, a) in enumerate(zip(sft, grpo, aepo))}}


def test_learning_verdict_compares_gain_with_spread() -> None:
    v = learning_verdict(_results([0.40, 0.45, 0.42], [0.70, 0.66, 0.72], [0.44, 0.50, 0.41]))
    assert v["grpo"]["holds"] and round(v["grpo"]["spread"], 6) == 0.06
    assert not v["aepo"]["holds"]  # gain 0.027 < spread 0.09
    assert not learning_verdict(_results([0.4], [0.9], [0.9]))["grpo"]["holds"]  # one seed proves nothing


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="seeds"):
        QuickstartConfig(seeds=0)
    with pytest.raises(ConfigError, match="unknown quickstart option"):
        QuickstartConfig().replace(sft_step=3)
    with pytest.raises(ConfigError, match="task"):
        QuickstartConfig(task="chains")
    with pytest.raises(ConfigError, match="eval_every"):
        QuickstartConfig(eval_every=0)


def test_chain_task_reaches_the_rl_phases() -> None:
    """``task=chain`` trains and evaluates on the two-call env, with room for its two calls."""
    cfg = QuickstartConfig(task="chain")
    tc = cfg.train_config("aepo", model="m", out="o", seed=0)
    assert tc.env == QUICKSTART_TASKS["chain"].env == "branchgym.algorithms.chain_task:make_chain_env"
    assert tc.call_limit == QUICKSTART_TASKS["chain"].call_limit >= 2
    assert QuickstartConfig().train_config("grpo", model="m", out="o", seed=0).env.endswith(":make_lookup_env")


@pytest.mark.timeout(900)
def test_quick_run_writes_the_report(tmp_path) -> None:
    report = run_quickstart(QuickstartConfig.quick().replace(out=str(tmp_path), threads=1))
    text = report.read_text()
    assert "| 0 | sft |" in text and "| 0 | grpo |" in text and "| 0 | aepo |" in text
    results = json.loads((tmp_path / "results.json").read_text())
    r = results["seeds"]["0"]
    assert r["grpo"]["steps"] >= 1 and r["aepo"]["steps"] >= 1
    for p in ("sft", "grpo", "aepo"):
        assert 0.0 <= r["eval"][p]["sampled_accuracy"] <= 1.0
    for png in ("reward", "entropy", "tool_calls", "generated_tokens", "heldout_accuracy"):
        assert (tmp_path / "plots" / f"{png}.png").stat().st_size > 1000
    # held-out learning curves: step 0 (SFT) and every eval_every (= 1) RL step after it
    curves = heldout_curves(results)
    for algo in ("grpo", "aepo"):
        (curve,) = curves[algo]
        steps = [x for x, _ in curve]
        assert len(curve) > 1 and steps == list(range(r[algo]["steps"] + 1)), (algo, curve)
        assert all(0.0 <= y <= 1.0 for _, y in curve)
    assert curves["grpo"][0][0] == curves["aepo"][0][0]  # one SFT point shared by both
    assert "Held-out accuracy during RL" in text and "| 0 | aepo | 0: " in text
    assert (tmp_path / "seed0" / "aepo" / "metrics.jsonl").exists()
