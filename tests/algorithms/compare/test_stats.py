"""Comparison statistics: pass@k, the percentile bootstrap (checked against scipy), the seed-spread test."""

from __future__ import annotations

import itertools
from math import comb

import numpy as np
import pytest

from branchgym.algorithms.compare.stats import grid_interval, pass_at_k, percentile_interval, seed_spread_verdict
from branchgym.errors import ConfigError


def test_pass_at_k_is_the_chance_that_some_of_k_draws_is_correct() -> None:
    for n, c in ((8, 0), (8, 1), (8, 3), (8, 8), (5, 2)):
        samples = [1] * c + [0] * (n - c)
        for k in range(1, n + 1):
            draws = list(itertools.combinations(range(n), k))  # every k-subset, equally likely
            brute = sum(any(samples[i] for i in d) for d in draws) / comb(n, k)
            assert pass_at_k(n, c, k) == pytest.approx(brute)
    assert pass_at_k(8, 3, 1) == pytest.approx(3 / 8)
    with pytest.raises(ConfigError, match="k=9"):
        pass_at_k(8, 3, 9)


def test_percentile_interval_matches_scipy_bootstrap() -> None:
    from scipy.stats import bootstrap

    rng = np.random.default_rng(7)
    for data in (rng.normal(0.6, 0.2, size=40), rng.binomial(1, 0.3, size=100).astype(float)):
        ours = percentile_interval(data, n_resamples=20_000, level=0.95, rng=1)
        ref = bootstrap((data,), np.mean, n_resamples=20_000, confidence_level=0.95, method="percentile",
                        random_state=np.random.default_rng(2)).confidence_interval
        width = ref.high - ref.low
        assert ours[0] == pytest.approx(ref.low, abs=0.03 * width)
        assert ours[1] == pytest.approx(ref.high, abs=0.03 * width)


def test_percentile_interval_of_a_mean_is_near_the_normal_interval() -> None:
    data = np.random.default_rng(3).normal(5.0, 2.0, size=400)
    lo, hi = percentile_interval(data, n_resamples=20_000, rng=0)
    half = 1.959964 * data.std(ddof=0) / np.sqrt(data.size)  # the CLT interval the bootstrap approximates
    assert lo == pytest.approx(data.mean() - half, abs=0.05 * half)
    assert hi == pytest.approx(data.mean() + half, abs=0.05 * half)


def test_grid_interval_with_one_seed_is_the_task_bootstrap_and_seeds_widen_it() -> None:
    rng = np.random.default_rng(4)
    tasks = rng.binomial(1, 0.5, size=(1, 60)).astype(float)
    lo1, hi1 = grid_interval(tasks, n_resamples=20_000, rng=5)
    lo2, hi2 = percentile_interval(tasks[0], n_resamples=20_000, rng=6)
    assert (lo1, hi1) == pytest.approx((lo2, hi2), abs=0.02)
    # three seeds whose means differ a lot: the interval must cover their spread, not just task noise
    shifted = np.vstack([tasks[0] * 0.2, tasks[0] * 0.5, tasks[0] * 0.9])
    lo3, hi3 = grid_interval(shifted, n_resamples=4000, rng=0)
    lo_t, hi_t = percentile_interval(shifted.mean(axis=0), n_resamples=4000, rng=0)  # task noise only
    assert hi3 - lo3 > 1.5 * (hi_t - lo_t)
    assert lo3 < shifted.mean() < hi3
    with pytest.raises(ConfigError, match="grid"):
        grid_interval(np.zeros(5))


def test_seed_spread_verdict() -> None:
    v = seed_spread_verdict([0.80, 0.82, 0.78], [0.60, 0.65, 0.62])
    assert v["exceeds"] and v["spread"] == pytest.approx(0.05) and v["diff"] == pytest.approx(0.80 - 0.623333, abs=1e-4)
    v = seed_spread_verdict([0.70, 0.50, 0.66], [0.60, 0.65, 0.62])
    assert v["exceeds"] is False  # diff ≈ +0.0 < spread 0.2
    assert seed_spread_verdict([0.9], [0.1])["exceeds"] is None  # one seed: the spread is unknown
    with pytest.raises(ConfigError, match="per-seed"):
        seed_spread_verdict([0.1, 0.2], [0.1])
