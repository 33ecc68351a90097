"""Clipped surrogates: test vector V3 (value and autograd gradient per column), dual clip,
AEPO's in-loss entropy advantage, and verl's PPO clip / clip-higher on random inputs."""

from __future__ import annotations

import math

import pytest
import torch

from branchgym.algorithms.inputs import LossInputs
from branchgym.algorithms.losses.ppo import (
    aepo,
    dapo,
    gppo,
    gppo_token_loss,
    ppo_clip,
    ppo_clip_token_loss,
)
from branchgym.algorithms.registry import POLICY_LOSSES
from branchgym.errors import ConfigError

# (rho, A): {column: (value, grad)} from docs/algorithms.md#ex-clip (eps 0.2, c = 3).
V3 = {
    (1.5, 1): {
        "ppo": (-1.2, 0),
        "dapo": (-1.28, 0),
        "gppo": (-1.2, -1.2),
        "aepo": (-1.2, -1.2),
        "ce": (-1.2, -1.2),
    },
    (1.25, 1): {
        "ppo": (-1.2, 0),
        "dapo": (-1.25, -1.25),
        "gppo": (-1.2, -1.2),
        "aepo": (-1.2, -1.2),
        "ce": (-1.2, -1.2),
    },
    (1.1, 1): {
        "ppo": (-1.1, -1.1),
        "dapo": (-1.1, -1.1),
        "gppo": (-1.1, -1.1),
        "aepo": (-1.1, -1.1),
        "ce": (-1.1, -1.1),
    },
    (0.5, -1): {
        "ppo": (0.8, 0),
        "dapo": (0.8, 0),
        "gppo": (0.8, 0.8),
        "aepo": (0.8, 0),
        "ce": (0.6, 0.6),
    },
    (0.5, 1): {
        "ppo": (-0.5, -0.5),
        "dapo": (-0.5, -0.5),
        "gppo": (-0.5, -0.5),
        "aepo": (-0.5, -0.5),
        "ce": (-0.5, -0.5),
    },
    (1.5, -1): {
        "ppo": (1.5, 1.5),
        "dapo": (1.5, 1.5),
        "gppo": (1.5, 1.5),
        "aepo": (1.5, 1.5),
        "ce": (1.5, 1.5),
    },
    (4.0, -1): {
        "ppo": (3.0, 0),
        "dapo": (3.0, 0),
        "gppo": (3.0, 0),
        "aepo": (3.0, 0),
        "ce": (3.0, 0),
    },
}

COLUMNS = {
    "ppo": ("ppo_clip", {}),
    "dapo": ("dapo", {"clip_ratio_c": 3.0}),
    "gppo": ("gppo", {}),
    "aepo": ("aepo", {}),
    "ce": ("gppo", {"beta_low": 0.75, "beta_high": 1.0}),
}


def _single(rho: float, adv: float) -> tuple[LossInputs, torch.Tensor]:
    logp = torch.tensor([[math.log(rho)]], dtype=torch.float64, requires_grad=True)
    inputs = LossInputs(
        logp,
        torch.zeros(1, 1, dtype=torch.float64),
        torch.tensor([[float(adv)]], dtype=torch.float64),
        torch.ones(1, 1),
    )
    return inputs, logp


@pytest.mark.parametrize("case", list(V3))
@pytest.mark.parametrize("column", list(COLUMNS))
def test_v3_value_and_gradient(case: tuple[float, int], column: str) -> None:
    name, params = COLUMNS[column]
    inputs, logp = _single(*case)
    loss, metrics = POLICY_LOSSES.get(name)(inputs, **params)
    loss.backward()
    value, grad = V3[case][column]
    assert loss.item() == pytest.approx(value, abs=1e-6)
    assert logp.grad.item() == pytest.approx(grad, abs=1e-6)
    assert all(not m.requires_grad for m in metrics.values())


def test_clip_fractions_and_dual_clip_metrics() -> None:
    rho = torch.tensor([[1.5, 0.5, 4.0, 1.0]])
    inputs = LossInputs(
        torch.log(rho), torch.zeros(1, 4), torch.tensor([[1.0, -1.0, -1.0, 1.0]]), torch.ones(1, 4)
    )
    _, m = ppo_clip(inputs)
    assert m["loss/clip_frac_high"].item() == pytest.approx(0.25)
    assert m["loss/clip_frac_low"].item() == pytest.approx(0.25)
    assert m["loss/clip_frac_dual"].item() == pytest.approx(0.25)
    loss_mat, _ = ppo_clip_token_loss(
        torch.log(rho), torch.zeros(1, 4), inputs.advantages, clip_ratio_c=None
    )
    assert loss_mat[0, 2].item() == pytest.approx(4.0)  # no dual clip


def test_ce_gppo_matches_gppo_with_unit_betas_and_ppo_forward() -> None:
    g = torch.Generator().manual_seed(3)
    lp, olp, adv = (
        torch.randn(5, 6, generator=g),
        torch.randn(5, 6, generator=g),
        torch.randn(5, 6, generator=g),
    )
    a, _ = gppo_token_loss(lp, olp, adv)
    b, _ = ppo_clip_token_loss(lp, olp, adv)
    assert torch.allclose(a, b, atol=1e-6)  # same forward values, different gradients


