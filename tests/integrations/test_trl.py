"""TRL's GRPOTrainer trains on a branchgym env: through ``rollout_func`` (flat and tree rollouts of
branchgym's engine) and through ``environment_factory`` (TRL's own tool loop).

The model is the cached tiny test model (built locally, see branchgym.agents.tiny); the env is
the quickstart's offline lookup env with ARPO's training reward (-1 for a malformed answer, F1
otherwise, 0 without an answer), which varies even for a random model, so updates are real.
"""

from __future__ import annotations

import os

import pytest

pytest.importorskip("trl")

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

TINY = {"vocab_size": 2048, "layers": 2, "hidden": 64, "pretrain_steps": 200, "seed": 0}


def _tiny():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from branchgym.agents import tiny

    path = tiny.build_cached(**TINY)
    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    return AutoModelForCausalLM.from_pretrained(path), tok


def _make_env():
    from branchgym.algorithms.quickstart_task import make_lookup_env

    return make_lookup_env("train", reward="arpo_train")


def _config(tmp_path, **kw):
    from trl import GRPOConfig

    base = dict(output_dir=str(tmp_path / "out"), use_cpu=True, per_device_train_batch_size=8, num_generations=4,
                max_steps=2, max_completion_length=96, logging_steps=1, report_to="none", save_strategy="no",
                learning_rate=1e-3, beta=0.0, seed=0)
    return GRPOConfig(**{**base, **kw})


def _check_row_masks(t) -> None:
    """Model segments are 1, every observation span 0, and nothing else."""
    expect = [None] * len(t.response_ids)
    for seg in t.segments:
        for i in range(seg.start, seg.end):
            expect[i] = 1
    for step in t.steps:
        a, b = step.obs_span
        for i in range(a, b):
            expect[i] = 0
    assert None not in expect, "a response token is neither a model segment nor an observation"
    assert t.loss_mask == expect


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["flat", "tree"])
def test_grpo_trainer_runs_branchgym_rollouts(tmp_path, kind):
    import torch
    from transformers import TrainerCallback
    from trl import GRPOTrainer

    from branchgym.algorithms.config import BranchConfig
    from branchgym.algorithms.quickstart_task import lookup_tasks
    from branchgym.integrations.trl import BranchgymRollout, env_reward, task_dataset

    model, tok = _tiny()
    rollout = BranchgymRollout(_make_env, branch=BranchConfig(n=4, initial=2) if kind == "tree" else None, seed=0)
    seen = []

    class Record(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            seen.append((rollout.last_batch, trainer._buffered_inputs[0]))

    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    trainer = GRPOTrainer(model=model, reward_funcs=[env_reward], args=_config(tmp_path), processing_class=tok,
                          train_dataset=task_dataset([t.id for t in lookup_tasks("train")[:8]]),
                          rollout_func=rollout, callbacks=[Record()])
    trainer.train()

    logs = [h for h in trainer.state.log_history if "rewards/env_reward/mean" in h]
    assert len(logs) == len(seen) == 2
    tool_calls = clones = 0
    for log, (batch, buffered) in zip(logs, seen):
        assert batch.kind == kind and len(batch) == 8
        assert [batch.group_ids.count(g) for g in (0, 1)] == [4, 4]  # each tree / group is one GRPO group
        # the reward TRL logs is the env's: each row's reward is what its env steps returned
        for t in batch.trajectories:
            assert t.reward == pytest.approx(sum(s.reward for s in t.steps))
        assert log["rewards/env_reward/mean"] == pytest.approx(sum(batch.rewards) / len(batch), abs=1e-6)
        # TRL's loss mask (tool_mask) and sampling log-probs are the rollout's, row for row
        rows = {tuple(t.response_ids): t for t in batch.trajectories}
        for i in range(len(buffered["completion_ids"])):
            n = int(buffered["completion_mask"][i].sum())
            t = rows[tuple(buffered["completion_ids"][i][:n].tolist())]
            _check_row_masks(t)
            assert buffered["tool_mask"][i][:n].tolist() == t.loss_mask
            assert buffered["sampling_per_token_logps"][i][:n].tolist() == pytest.approx(t.logprobs, abs=1e-6)
            obs_text = "".join(s.observation for s in t.steps)
            masked = [tok_id for tok_id, m in zip(t.response_ids, t.loss_mask) if m == 0]
            assert tok.decode(masked) == obs_text
        tool_calls += batch.tool_calls
        clones += batch.counts.get("clones", 0)
    assert tool_calls > 0, "no tool call in the run: the masks were not exercised"
    if kind == "tree":
        assert clones > 0, "the tree never branched"
    assert any(not torch.equal(before[k], v) for k, v in model.named_parameters()), "no parameter changed"


def test_groups_must_be_whole_and_match_the_tree():
    from branchgym.algorithms.config import BranchConfig
    from branchgym.errors import ConfigError
    from branchgym.integrations.trl import BranchgymRollout, env_reward
    from branchgym.integrations.trl.rollout import group_task_ids

    assert group_task_ids(["a", "a", "b", "b"], 2) == ["a", "b"]
    assert group_task_ids([[{"role": "user", "content": "a"}]] * 2, 2) == ["a"]
    with pytest.raises(ConfigError, match="multiple of num_generations"):
        group_task_ids(["a", "a", "b"], 2)
    with pytest.raises(ConfigError, match="not one task repeated"):
        group_task_ids(["a", "b", "b", "b"], 2)
    with pytest.raises(ConfigError, match="task_dataset"):
        group_task_ids([{"x": 1}, {"x": 1}], 2)
    with pytest.raises(ConfigError, match="BranchgymRollout"):
        env_reward(["x"])
    r = BranchgymRollout(_make_env, branch=BranchConfig(n=8, initial=2))
    with pytest.raises(ConfigError, match="num_generations"):
        r._play(None, ["lookup-train-0000"], 4, None, 64)
