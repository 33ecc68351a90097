"""DAPO's data-side pieces as pure functions: overlong reward shaping and the dynamic-sampling
group filter (docs/algorithms.md#dapo). No torch needed (numpy arrays or sequences in)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from branchgym.errors import ConfigError

__all__ = ["overlong_penalty", "dynamic_sampling_keep"]


def overlong_penalty(
    lengths: Sequence[int] | np.ndarray,
    *,
    max_len: int = 20480,
    buffer_len: int = 4096,
    penalty_factor: float = 1.0,
    mode: Literal["code", "paper"] = "code",
) -> np.ndarray:
    """Soft overlong punishment added to R before the advantage.

    ``code``:  ``min(−(|y| − (L_max − L_buf)) / L_buf · κ, 0)`` (unbounded below beyond L_max;
    the rollout truncates at L_max so it reaches −κ at most).
    ``paper``: 0 if ``|y| ≤ L_max − L_buf``; ``((L_max − L_buf) − |y|) / L_buf`` inside the buffer;
    −1 beyond L_max (times κ).
    Ref: DAPO arXiv:2503.14476 eq. (13); verl ``workers/reward_manager/dapo.py`` L105–111 (ARPO
    fork); docs/algorithms.md#dapo, #ex-overlong. Shapes: (B,) ints -> (B,) float64.

    >>> overlong_penalty([16000, 18000, 20480]).round(6).tolist()
    [0.0, -0.394531, -1.0]
    """
    if not 0 < buffer_len <= max_len:
        raise ConfigError(
            f"need 0 < buffer_len ≤ max_len, got buffer_len={buffer_len!r}, max_len={max_len!r}; "
            "DAPO uses max_len=20480, buffer_len=4096."
        )
    if mode not in ("code", "paper"):
        raise ConfigError(f"unknown overlong mode {mode!r}; use 'code' or 'paper'.")
    y = np.asarray(lengths, dtype=np.float64)
    start = max_len - buffer_len
    pen = np.minimum(-(y - start) / buffer_len * penalty_factor, 0.0)
    if mode == "paper":
        pen = np.where(y > max_len, -1.0 * penalty_factor, pen)
    return pen + 0.0  # turn −0.0 into 0.0


def dynamic_sampling_keep(
    rewards: Sequence[float] | np.ndarray,
    group_ids: Sequence[int] | np.ndarray,
    *,
    atol: float = 0.0,
) -> np.ndarray:
    """Per-row keep mask: keep a row iff its group's rewards are not all equal (std > 0).

    DAPO's dynamic sampling drops all-correct and all-wrong groups (zero advantage, no
    gradient) and keeps sampling until the batch is full; this is the filter. Groups of one
    row are dropped too (their std is 0). ``atol`` treats max − min ≤ atol as equal.
    Ref: DAPO arXiv:2503.14476 §3.2; verl ``recipe/dapo/dapo_ray_trainer.py`` (filter_groups,
    metric=acc); docs/algorithms.md#dapo. Shapes: (B,), (B,) -> (B,) bool.

    >>> dynamic_sampling_keep([1, 1, 0, 1, 0, 0], [0, 0, 1, 1, 2, 2]).tolist()
    [False, False, True, True, False, False]
    """
    r = np.asarray(rewards, dtype=np.float64)
    g = np.asarray(group_ids)
    if r.shape != g.shape or r.ndim != 1:
        raise ConfigError(
            f"rewards {r.shape} and group_ids {g.shape} must be 1-D and the same length."
        )
    keep = np.zeros(r.shape, dtype=bool)
    for gid in np.unique(g):
        rows = g == gid
        vals = r[rows]
        keep[rows] = (vals.max() - vals.min()) > atol
    return keep
