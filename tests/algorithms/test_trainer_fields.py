"""The entropy-measurement settings of ARPO/AEPO reach the rollout: ``entropy_top_k`` (logprobs
per position), ``entropy_tokens`` (positions H_seg reads) and ``initial_entropy_tokens`` (AEPO's
H_root probe). They come from the presets' part-1 configs and can be overridden."""

from __future__ import annotations

import pytest

from branchgym.agents.entropy import segment_entropy
from branchgym.algorithms.config import AEPOConfig, ARPOConfig
from branchgym.algorithms.train_config import preset
from branchgym.algorithms.trainer import Trainer

ENV = "branchgym.algorithms.quickstart_task:make_lookup_env"
SMALL = dict(env=ENV, env_kwargs={"reward": "arpo_train"}, split="smoke", steps=1, prompts_per_step=2,
             max_new_tokens=24, max_response_tokens=64, progress=False, threads=1, tensorboard=False,
             plots=False, branching={"n": 4, "initial": 2, "z_extra": 1})


@pytest.fixture(scope="module")
def tiny():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "rollout"))
    from tinycache import sft_tiny_dir

    return sft_tiny_dir()


def test_presets_carry_the_part1_values() -> None:
    arpo, aepo = preset("arpo"), preset("aepo")
    assert (arpo.entropy_top_k, arpo.entropy_tokens) == (ARPOConfig().entropy_top_k, ARPOConfig().entropy_tokens)
    assert aepo.initial_entropy_tokens == AEPOConfig().initial_entropy_tokens == 50


def test_top_k_and_positions_reach_the_tree_rollout(tiny, tmp_path) -> None:
    """With 3 logprobs per position and 5 positions, every recorded position holds ≤ 3 + 1
    entries (the sampled token is added when outside the top 3) and each node's last H_seg is
    the 5-position sum of its last segment, not the 20-position one."""
    cfg = preset("arpo", model=str(tiny), out=str(tmp_path / "arpo"), entropy_top_k=3, entropy_tokens=5, **SMALL)
    trainer = Trainer(cfg)
    try:
        batch = trainer._rollout(trainer._pick_prompts(set()))
    finally:
        trainer.close()
    vocab = trainer.policy.vocab_size
    expander = batch.extra["expander"]
    checked = differs = 0
    for t in batch.trajectories:
        for seg in t.segments:
            assert seg.top_logprobs and all(len(pos) <= 4 for pos in seg.top_logprobs)
        last = t.segments[-1]
        # a segment shorter than one generate call came from one call (not continued)
        if t.node_id in expander.h_now and last.end - last.start < cfg.max_new_tokens:
            h5 = segment_entropy(last.top_logprobs, vocab, max_positions=5)
            assert expander.h_now[t.node_id] == pytest.approx(h5, abs=1e-9)
            checked += 1
            differs += len(last.top_logprobs) > 5 and h5 != segment_entropy(last.top_logprobs, vocab)
    assert checked and differs


def test_initial_entropy_tokens_sets_the_h_root_probe(tiny, tmp_path) -> None:
    cfg = preset("aepo", model=str(tiny), out=str(tmp_path / "aepo"), premonitor=True, initial_entropy_tokens=7,
                 **{**SMALL, "branching": {**SMALL["branching"], "penalty": 0.05, "rule": "aepo_code"}})
    trainer = Trainer(cfg)
    asked: list[int] = []
    real = trainer.rollout_policy.generate

    def generate(prompts, params):
        asked.append(params.max_new_tokens)
        return real(prompts, params)

    trainer.rollout_policy.generate = generate
    try:
        trainer._rollout(trainer._pick_prompts(set()))
    finally:
        trainer.close()
    assert asked[0] == 7  # the probe comes first, then the pre-rollout and the tree
    assert 50 not in asked


