"""The trainer end to end on the tiny model and the lookup env: every algorithm family runs a
real rollout + update, writes metrics (JSONL + TensorBoard), plots and final weights."""

from __future__ import annotations

import json

import pytest

from branchgym.algorithms.train_config import preset
from branchgym.algorithms.trainer import Trainer, make_env_factory
from branchgym.errors import ConfigError

ENV = "branchgym.algorithms.quickstart_task:make_lookup_env"
SMALL = dict(env=ENV, env_kwargs={"reward": "arpo_train"}, split="smoke", steps=2, prompts_per_step=2,
             group_size=4, max_new_tokens=24, max_response_tokens=64, lr=1e-3, progress=False, threads=1,
             checkpoint_every=1, tensorboard=False)
TREE = {"n": 4, "initial": 2, "z_extra": 1}


@pytest.fixture(scope="module")
def tiny():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "rollout"))
    from tinycache import sft_tiny_dir  # the rollout tests' cached tiny model, briefly SFT'd

    return sft_tiny_dir()


@pytest.mark.parametrize(
    "algo, extra",
    [
        ("grpo", {}),
        ("dapo", {"dynamic_sampling": False}),
        ("arpo_paper", {"branching": {**TREE, "entropy_probe": "after_tool"}}),
        ("aepo", {"branching": {**TREE, "penalty": 0.05, "rule": "aepo_code"}, "premonitor": True}),
        ("empg", {}),
        ("cispo", {"tensorboard": True}),
        ("grpo_paper", {"group_size": 2}),  # k3 KL against a frozen reference model
    ],
)
def test_algorithm_runs_and_logs(tiny, tmp_path, algo, extra) -> None:
    cfg = preset(algo, model=str(tiny), out=str(tmp_path / algo), **{**SMALL, **extra})
    trainer = Trainer(cfg)
    try:
        before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
        last = trainer.run()
    finally:
        trainer.close()
    rows = [json.loads(x) for x in (tmp_path / algo / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    for key in ("rollout/reward_mean", "rollout/entropy_mean", "rollout/tool_calls", "rollout/generated_tokens",
                "loss/policy", "train/grad_norm", "train/lr", "time/generation_share", "time/update_share"):
        assert key in last, key
    # the trainer's forward reproduces the HF rollout's log-probs (tree clones' copied prefixes too)
    assert last["train/rollout_logprob_abs_diff"] < 1e-4
    if cfg.rollout == "tree":
        assert "rollout/clones" in last and "rollout/branch_decisions" in last
    if algo == "grpo_paper":
        assert "loss/kl" in last
    assert (tmp_path / algo / "final" / "config.json").exists()
    for stem in ("reward", "entropy", "tool_calls"):
        assert (tmp_path / algo / "plots" / f"{stem}.png").stat().st_size > 1000
    if cfg.tensorboard:
        assert any((tmp_path / algo / "tb").iterdir())
    rewards = [r["rollout/reward_mean"] for r in rows]
    if algo in ("grpo", "empg", "aepo") and last["adv/reward_std"] > 0:  # a real update happened
        after = trainer.model.state_dict()
        assert any(not before[k].equal(after[k]) for k in before)
    assert all(-1.0 <= r <= 1.1 for r in rewards)


def test_unknown_env_and_missing_model_are_clear(tiny, tmp_path) -> None:
    with pytest.raises(ConfigError, match="Did you mean 'WebSearch-Offline-v0'"):
        make_env_factory("WebSearch-Ofline-v0", {}, "train")
    with pytest.raises(ConfigError, match="module:function"):
        make_env_factory("nowhere.mod:fn", {}, "train")()
    with pytest.raises(ConfigError, match="does not exist"):
        Trainer(preset("grpo", **{**SMALL, "model": str(tmp_path / "none"), "out": str(tmp_path / "o")}))


def test_cli_print_config_and_error_exit(capsys, tmp_path) -> None:
    from branchgym.cli import main

    assert main(["train", "--algo", "aepo", "--set", "branching.n=8", "--print-config"]) == 0
    assert "n: 8" in capsys.readouterr().out
    assert main(["train", "--algo", "grpo", "--model", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_dapo_dynamic_sampling_refills_until_the_batch_has_informative_groups(tiny, tmp_path) -> None:
    """Real rollouts; the rewards are scripted so the refill path is deterministic: batch 1 has
    no group with a reward spread, batch 2 one, batch 3 two → 3 batches, 2 groups trained on."""
    cfg = preset("dapo", model=str(tiny), out=str(tmp_path / "dapo"),
                 **{**SMALL, "steps": 1, "dynamic_sampling": True, "max_gen_batches": 3, "overlong_buffer_frac": None})
    scripted = iter([[1.0] * 4 + [0.0] * 4, [1.0, 0.0, 0.0, 0.0] + [0.0] * 4, [0.5, 0.0, 0.0, 0.0] + [1.0, 1, 0, 1]])
    trainer = Trainer(cfg)
    seen: list[list[str]] = []
    real_rollout = trainer._rollout

    def rollout(task_ids):
        seen.append(list(task_ids))
        return real_rollout(task_ids)

    trainer._rollout = rollout
    trainer._shaped_rewards = lambda batch: next(scripted)
    try:
        m = trainer.train_step()
    finally:
        trainer.close()
    assert m["train/gen_batches"] == 3.0 and len(seen) == 3
    assert m["train/kept_groups"] == 2.0 and m["train/kept_rows"] == 8.0  # 2 of the 3 informative groups
    assert m["rollout/trajectories"] == 24.0  # every generated row is counted as rollout work
    assert len({t for ids in seen for t in ids}) == 6  # refills draw prompts not used this step


def test_dapo_dynamic_sampling_gives_up_after_max_gen_batches(tiny, tmp_path) -> None:
    cfg = preset("dapo", model=str(tiny), out=str(tmp_path / "dapo"),
                 **{**SMALL, "steps": 1, "dynamic_sampling": True, "max_gen_batches": 2})
    trainer = Trainer(cfg)
    trainer._shaped_rewards = lambda batch: [0.0] * len(batch)  # every group all-wrong
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    try:
        m = trainer.train_step()
    finally:
        trainer.close()
    assert m["train/gen_batches"] == 2.0 and m["train/kept_groups"] == 0.0
    assert all(before[k].equal(v) for k, v in trainer.model.state_dict().items())  # no update without signal
    with pytest.raises(ConfigError, match="max_gen_batches"):
        preset("dapo", max_gen_batches=0)


@pytest.mark.filterwarnings("ignore:Seems like `optimizer.step\\(\\)` has been overridden:UserWarning")
@pytest.mark.parametrize("mini_batches", [1, 2])
def test_aepo_entropy_advantage_reads_the_policy_being_updated(tiny, tmp_path, monkeypatch, mini_batches) -> None:
    """Ã = A(1 + a·z(H)) per mini-batch: the first uses the rollout policy's entropies (the same
    weights), the second the entropies after the first optimizer step."""
    import branchgym.algorithms.advantages as adv_mod

    cfg = preset("aepo", model=str(tiny), out=str(tmp_path / "aepo"),
                 **{**SMALL, "steps": 1, "mini_batches": mini_batches, "lr": 1e-2,
                    "branching": {**TREE, "penalty": 0.05, "rule": "aepo_code"},
                    "env_kwargs": {"reward": "arpo_train"}, "overlong_buffer_frac": 0.75})
    assert cfg.advantage == "aepo"
    trainer = Trainer(cfg)
    updates, passes, factors = [], [], []
    real_step, real_pass, real_factor = trainer.opt.step, trainer._no_grad_pass, adv_mod.entropy_aware_advantage

    def step(*a, **k):
        updates.append(1)
        return real_step(*a, **k)

    def no_grad_pass(model, tt):
        out = real_pass(model, tt)
        passes.append((len(updates), out[1]))
        return out

    def factor(a, ent, mask, **kw):
        factors.append((ent.clone(), mask.clone()))
        return real_factor(a, ent, mask, **kw)

    trainer.opt.step, trainer._no_grad_pass = step, no_grad_pass
    monkeypatch.setattr(adv_mod, "entropy_aware_advantage", factor)
    try:
        m = trainer.train_step()
    finally:
        trainer.close()
    assert m["train/grad_norm"] > 0 and len(updates) == mini_batches
    # one pass over the batch before any update, plus one per later mini-batch after an update
    assert [u for u, _ in passes] == list(range(mini_batches))
    assert len(factors) == mini_batches  # once per mini-batch
    if mini_batches == 2:
        ent, mask = factors[-1]
        cur = passes[-1][1]
        w = cur.shape[1]
        assert ent[:, :w][mask[:, :w] > 0].equal(cur[mask[:, :w] > 0])


@pytest.mark.parametrize(
    "algo, env_id, env_kwargs",
    [
        ("grpo", "WebSearch-Offline-v0", {}),
        pytest.param("arpo", "CodeExec-Offline-v0", {"sandbox": "docker"}, marks=pytest.mark.docker),
    ],
)
def test_trainer_runs_on_registered_world_envs(tiny, tmp_path, algo, env_id, env_kwargs) -> None:
    """The trainer through ``gym.make`` ids on the offline world (long system prompts, the search
    index, the Docker sandbox for tree rollouts), not only on the quickstart's lookup task."""
    extra = {"branching": TREE} if algo == "arpo" else {}
    cfg = preset(algo, model=str(tiny), out=str(tmp_path / algo),
                 **{**SMALL, "env": env_id, "env_kwargs": env_kwargs, "steps": 1, "group_size": 4,
                    "max_response_tokens": 96, **extra})
    trainer = Trainer(cfg)
    try:
        last = trainer.run()
    finally:
        trainer.close()
    assert last["rollout/trajectories"] >= 2 * 4 and last["rollout/generated_tokens"] > 0
    assert last["train/rollout_logprob_abs_diff"] < 1e-4
    assert (tmp_path / algo / "final" / "config.json").exists()
