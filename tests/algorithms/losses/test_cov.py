"""Clip-Cov and KL-Cov: V11 selection, random-candidate zeroing, and verl's KL-Cov."""

from __future__ import annotations

import pytest
import torch

from branchgym.algorithms.inputs import LossInputs
from branchgym.algorithms.losses.cov import clip_cov, kl_cov, token_covariance
from branchgym.errors import ConfigError

A = torch.tensor([[1.0, 1.0, -1.0, -1.0, 0.5]])
LOGP = torch.tensor([[-0.1, -2.0, -0.2, -3.0, -1.0]])


def test_v11_covariance_and_selection() -> None:
    cov = token_covariance(A, LOGP, torch.ones(1, 5))
    assert torch.allclose(cov, torch.tensor([[1.044, -0.666, -1.166, 1.914, 0.104]]), atol=1e-6)
    old = LOGP - 0.3
    logp = LOGP.clone().requires_grad_()
    loss, m = kl_cov(LossInputs(logp, old, A, torch.ones(1, 5)), kl_cov_ratio=0.2)  # k*N = 1
    loss.backward()
    rho = torch.exp(torch.tensor(0.3))
    base = -(A * rho)
    expected = base.clone()
    expected[0, 3] += 1.0 * 0.3  # beta |logp - old|
    assert loss.item() == pytest.approx(expected.mean().item(), abs=1e-6)
    assert m["loss/kl_cov_selected_frac"].item() == pytest.approx(0.2)
    # gradient at index 3 has the extra +beta*sign term / N
    assert logp.grad[0, 3].item() == pytest.approx((-A[0, 3] * rho + 1.0).item() / 5, abs=1e-6)


def test_kl_cov_matches_verl(verl_core, verl_actor_config) -> None:
    cfg = verl_actor_config(loss_mode="kl_cov", kl_cov_ratio=0.1, ppo_kl_coef=1.0)
    g = torch.Generator().manual_seed(2)
    old = torch.randn(4, 10, generator=g)
    logp = old + 0.3 * torch.randn(4, 10, generator=g)
    adv = torch.randn(4, 10, generator=g)
    mask = (torch.rand(4, 10, generator=g) > 0.2).float()
    ref, _ = verl_core.compute_policy_loss_kl_cov(old, logp, adv, mask, "token-mean", cfg)
    ours, _ = kl_cov(LossInputs(logp, old, adv, mask), kl_cov_ratio=0.1)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5)


def test_clip_cov_zeroes_only_candidates_reproducibly() -> None:
    # Tokens 0 and 3 have 1 < Cov < 5 and are unclipped at rho = 1: exactly one of them is zeroed.
    inputs = LossInputs(LOGP.clone(), LOGP.clone(), A, torch.ones(1, 5))
    plain = -A.mean()
    seen = set()
    for seed in range(8):
        loss, m = clip_cov(
            inputs, clip_cov_ratio=0.2, generator=torch.Generator().manual_seed(seed)
        )
        dropped = round(((plain - loss) * 5).item(), 6)  # the zeroed token's -A
        assert dropped in (-1.0, 1.0)
        seen.add(dropped)
        assert m["loss/cov_zeroed_frac"].item() == pytest.approx(0.2)
    assert seen == {-1.0, 1.0}  # index 0 (A=+1, loss -1) and index 3 (A=-1, loss +1) both occur
    a, _ = clip_cov(inputs, clip_cov_ratio=0.2, generator=torch.Generator().manual_seed(3))
    b, _ = clip_cov(inputs, clip_cov_ratio=0.2, generator=torch.Generator().manual_seed(3))
    assert a.item() == b.item()
    with pytest.raises(ConfigError, match="fraction"):
        clip_cov(inputs, clip_cov_ratio=0.0)


def test_kl_cov_matches_verl_with_many_tied_covariances(verl_core, verl_actor_config) -> None:
    """Advantages and log-probs drawn from a few values (many equal covariances, so the top-k has
    ties): the loss still equals verl's, batch after batch."""
    cfg = verl_actor_config(loss_mode="kl_cov", kl_cov_ratio=0.1, ppo_kl_coef=1.0)
    g = torch.Generator().manual_seed(5)
    for _ in range(50):
        old = torch.randint(-3, 0, (4, 20), generator=g).float()
        logp = (old + 0.5 * torch.randint(0, 2, (4, 20), generator=g)).requires_grad_()
        adv = torch.randint(-1, 2, (4, 20), generator=g).float()
        mask = (torch.rand(4, 20, generator=g) > 0.3).float()
        ref, _ = verl_core.compute_policy_loss_kl_cov(old, logp.detach(), adv, mask, "token-mean", cfg)
        ours, _ = kl_cov(LossInputs(logp, old, adv, mask), kl_cov_ratio=0.1)
        assert ours.item() == pytest.approx(ref.item(), rel=1e-6, abs=1e-7)