def test_grpo_configs_dapo_settings_reach_the_preset() -> None:
    """GRPOConfig's dynamic sampling and overlong buffer become the preset's TrainConfig fields
    (the buffer as a fraction of DAPO's 20480-token budget: 4096 -> 0.2)."""
    from branchgym.algorithms.config import GRPOConfig
    from branchgym.algorithms.train_config import _from

    fields = _from("x", "test", GRPOConfig(dynamic_sampling=True, overlong_buffer=2048)).fields()
    assert fields["dynamic_sampling"] is True and fields["overlong_buffer_frac"] == pytest.approx(0.1)
    plain = _from("y", "test", GRPOConfig()).fields()
    assert plain["dynamic_sampling"] is False and plain["overlong_buffer_frac"] is None
    assert preset("dapo").overlong_buffer_frac == pytest.approx(GRPOConfig.dapo().overlong_buffer / 20480)


def test_grpo_configs_group_size_reaches_the_preset() -> None:
    from branchgym.algorithms.config import GRPOConfig

    assert preset("grpo_paper").group_size == GRPOConfig.paper().group_size == 64
    assert preset("grpo").group_size == GRPOConfig.code_compat().group_size == 16
    assert preset("dr_grpo").group_size == GRPOConfig.dr_grpo().group_size == 8


def test_the_80_20_presets_selection_scope_is_honoured(tiny, tmp_path) -> None:
    """``entropy_mask_scope="batch"`` (EntropyMaskConfig's default, the paper's) makes the preset
    call the loss once per mini-batch, so the top-20 % is taken over all of its tokens;
    ``"microbatch"`` (the released code) keeps the trainer's micro-batches."""
    from branchgym.algorithms.config import EntropyMaskConfig
    from branchgym.algorithms.registry import POLICY_LOSSES

    assert EntropyMaskConfig().entropy_mask_scope == "batch"
    cfg = preset("high_entropy", model=str(tiny), out=str(tmp_path / "he"),
                 **{k: v for k, v in SMALL.items() if k != "branching"}, group_size=12, dynamic_sampling=False)
    rows_seen: list[int] = []
    real = POLICY_LOSSES.get("high_entropy_mask")

    def spy(inputs, **kw):
        rows_seen.append(inputs.logp.shape[0])
        return real(inputs, **kw)

    spy.needs = real.needs
    POLICY_LOSSES.unregister("high_entropy_mask")
    POLICY_LOSSES.register("high_entropy_mask", spy)
    try:
        trainer = Trainer(cfg)
        try:
            m = trainer.train_step()
        finally:
            trainer.close()
    finally:
        POLICY_LOSSES.unregister("high_entropy_mask")
        POLICY_LOSSES.register("high_entropy_mask", real)
    assert m["train/kept_rows"] > 16  # more than the default micro-batch
    assert rows_seen == [int(m["train/kept_rows"])]  # one call over the whole (single) mini-batch


@pytest.mark.parametrize("algo,tool_workers", [("grpo", 1), ("grpo", None), ("aepo", 1)])
def test_tool_workers_reaches_the_rollout(tiny, tmp_path, algo, tool_workers) -> None:
    """``tool_workers=1`` runs every tool call on the trainer's thread (flat and tree rollouts);
    the default runs a round's calls on the engine's executor threads."""
    import threading

    import gymnasium as gym

    from branchgym.algorithms.quickstart_task import make_lookup_env

    threads: set[str] = set()

    class RecordThread(gym.Wrapper):
        def step(self, action):
            threads.add(threading.current_thread().name)
            return self.env.step(action)

    def make_env():
        return RecordThread(make_lookup_env(split="smoke", reward="arpo_train"))

    if algo == "grpo":
        kw = {**{k: v for k, v in SMALL.items() if k != "branching"}, "group_size": 4}
    else:
        kw = {**SMALL, "premonitor": True, "initial_entropy_tokens": 8}
    cfg = preset(algo, model=str(tiny), out=str(tmp_path / algo), tool_workers=tool_workers, **kw)
    trainer = Trainer(cfg, make_env=make_env)
    try:
        trainer._rollout(trainer._pick_prompts(set()))
    finally:
        trainer.close()
    assert threads, "the tiny model made no tool call"
    main = threading.main_thread().name
    assert (threads == {main}) == (tool_workers == 1), threads
