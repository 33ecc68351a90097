"""ARPO / AEPO branching rules as pure functions (no torch): segment entropy, branch
probability and decision, AEPO's pre-monitoring budget and consecutive-branch counter.

The state machine that applies them round by round is
:class:`~branchgym.algorithms.expander.TreeExpander`. Equations: docs/algorithms.md#arpo, #aepo.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from branchgym.agents.entropy import segment_entropy
from branchgym.errors import ConfigError

__all__ = [
    "segment_entropy",
    "arpo_branch_probability",
    "aepo_branch_probability",
    "arpo_code_branch",
    "aepo_code_branch",
    "paper_branch",
    "penalty_factor",
    "pre_monitor_value",
    "pre_monitor_budget",
    "update_prompt_counters",
]

def _clip01(x: float) -> float:
    return min(1.0, max(0.0, x))


def penalty_factor(consecutive: int, *, penalty: float) -> float:
    """``max(0, 1 − λ·l)``: AEPO's consecutive-branch damping (λ = 0.05 in the code).

    >>> penalty_factor(10, penalty=0.05)
    0.5
    """
    if consecutive < 0:
        raise ConfigError(f"consecutive-branch counter must be ≥ 0, got {consecutive!r}.")
    return max(0.0, 1.0 - penalty * consecutive)


def arpo_branch_probability(delta_h: float, *, tau: float = 0.5, weight: float = 0.2) -> float:
    """Closed form of ARPO's sampled rule: ``P(branch) = clip(τ + w·ΔH, 0, 1)``.

    ΔH = H_now − H_init. Ref: ARPO code ``generate_sequences`` decision L468–478;
    docs/algorithms.md#arpo, #ex-branching.

    >>> arpo_branch_probability(0.5)
    0.6
    """
    return _clip01(tau + weight * delta_h)


def aepo_branch_probability(
    delta_h: float,
    consecutive: int,
    *,
    tau: float = 0.5,
    weight: float = 0.2,
    penalty: float = 0.05,
) -> float:
    """Closed form of AEPO's sampled rule: ``clip(1 − τ/(1 − λl) + w·ΔH, 0, 1)``.

    It is 0 when ``1 − λl ≤ 0``.

    With l = 0 and τ = 0.5 this equals ARPO's. Ref: AEPO code L940–975 (upstream ARPO @
    ff66660); docs/algorithms.md#aepo, #ex-branching.

    >>> round(aepo_branch_probability(0.5, 2), 6)
    0.544444
    """
    f = penalty_factor(consecutive, penalty=penalty)
    if f <= 0.0:
        return 0.0 if tau > 0 else 1.0
    return _clip01(1.0 - tau / f + weight * delta_h)


def arpo_code_branch(u: float, delta_h: float, *, tau: float = 0.5, weight: float = 0.2) -> bool:
    """ARPO's decision exactly as coded: ``p = clip(u − w·ΔH, 0, 1)``; branch iff ``p ≤ τ``.

    ``u ~ U[0, 1)`` (the paper's α is this random number, ``alpha="uniform"``). Ref: ARPO code
    L468–478; docs/algorithms.md#arpo.

    >>> arpo_code_branch(0.55, 0.5), arpo_code_branch(0.65, 0.5)
    (True, False)
    """
    return not (_clip01(u - weight * delta_h) > tau)


def aepo_code_branch(
    u: float,
    delta_h: float,
    consecutive: int,
    *,
    tau: float = 0.5,
    weight: float = 0.2,
    penalty: float = 0.05,
) -> bool:
    """AEPO's decision as coded: ``p = clip((u + w·ΔH)·max(0, 1 − λl), 0, 1)``; branch iff p ≥ τ.

    Ref: AEPO ``vllm_rollout_with_tools.py`` L940–975; docs/algorithms.md#aepo.

    >>> aepo_code_branch(0.5, 0.0, 0), aepo_code_branch(0.99, 0.0, 10)
    (True, False)
    """
    p = _clip01((u + weight * delta_h) * penalty_factor(consecutive, penalty=penalty))
    return p >= tau


def paper_branch(
    alpha: float,
    delta_h: float,
    consecutive: int = 0,
    *,
    tau: float = 0.5,
    weight: float = 0.2,
    penalty: float = 0.0,
) -> bool:
    """The papers' rule: ``P_t = (α + w·ΔH_t) · (1 − λ·l)`` and branch iff ``P_t > τ``.

    ARPO: λ = 0 (``P_t = α + βΔH_t``); AEPO adds the linear penalty ``P̂(l) = λl`` (clamped so the
    factor is ≥ 0). α is a constant here; pass ``u ~ U[0,1)`` to get the code's randomness.
    Ref: ARPO arXiv:2507.19849 §3; AEPO arXiv:2510.14545 §3; docs/algorithms.md#arpo, #aepo.

    >>> paper_branch(0.5, 0.5), paper_branch(0.5, -0.5)
    (True, False)
    """
    return (alpha + weight * delta_h) * penalty_factor(consecutive, penalty=penalty) > tau


def pre_monitor_value(
    n: int, h_root: float, h_tool: float | Sequence[float], *, beta: float = 0.5
) -> float:
    """The paper's global-sample share ``n·σ(β·(H_root − H̄_tool))`` (real-valued).

    ``h_tool``: H̄_tool, or the list of step entropies of the pre-rollout (mean taken; an
    empty list means H̄_tool = H_root, as the code does). Ref: AEPO arXiv:2510.14545 §3
    (entropy pre-monitoring); code ``_calculate_initial_rollouts_dynamical`` L206, L543–548;
    docs/algorithms.md#aepo, #ex-premonitor.

    >>> round(pre_monitor_value(12, 2.0, 1.0), 3)
    7.47
    """
    if n < 1:
        raise ConfigError(f"n (rollouts per prompt) must be ≥ 1, got {n!r}.")
    if isinstance(h_tool, int | float):
        h_bar = float(h_tool)
    else:
        steps = [float(h) for h in h_tool]
        h_bar = sum(steps) / len(steps) if steps else float(h_root)
    x = beta * (float(h_root) - h_bar)
    sig = 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
    return n * sig


def pre_monitor_budget(
    n: int,
    h_root: float,
    h_tool: float | Sequence[float],
    *,
    beta: float = 0.5,
    m_rounding: Literal["code_floor_plus_one", "paper_round"] = "code_floor_plus_one",
) -> int:
    """AEPO global-trajectory count m for one prompt (the rest, n − m, is branch budget).

    ``code_floor_plus_one``: ``clamp(⌊n·σ⌋ + 1, 1, n)`` (the code; note an integral n·σ gives
    n·σ + 1). ``paper_round``: ``clamp(round(n·σ), 1, n)`` (``m_rounding``).
    Ref: as :func:`pre_monitor_value`; docs/algorithms.md#ex-premonitor.

    >>> pre_monitor_budget(12, 2.0, 1.0), pre_monitor_budget(12, 2.0, 1.0, m_rounding="paper_round")
    (8, 7)
    """
    value = pre_monitor_value(n, h_root, h_tool, beta=beta)
    if m_rounding == "code_floor_plus_one":
        m = math.floor(value) + 1
    elif m_rounding == "paper_round":
        m = int(math.floor(value + 0.5))
    else:
        raise ConfigError(
            f"unknown m_rounding {m_rounding!r}; use 'code_floor_plus_one' or 'paper_round'."
        )
    return max(1, min(n, m))


def update_prompt_counters(counters: Sequence[int], received: Sequence[bool]) -> list[int]:
    """AEPO code's per-prompt consecutive counter l_b, updated once per generation round.

    If at least one prompt received a new trajectory (clone or refill) this round:
    ``l_b ← l_b + 1`` if b received one, else 0; otherwise every l_b is unchanged
    (``penalty_counter="per_prompt_round"``). Ref: AEPO code L1025–1036; docs/algorithms.md#aepo.

    >>> update_prompt_counters([2, 3], [True, False])
    [3, 0]
    >>> update_prompt_counters([2, 3], [False, False])
    [2, 3]
    """
    if len(counters) != len(received):
        raise ConfigError(
            f"{len(counters)} counters but {len(received)} received flags; one per prompt."
        )
    if not any(received):
        return list(counters)
    return [c + 1 if r else 0 for c, r in zip(counters, received, strict=False)]
