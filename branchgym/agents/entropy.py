"""The token-entropy and segment-entropy functions: the only ones in the package.

Everything that measures entropy calls these: the HF backend while it samples, the trainer's
forward pass (:meth:`branchgym.agents.hf.HFPolicy.forward_logprobs`), the rollout loop's
segment entropy for the ARPO/AEPO branch rule, and the update-time consumers (AEPO's
entropy-aware advantage, the 80/20 mask, EMPG). :mod:`branchgym.algorithms.entropy` and
:mod:`branchgym.algorithms.branching` re-export them under the names ``token_entropy`` and
``segment_entropy``; those are the same function objects, not copies.

The torch one imports torch when called; the top-k ones are plain Python so the vLLM/OpenAI
backends and the branch rule need no torch. Equations: docs/algorithms.md#entropy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from branchgym.errors import ConfigError

if TYPE_CHECKING:
    from torch import Tensor

__all__ = [
    "entropy_from_logits",
    "topk_position_entropy",
    "segment_entropy",
    "arpo_segment_entropy",
    "ARPO_ENTROPY_TOKENS",
]

ARPO_ENTROPY_TOKENS = 20
"""ARPO and AEPO measure a segment's entropy over its first <= 20 generated tokens."""

PositionLogprobs = Sequence[float] | Mapping[object, float]
Position = PositionLogprobs | float


def entropy_from_logits(logits: Tensor, temperature: float = 1.0) -> Tensor:
    """Exact entropy ``H = -Σ_v p_v log p_v`` with ``p = softmax(z / T)``, over the last dim.

    Shapes: (..., V) -> (...). Differentiable (detach it where an algorithm uses it as data).
    Masked logits of ``-inf`` contribute 0 (their probability is 0). Same value as verl's
    ``logsumexp(z) − Σ softmax(z)·z``. Exported as ``branchgym.algorithms.token_entropy`` too.

    >>> import torch
    >>> round(float(entropy_from_logits(torch.zeros(4))), 6) == round(math.log(4), 6)
    True
    """
    import torch

    if not temperature > 0:
        raise ConfigError(
            f"temperature must be > 0, got {temperature!r}; use the sampling T (e.g. 1.0)."
        )
    z = logits.float() / temperature
    logp = torch.log_softmax(z, dim=-1)
    p = logp.exp()
    # p * logp is nan where p == 0 and logp == -inf; those terms are 0 by convention.
    return -torch.where(p > 0, p * logp, torch.zeros_like(p)).sum(dim=-1)


def topk_position_entropy(position_logprobs: PositionLogprobs) -> float:
    """Truncated entropy of one position: ``-Σ_{l∈LP} exp(l)·l`` over the returned logprobs.

    ``LP`` = the engine's top-k logprobs at that position plus the sampled token if it was not
    among them (vLLM's convention), as a list or a ``{token: logprob}`` mapping. Not
    normalised. A logprob above 0 (a probability passed by mistake) or NaN raises.

    >>> round(topk_position_entropy([math.log(0.5), math.log(0.5)]), 6) == round(math.log(2), 6)
    True
    """
    values = (
        position_logprobs.values() if isinstance(position_logprobs, Mapping) else position_logprobs
    )
    total = 0.0
    for lp in values:
        lp = float(lp)
        if lp > 1e-6 or math.isnan(lp):
            raise ConfigError(
                f"a logprob must be ≤ 0, got {lp!r}; pass log-probabilities, not probabilities."
            )
        if lp > -math.inf:  # exp(-inf)·(-inf) is 0 by convention
            total -= math.exp(lp) * lp
    return total


def segment_entropy(
    positions: Sequence[Position],
    vocab_size: int,
    *,
    max_positions: int = ARPO_ENTROPY_TOKENS,
) -> float:
    """ARPO's segment entropy ``H_seg = (Σ_{p < 20} −Σ_{l∈LP_p} exp(l)·l) / ln|V|``.

    A **sum** over the first ``min(max_positions, len(segment))`` positions of the truncated
    top-k entropy (:func:`topk_position_entropy`), divided by ``ln |V|`` with
    ``|V| = len(tokenizer.get_vocab())``; not a per-token mean. An empty segment gives 0.
    A position given as a number is that position's entropy, already computed (the exact
    entropies of :class:`~branchgym.agents.policy.Completion`, ``entropy_source="exact"``): the
    same sum and normalisation then run over exact instead of truncated entropies.
    This is what the released ARPO/AEPO rollouts compute from vLLM's ``logprobs=10``; see
    docs/algorithms.md#arpo.

    >>> round(segment_entropy([[math.log(.5), math.log(.5)], [math.log(.9), math.log(.1)]], 100), 6)
    0.221106
    """
    if vocab_size < 2:
        raise ConfigError(
            f"vocab_size must be ≥ 2 (it normalises by ln|V|), got {vocab_size!r}; pass "
            "len(tokenizer.get_vocab())."
        )
    if max_positions < 1:
        raise ConfigError(f"max_positions must be ≥ 1, got {max_positions!r}; ARPO uses 20.")
    total = 0.0
    for pos in list(positions)[:max_positions]:
        if isinstance(pos, int | float):  # the position's entropy, already computed
            if not -1e-6 <= pos < math.inf:  # rounding may leave a tiny negative
                raise ConfigError(f"a token entropy must be finite and ≥ 0, got {pos!r}.")
            total += float(pos)
        else:
            total += topk_position_entropy(pos)
    return total / math.log(vocab_size)


arpo_segment_entropy = segment_entropy
"""The same function as :func:`segment_entropy` (the name the agents package exported first)."""