def test_aepo_entropy_advantage_inside_the_loss() -> None:
    h = torch.tensor([[0.5, 1.0, 1.5, 3.0]])
    adv = torch.ones(1, 4)
    inputs = LossInputs(
        torch.zeros(1, 4, requires_grad=True), torch.zeros(1, 4), adv, torch.ones(1, 4), entropies=h
    )
    loss, _ = aepo(inputs, entropy_adv_weight=0.2)
    expected = -torch.tensor(
        [0.814836, 0.907418, 1.0, 1.277746]
    ).mean()  # V9 at rho = 1, token-mean
    assert loss.item() == pytest.approx(expected.item(), abs=1e-5)
    with pytest.raises(ConfigError, match="entropies"):
        aepo(
            LossInputs(torch.zeros(1, 2), torch.zeros(1, 2), torch.ones(1, 2), torch.ones(1, 2)),
            entropy_adv_weight=0.2,
        )


def test_kl_term_is_added_and_needs_ref() -> None:
    inputs = LossInputs(
        torch.full((1, 2), -1.0),
        torch.full((1, 2), -1.0),
        torch.zeros(1, 2),
        torch.ones(1, 2),
        ref_logp=torch.full((1, 2), -1.2),
    )
    loss, m = ppo_clip(inputs, kl_coef=0.04, agg_mode="seq-mean-token-mean")
    assert loss.item() == pytest.approx(0.04 * 0.018731, abs=1e-7)
    assert m["loss/kl"].item() == pytest.approx(0.018731, abs=1e-6)
    with pytest.raises(ConfigError, match="ref_logp"):
        ppo_clip(
            LossInputs(torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1, 1)),
            kl_coef=0.1,
        )


def test_bad_hyperparameters_are_rejected() -> None:
    x = LossInputs(torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1, 1))
    with pytest.raises(ConfigError, match="clip_ratio_c"):
        ppo_clip(x, clip_ratio_c=0.5)
    with pytest.raises(ConfigError, match="clip_low"):
        dapo(x, clip_low=1.5)
    with pytest.raises(ConfigError, match="shape"):
        LossInputs(torch.zeros(1, 2), torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1, 1))


def test_fully_masked_rows_contribute_nothing() -> None:
    lp = torch.randn(3, 4, requires_grad=True)
    mask = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    for mode in ("token-mean", "seq-mean-token-mean"):
        lp.grad = None
        loss, _ = gppo(LossInputs(lp, torch.zeros(3, 4), torch.randn(3, 4), mask), agg_mode=mode)
        loss.backward()
        assert torch.isfinite(loss)
        assert lp.grad[1].abs().sum().item() == 0.0 and lp.grad[0, 2:].abs().sum().item() == 0.0


@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum"])
@pytest.mark.parametrize(("clip_low", "clip_high"), [(0.2, 0.2), (0.2, 0.28)])
def test_ppo_clip_and_clip_higher_match_verl(
    verl_core, verl_actor_config, mode, clip_low, clip_high
) -> None:
    cfg = verl_actor_config(clip_low, clip_high, 3.0)
    g = torch.Generator().manual_seed(7)
    for _ in range(4):
        b, t = 6, 11
        old = torch.randn(b, t, generator=g) - 1.0
        logp = (
            old + 0.6 * torch.randn(b, t, generator=g)
        ).requires_grad_()  # ratios on both sides of the range
        adv = torch.randn(b, t, generator=g)
        mask = (torch.rand(b, t, generator=g) > 0.25).float()
        mask[2] = 0.0
        logp_v = logp.detach().clone().requires_grad_()
        ref, ref_metrics = verl_core.compute_policy_loss_vanilla(old, logp_v, adv, mask, mode, cfg)
        ours, metrics = ppo_clip(
            LossInputs(logp, old, adv, mask),
            clip_low=clip_low,
            clip_high=clip_high,
            clip_ratio_c=3.0,
            agg_mode=mode,
        )
        assert ours.item() == pytest.approx(ref.item(), rel=1e-5, abs=1e-6)
        ours.backward()
        ref.backward()
        assert torch.allclose(logp.grad, logp_v.grad, atol=1e-6)
        assert metrics["loss/ppo_kl"].item() == pytest.approx(ref_metrics["actor/ppo_kl"], abs=1e-6)
        assert (metrics["loss/clip_frac_dual"].item()) == pytest.approx(
            ref_metrics["actor/pg_clipfrac_lower"], abs=1e-6
        )


@pytest.mark.parametrize("name, adv, log_ratio", [
    ("gppo", 1.0, 25.0),    # ρ = e^25, beyond the ±20 clamp of the log-ratio, A > 0
    ("aepo", 1.0, 25.0),
    ("gppo", -1.0, -25.0),  # ρ = e^-25, below the clamp, A < 0 (only GPPO preserves the low side)
])
def test_preserved_gradient_survives_the_log_ratio_clamp(name: str, adv: float, log_ratio: float) -> None:
    """The gradient-preserving clip keeps −A·(1±ε) even where the log-ratio hits verl's ±20
    clamp: the clamp only keeps exp() finite, it must not cut the preserved gradient."""
    lp = torch.tensor([[log_ratio]], requires_grad=True)
    x = LossInputs(lp, torch.zeros(1, 1), torch.tensor([[adv]]), torch.ones(1, 1))
    loss, _ = POLICY_LOSSES.get(name)(x)
    loss.backward()
    bound = 1.2 if adv > 0 else 0.8
    assert lp.grad is not None
    assert lp.grad.item() == pytest.approx(-adv * bound, abs=1e-6)
    assert math.isfinite(loss.item())
