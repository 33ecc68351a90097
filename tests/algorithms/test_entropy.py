"""Token entropy from logits, entropy z-score edge cases, top-ρ mask (V12)."""

from __future__ import annotations

import pytest
import torch

from branchgym.algorithms.entropy import entropy_zscore, high_entropy_mask, token_entropy
from branchgym.errors import ConfigError


def test_token_entropy_matches_definition_and_temperature() -> None:
    logits = torch.randn(3, 5, 11, generator=torch.Generator().manual_seed(0))
    for temp in (1.0, 0.7):
        p = torch.softmax(logits / temp, dim=-1)
        assert torch.allclose(
            token_entropy(logits, temperature=temp), -(p * p.log()).sum(-1), atol=1e-5
        )
    with pytest.raises(ConfigError, match="temperature"):
        token_entropy(logits, temperature=0.0)


def test_zscore_edge_cases() -> None:
    assert entropy_zscore(torch.ones(2, 3), torch.zeros(2, 3)).abs().sum() == 0
    assert (
        entropy_zscore(torch.full((1, 3), 2.0), torch.ones(1, 3)).abs().sum() == 0
    )  # sigma 0 -> 1
    z = entropy_zscore(torch.tensor([[1.0, 3.0]]), torch.ones(1, 2), unbiased=False)
    assert z.tolist() == [[-1.0, 1.0]]


def test_v12_and_ceiling() -> None:
    h = torch.tensor([[0.1, 2.0, 0.3, 1.5, 0.05, 0.9, 0.2, 0.4, 0.6, 0.7]])
    assert high_entropy_mask(h, torch.ones_like(h)).nonzero()[:, 1].tolist() == [1, 3]
    assert int(high_entropy_mask(h[:, :6], torch.ones(1, 6)).sum()) == 2  # ceil(1.2) = 2
    assert int(high_entropy_mask(h[:, :2], torch.ones(1, 2)).sum()) == 1  # at least one
    with pytest.raises(ConfigError, match="ratio"):
        high_entropy_mask(h, torch.ones_like(h), ratio=1.5)


def test_80_20_ties_are_broken_as_the_released_code_breaks_them() -> None:
    """Entropies with many ties: the selected tokens are the ones ``torch.topk`` picks from the
    valid tokens' entropies packed in row-major order (the released code packs, then takes the
    top-k), not from the padded batch — with ties the two choose different tokens."""

    def released(h: torch.Tensor, mask: torch.Tensor, ratio: float) -> torch.Tensor:
        valid = mask.reshape(-1) > 0
        packed = h.reshape(-1)[valid]
        k = max(1, int(packed.numel() * ratio + 0.9999))
        where = valid.nonzero().squeeze(1)[torch.topk(packed, k).indices]
        out = torch.zeros(h.numel(), dtype=torch.bool)
        out[where] = True
        return out.view_as(h)

    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        b, t = int(torch.randint(1, 6, (1,), generator=g)), 20 * int(torch.randint(1, 6, (1,), generator=g))
        h = torch.randint(0, 3, (b, t), generator=g).float()
        mask = (torch.rand(b, t, generator=g) < 0.6).float()
        mask[0, 0] = 1.0
        assert torch.equal(high_entropy_mask(h, mask, ratio=0.2), released(h, mask, 0.2))


def test_one_entropy_function_of_each_kind_is_exported_and_run() -> None:
    """The names the package exports are the functions its backends, rollout and trainer call."""
    import branchgym.agents as agents
    import branchgym.agents.entropy as ent
    import branchgym.agents.hf as hf
    import branchgym.agents.loop as loop
    import branchgym.algorithms as algos
    import branchgym.algorithms.branching as branching
    from branchgym.algorithms.trainer import Trainer

    assert algos.token_entropy is token_entropy is agents.entropy_from_logits is ent.entropy_from_logits
    assert hf.entropy_from_logits is ent.entropy_from_logits  # what HF sampling and forward_logprobs call
    assert algos.segment_entropy is branching.segment_entropy is ent.segment_entropy
    assert agents.arpo_segment_entropy is ent.segment_entropy and loop.segment_entropy is ent.segment_entropy
    assert not hasattr(Trainer, "_forward")  # the update's forward is HFPolicy.forward_logprobs
