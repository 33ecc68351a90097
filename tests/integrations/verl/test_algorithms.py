"""branchgym's estimators and losses as verl sees them: through verl's own registries and its
v1 trainer's multi-output advantage path, compared with branchgym's functions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

verl = pytest.importorskip("verl", reason="pip install --no-deps verl==0.9.1 (branchgym[verl])")

from verl import DataProto  # noqa: E402
from verl.trainer.ppo.core_algos import (  # noqa: E402
    ADV_ESTIMATOR_REGISTRY,
    POLICY_LOSS_REGISTRY,
    get_adv_estimator_fn,
    get_policy_loss_fn,
)
from verl.trainer.ppo.v1.utils import compute_advantage_for_multi_trajectories  # noqa: E402
from verl.workers.config import ActorConfig, PolicyLossConfig  # noqa: E402

from branchgym.algorithms.advantages import dr_grpo, grpo, rloo  # noqa: E402
from branchgym.algorithms.inputs import AdvantageInputs, LossInputs  # noqa: E402
from branchgym.algorithms.losses.ppo import aepo, gppo  # noqa: E402
from branchgym.errors import ConfigError  # noqa: E402
from branchgym.integrations.verl.algorithms import VERL_NAMES  # noqa: E402


def tree_batch() -> tuple[DataProto, list[str], torch.Tensor, torch.Tensor]:
    """Two prompts; prompt a has 2 sessions whose trees have 3 and 2 leaves, prompt b has 2
    sessions of 1 and 3 leaves. Each leaf has its own reward at its last response token."""
    layout = [("a", 0, 3), ("a", 1, 2), ("b", 0, 1), ("b", 1, 3)]
    rewards = [1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.5]
    keys, uids, group, extras = [], [], [], []
    for g, (uid, session, leaves) in enumerate(layout):
        for i in range(leaves):
            keys.append(f"{uid}_{session}_{i}")
            uids.append(uid)
            group.append(0 if uid == "a" else 1)
            extras.append({"branchgym_tree_id": f"{uid}{session}", "branchgym_row": i,
                           "branchgym_parent_row": -1 if i == 0 else 0,
                           "branchgym_branch_point": 0 if i == 0 else 1,
                           "branchgym_reward": rewards[len(extras)]})
    b, t = len(keys), 6
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(3, t + 1, (b,), generator=gen)
    mask = (torch.arange(t).unsqueeze(0) < lengths.unsqueeze(1)).float()
    mask[:, 1] = 0.0  # a tool-result token inside every response
    scores = torch.zeros(b, t)
    scores[torch.arange(b), lengths - 1] = torch.tensor(rewards)
    data = DataProto.from_dict(
        tensors={"token_level_rewards": scores, "response_mask": mask},
        non_tensors={"uid": np.array(uids, dtype=object),
                     "extra_fields": np.array(extras, dtype=object)},
    )
    return data, keys, torch.tensor(rewards), torch.tensor(group)


def test_names_are_registered() -> None:
    assert set(VERL_NAMES["adv_estimators"]) <= set(ADV_ESTIMATOR_REGISTRY)
    assert set(VERL_NAMES["policy_losses"]) <= set(POLICY_LOSS_REGISTRY)
    assert {"branchgym_grpo", "branchgym_aepo", "branchgym_empg"} <= set(
        VERL_NAMES["adv_estimators"]
    )
    assert set(VERL_NAMES["policy_losses"]) == {"branchgym_aepo", "branchgym_gppo"}


@pytest.mark.parametrize(("name", "ours"), [("branchgym_grpo", grpo), ("branchgym_rloo", rloo)])
def test_multi_output_path_scores_every_leaf(name: str, ours) -> None:
    data, keys, rewards, group = tree_batch()
    mask = data.batch["response_mask"].clone()
    out = compute_advantage_for_multi_trajectories(
        data, batch_keys=keys, adv_estimator=name, config=None, norm_adv_by_std_in_grpo=True
    )
    want = ours(AdvantageInputs(rewards, group, mask))
    torch.testing.assert_close(out.batch["advantages"], want)
    torch.testing.assert_close(out.batch["returns"], want)


def test_verl_grpo_scores_only_each_sessions_last_output() -> None:
    """The reason branchgym_grpo exists: verl's 'grpo' in the v1 trainer takes the group
    statistics over each session's final output and copies that advantage to its other leaves."""
    data, keys, rewards, group = tree_batch()
    mask = data.batch["response_mask"].clone()
    out = compute_advantage_for_multi_trajectories(
        data, batch_keys=keys, adv_estimator="grpo", config=None
    )
    final = [2, 4, 5, 8]  # last leaf of each session
    session_of = [0, 0, 0, 1, 1, 2, 3, 3, 3]
    per_final = grpo(AdvantageInputs(rewards[final], group[final], torch.ones(4, 1)))[:, 0]
    torch.testing.assert_close(out.batch["advantages"], per_final[session_of].unsqueeze(1) * mask)
    assert not torch.allclose(out.batch["advantages"], grpo(AdvantageInputs(rewards, group, mask)))


