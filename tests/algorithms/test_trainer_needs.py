"""The trainer honours what an estimator or loss declares (``inputs.declare``), for any entry:
which optional inputs it fills, and whether an estimator is recomputed per mini-batch with the
current policy's entropies. Nothing in the trainer is keyed on an algorithm's name."""

from __future__ import annotations

import pytest
import torch

from branchgym.algorithms import advantages as adv_mod
from branchgym.algorithms.inputs import Needs, declare, needs_of
from branchgym.algorithms.registry import ADVANTAGES, POLICY_LOSSES
from branchgym.algorithms.train_config import preset
from branchgym.algorithms.trainer import Trainer
from branchgym.errors import ConfigError

ENV = "branchgym.algorithms.quickstart_task:make_lookup_env"
SMALL = dict(env=ENV, env_kwargs={"reward": "arpo_train"}, split="smoke", steps=1, prompts_per_step=2,
             group_size=4, max_new_tokens=24, max_response_tokens=64, lr=1e-2, progress=False, threads=1,
             checkpoint_every=1, tensorboard=False, plots=False, mini_batches=2,
             overlong_buffer_frac=0.75)  # shaped rewards: the groups have a spread, so updates happen
TREE = {"n": 4, "initial": 2, "z_extra": 1, "penalty": 0.05, "rule": "aepo_code"}


@pytest.fixture(scope="module")
def tiny():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "rollout"))
    from tinycache import sft_tiny_dir

    return sft_tiny_dir()


@pytest.fixture
def registered():
    """Register test entries for the duration of one test."""
    names: list[tuple[object, str]] = []

    def add(registry, name, fn):
        registry.register(name, fn)
        names.append((registry, name))
        return name

    yield add
    for registry, name in names:
        registry.unregister(name)


def _recording_estimator(calls: list, needs: Needs | None):
    def est(batch, **_):
        calls.append(batch)
        return adv_mod.grpo(batch)

    if needs is not None:
        est = declare(needs=needs.fields, per_minibatch=needs.per_minibatch)(est)
    return est


