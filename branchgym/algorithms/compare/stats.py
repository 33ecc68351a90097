"""Statistics of a comparison: pass@k, percentile bootstrap intervals, and the seed-spread test.

Scores are held in a grid ``scores[seed, task]`` (one value per seed and held-out task, e.g. a
task's pass@k estimate from that seed's samples). The reported number is the grid mean.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from math import comb
from typing import Any

import numpy as np

from branchgym.errors import ConfigError

__all__ = ["pass_at_k", "percentile_interval", "grid_interval", "seed_spread_verdict"]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate of pass@k from ``n`` samples of which ``c`` are correct.

    pass@k = 1 − C(n − c, k) / C(n, k) (Chen et al., 2021, "Evaluating Large Language Models
    Trained on Code", eq. 1): the probability that at least one of k samples drawn without
    replacement from the n is correct. pass@1 = c / n.
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ConfigError(f"pass_at_k needs 0 ≤ c ≤ n and 1 ≤ k ≤ n, got n={n}, c={c}, k={k}.")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def percentile_interval(data: Sequence[float] | np.ndarray, statistic: Callable[[np.ndarray], Any] = np.mean, *,
                        n_resamples: int = 2000, level: float = 0.95,
                        rng: np.random.Generator | int | None = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over 1-D ``data``.

    Draw ``n_resamples`` samples of len(data) values with replacement, compute the statistic of
    each, and return its (1 − level)/2 and (1 + level)/2 quantiles (Efron & Tibshirani, 1993,
    "An Introduction to the Bootstrap", §13.3). ``statistic`` takes an array of shape
    (n_resamples, len(data)) and reduces its last axis (``np.mean`` does with ``axis=-1``).
    """
    x = np.asarray(data, dtype=float)
    if x.ndim != 1 or x.size == 0:
        raise ConfigError(f"percentile_interval needs non-empty 1-D data, got shape {x.shape}.")
    g = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    idx = g.integers(0, x.size, size=(n_resamples, x.size))
    stats = np.asarray(statistic(x[idx], axis=-1), dtype=float)
    a = (1.0 - level) / 2.0
    return float(np.quantile(stats, a)), float(np.quantile(stats, 1.0 - a))


def grid_interval(scores: np.ndarray, *, n_resamples: int = 2000, level: float = 0.95,
                  rng: np.random.Generator | int | None = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``scores[seed, task]``, resampling both.

    Each resample draws seeds with replacement and, independently, tasks with replacement (the
    same task draw for every seed, since all seeds are evaluated on the same tasks), and takes
    the mean of the drawn sub-grid: a two-stage bootstrap that carries both the seed-to-seed
    variation of training and the task-to-task variation of the held-out set (Davison & Hinkley,
    1997, "Bootstrap Methods and their Application", §3.8). With one seed it is the ordinary
    task bootstrap; with few seeds it cannot see more seed variation than the seeds show.
    For a paired difference pass the grid of differences (same seed, same task).
    """
    s = np.asarray(scores, dtype=float)
    if s.ndim != 2 or s.size == 0:
        raise ConfigError(f"grid_interval needs a non-empty [seed, task] grid, got shape {s.shape}.")
    g = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    n_seed, n_task = s.shape
    means = np.empty(n_resamples)
    for i in range(n_resamples):
        rows = g.integers(0, n_seed, size=n_seed)
        cols = g.integers(0, n_task, size=n_task)
        means[i] = s[np.ix_(rows, cols)].mean()
    a = (1.0 - level) / 2.0
    return float(np.quantile(means, a)), float(np.quantile(means, 1.0 - a))


def seed_spread_verdict(scores: Sequence[float], reference: Sequence[float]) -> dict[str, Any]:
    """Is mean(scores) − mean(reference) larger than the spread over seeds?

    Both lists are per seed (the same seeds, so the same SFT start). Spread = the larger of the
    two max − min ranges over seeds; the difference "exceeds the spread" when |diff| > spread.
    With one seed the spread is unknown and the verdict says so (``exceeds`` is None).
    """
    a, b = np.asarray(scores, float), np.asarray(reference, float)
    if a.shape != b.shape or a.size == 0:
        raise ConfigError(f"seed_spread_verdict needs two equal, non-empty per-seed lists, got {a.size} and {b.size}.")
    diff = float(a.mean() - b.mean())
    spread = float(max(np.ptp(a), np.ptp(b)))
    return {"diff": diff, "spread": spread, "per_seed": (a - b).tolist(),
            "exceeds": None if a.size < 2 else abs(diff) > spread}