def test_dr_grpo_ignores_std_flag_and_grpo_follows_it() -> None:
    data, keys, rewards, group = tree_batch()
    mask = data.batch["response_mask"]
    uid = data.non_tensor_batch["uid"]
    inputs = AdvantageInputs(rewards, group, mask)
    for flag in (True, False):
        cfg = {"norm_adv_by_std_in_grpo": flag}
        adv, _ = get_adv_estimator_fn("branchgym_grpo")(
            data.batch["token_level_rewards"], mask, index=uid, config=cfg
        )
        torch.testing.assert_close(adv, grpo(inputs, scale_by_std=flag))
        dr, _ = get_adv_estimator_fn("branchgym_dr_grpo")(
            data.batch["token_level_rewards"], mask, index=uid, config=cfg
        )
        torch.testing.assert_close(dr, dr_grpo(inputs))
    soft, _ = get_adv_estimator_fn("branchgym_arpo_soft")(
        data.batch["token_level_rewards"], mask, index=uid, config=None
    )
    torch.testing.assert_close(soft, grpo(inputs))


def test_recipe_estimators_refuse_plain_verl() -> None:
    data, keys, _, _ = tree_batch()
    with pytest.raises(ConfigError, match=r"branchgym_arpo_hard.*recipe"):
        compute_advantage_for_multi_trajectories(
            data, batch_keys=keys, adv_estimator="branchgym_arpo_hard", config=None
        )


def actor_config(low: float = 0.2, high: float = 0.28, c: float = 3.0) -> ActorConfig:
    return ActorConfig(
        strategy="fsdp",
        rollout_n=4,
        clip_ratio=low,
        clip_ratio_low=low,
        clip_ratio_high=high,
        clip_ratio_c=c,
        ppo_micro_batch_size_per_gpu=1,
        policy_loss=PolicyLossConfig(),
    )


def loss_case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ratios spread over both clip bounds and the dual clip, advantages of both signs."""
    gen = torch.Generator().manual_seed(3)
    b, t = 4, 12
    old = -torch.rand(b, t, generator=gen) * 2.0
    logp = old + torch.randn(b, t, generator=gen) * 0.6
    logp[0, 0] = old[0, 0] + 1.5  # ratio 4.5 with a negative advantage: dual clip
    adv = torch.randn(b, t, generator=gen)
    adv[0, 0] = -1.0
    mask = (torch.rand(b, t, generator=gen) > 0.2).float()
    return old, logp, adv, mask


@pytest.mark.parametrize(
    ("verl_name", "ours"), [("branchgym_aepo", aepo), ("branchgym_gppo", gppo)]
)
@pytest.mark.parametrize("agg", ["token-mean", "seq-mean-token-mean"])
def test_loss_value_and_gradient_match_branchgym(verl_name: str, ours, agg: str) -> None:
    old, logp0, adv, mask = loss_case()
    cfg = actor_config()
    lp_verl = logp0.clone().requires_grad_()
    loss_v, metrics = get_policy_loss_fn(verl_name)(
        old_log_prob=old,
        log_prob=lp_verl,
        advantages=adv,
        response_mask=mask.bool(),
        loss_agg_mode=agg,
        config=cfg,
        rollout_is_weights=None,
    )
    loss_v.backward()
    lp_ours = logp0.clone().requires_grad_()
    loss_o, m_ours = ours(
        LossInputs(lp_ours, old, adv, mask), clip_low=0.2, clip_high=0.28, clip_ratio_c=3.0,
        agg_mode=agg,
    )
    loss_o.backward()
    torch.testing.assert_close(loss_v, loss_o)
    torch.testing.assert_close(lp_verl.grad, lp_ours.grad)
    assert lp_verl.grad.abs().sum() > 0
    assert metrics["actor/pg_clipfrac_lower"] == pytest.approx(float(m_ours["loss/clip_frac_dual"]))
    # The clipped tokens keep a gradient (GPPO both bounds, AEPO the upper one): unlike vanilla.
    lp_van = logp0.clone().requires_grad_()
    get_policy_loss_fn("vanilla")(
        old_log_prob=old, log_prob=lp_van, advantages=adv, response_mask=mask.bool(),
        loss_agg_mode=agg, config=cfg,
    )[0].backward()
    assert not torch.allclose(lp_van.grad, lp_verl.grad)


def test_loss_applies_rollout_is_weights() -> None:
    old, logp, adv, mask = loss_case()
    w = torch.full_like(old, 0.5)
    fn = get_policy_loss_fn("branchgym_aepo")
    full = fn(old, logp, adv, mask.bool(), "token-mean", actor_config(), None)[0]
    half = fn(old, logp, adv, mask.bool(), "token-mean", actor_config(), w)[0]
    torch.testing.assert_close(half, full * 0.5)