@pytest.mark.filterwarnings("ignore:Seems like `optimizer.step\\(\\)` has been overridden:UserWarning")
@pytest.mark.parametrize("declared", ["per_minibatch", "entropies", "nothing"])
def test_the_declaration_decides_what_an_estimator_receives(tiny, tmp_path, registered, declared) -> None:
    """The same estimator body, three declarations: per mini-batch it is called once per
    mini-batch with that mini-batch's rows and, after the first optimizer step, entropies
    recomputed with the updated weights; otherwise once with the rollout policy's entropies,
    or with none when it does not declare them."""
    calls: list = []
    needs = {"per_minibatch": Needs(frozenset({"entropies"}), True), "entropies": Needs(frozenset({"entropies"})),
             "nothing": None}[declared]
    name = registered(ADVANTAGES, f"test_rec_{declared}", _recording_estimator(calls, needs))
    cfg = preset("grpo", model=str(tiny), out=str(tmp_path / "run"), advantage=name, advantage_params={}, **SMALL)
    trainer = Trainer(cfg)
    passes: list = []
    real_pass = trainer._no_grad_pass

    def no_grad_pass(policy, tt):
        out = real_pass(policy, tt)
        passes.append((tt, out[1].clone()))
        return out

    trainer._no_grad_pass = no_grad_pass
    try:
        m = trainer.train_step()
    finally:
        trainer.close()
    rows = int(m["train/kept_rows"])
    assert m["train/grad_norm"] > 0
    if declared == "per_minibatch":
        assert [len(c.rewards) for c in calls] == [rows // 2, rows - rows // 2]
        assert all(c.population_rewards is not None and len(c.population_rewards) == rows for c in calls)
        # the second mini-batch's entropies are the recomputation after the first update ...
        assert len(passes) == 2 and torch.equal(calls[1].entropies, passes[1][1].cpu())
        # ... which differs from what the rollout policy gave for the same rows
        (whole, before), (sub, _) = passes
        w = sub.input_ids.shape[1]
        row_of = [next(i for i in range(len(whole.input_ids)) if torch.equal(whole.input_ids[i, :w], r))
                  for r in sub.input_ids]
        mask = calls[1].loss_mask > 0
        assert not torch.allclose(calls[1].entropies[mask], before[row_of, :w].cpu()[mask])
    else:
        assert len(calls) == 1 and len(calls[0].rewards) == rows and calls[0].population_rewards is None
        assert len(passes) == 1
        if declared == "entropies":
            assert torch.equal(calls[0].entropies, passes[0][1].cpu())
        else:
            assert calls[0].entropies is None and calls[0].step_ids is None and calls[0].parent_ids is None


def _aepo_weights_after_one_step(tiny, tmp_path, tag: str) -> dict[str, torch.Tensor]:
    cfg = preset("aepo", model=str(tiny), out=str(tmp_path / tag), branching=TREE, **SMALL)
    trainer = Trainer(cfg)
    try:
        trainer.train_step()
        return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    finally:
        trainer.close()


def test_removing_aepos_per_minibatch_declaration_changes_the_update(tiny, tmp_path, monkeypatch) -> None:
    """AEPO's estimator is recomputed per mini-batch only because it says so: the same seeded
    step without the declaration (entropies of the rollout policy, z-score over the whole batch)
    ends with other weights; with it, twice, with the same weights."""
    assert needs_of(ADVANTAGES.get("aepo")).per_minibatch
    declared = _aepo_weights_after_one_step(tiny, tmp_path, "a")
    again = _aepo_weights_after_one_step(tiny, tmp_path, "b")
    assert all(torch.equal(declared[k], again[k]) for k in declared)  # the run is deterministic
    monkeypatch.setattr(adv_mod.aepo, "needs", Needs(frozenset({"entropies"}), per_minibatch=False))
    undeclared = _aepo_weights_after_one_step(tiny, tmp_path, "c")
    assert any(not torch.equal(declared[k], undeclared[k]) for k in declared)


def test_a_loss_gets_entropies_only_when_it_declares_them(tiny, tmp_path, registered) -> None:
    seen: dict[str, object] = {}

    def plain(inputs, **kw):
        seen["plain"] = inputs.entropies
        return POLICY_LOSSES.get("ppo_clip")(inputs, **kw)

    @declare(needs=["entropies"])
    def wants(inputs, **kw):
        seen["wants"] = inputs.entropies
        assert not inputs.entropies.requires_grad  # data for the loss, not a second gradient path
        return POLICY_LOSSES.get("ppo_clip")(inputs, **kw)

    for name, fn in (("test_plain_loss", plain), ("test_wants_loss", wants)):
        registered(POLICY_LOSSES, name, fn)
        cfg = preset("grpo", model=str(tiny), out=str(tmp_path / name), loss=name, **{**SMALL, "mini_batches": 1})
        trainer = Trainer(cfg)
        try:
            trainer.train_step()
        finally:
            trainer.close()
    assert seen["plain"] is None
    assert isinstance(seen["wants"], torch.Tensor) and float(seen["wants"].max()) > 0


def test_needs_the_run_cannot_meet_fail_before_the_model_loads(tmp_path, registered) -> None:
    """arpo_hard reads the tree's shared prefixes: a flat rollout is refused with the reason,
    before the (missing) model is even looked at."""
    missing_model = str(tmp_path / "no-model")
    with pytest.raises(ConfigError, match=r"needs \['branch_points', 'parent_ids'\].*rollout='tree'"):
        Trainer(preset("grpo", model=missing_model, out=str(tmp_path / "o"), advantage="arpo_hard",
                       advantage_params={}))
    name = registered(ADVANTAGES, "test_traj", declare(needs=["traj_ids"])(lambda batch, **kw: adv_mod.grpo(batch)))
    with pytest.raises(ConfigError, match=r"declares needs \['traj_ids'\]"):
        Trainer(preset("grpo", model=missing_model, out=str(tmp_path / "o"), advantage=name, advantage_params={}))
    with pytest.raises(ConfigError, match="per_minibatch=True"):
        declare(needs=["step_ids"], per_minibatch=True)
    with pytest.raises(ConfigError, match="not optional fields"):
        declare(needs=["entropy"])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (marker: gpu)")
def test_the_loss_path_stays_on_the_models_device(tiny, tmp_path, registered) -> None:
    """On CUDA every tensor the loss reads is on the model's device (no CPU round trip)."""
    devices: set[str] = set()

    @declare(needs=["entropies"])
    def loss(inputs, **kw):
        for t in (inputs.logp, inputs.old_logp, inputs.advantages, inputs.loss_mask, inputs.entropies):
            devices.add(t.device.type)
        return POLICY_LOSSES.get("ppo_clip")(inputs, **kw)

    name = registered(POLICY_LOSSES, "test_device_loss", loss)
    cfg = preset("aepo", model=str(tiny), out=str(tmp_path / "cuda"), loss=name, branching=TREE,
                 **{**SMALL, "device": "cuda"})
    trainer = Trainer(cfg)
    try:
        m = trainer.train_step()
    finally:
        trainer.close()
    assert devices == {"cuda"} and m["train/rollout_logprob_abs_diff"] < 1e-2


def test_a_loss_may_report_plain_number_metrics(tiny, tmp_path, registered) -> None:
    def loss(inputs, **kw):
        total, metrics = POLICY_LOSSES.get("ppo_clip")(inputs, **kw)
        return total, {**metrics, "loss/custom": 2.0}

    name = registered(POLICY_LOSSES, "test_number_metric", loss)
    cfg = preset("grpo", model=str(tiny), out=str(tmp_path / "n"), loss=name, **{**SMALL, "mini_batches": 1})
    trainer = Trainer(cfg)
    try:
        m = trainer.train_step()
    finally:
        trainer.close()
    assert m["loss/custom"] == 2.0
