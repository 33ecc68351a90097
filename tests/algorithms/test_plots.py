"""plot_bands: a mean line per label and a band over runs, tolerant of runs with fewer points."""

from __future__ import annotations


def _colours(path) -> int:
    from matplotlib.image import imread

    img = imread(path)
    assert img.shape[0] > 100 and img.shape[1] > 100
    return len({tuple(p) for p in img.reshape(-1, img.shape[-1]).tolist()})


def test_plot_bands_draws_a_band_only_over_several_runs(tmp_path) -> None:
    from branchgym.algorithms.plots import plot_bands

    a = [(0, 0.5), (10, 0.6), (20, 0.7)]
    b = [(0, 0.3), (10, 0.8), (20, 0.9)]
    c = [(0, 0.45), (10, 0.5)]  # stopped early by a time budget: step 20 has two runs
    one = plot_bands({"grpo": [a]}, tmp_path / "one.png", title="t", ylabel="acc", ylim=(0, 1))
    same = plot_bands({"grpo": [a, a]}, tmp_path / "same.png", title="t", ylabel="acc", ylim=(0, 1))
    spread = plot_bands({"grpo": [a, b, c]}, tmp_path / "spread.png", title="t", ylabel="acc", ylim=(0, 1))
    missing = plot_bands({"aepo": [[(0, 0.5), (10, None)]], "none": [[(0, None)]]}, tmp_path / "missing.png",
                         title="t", ylabel="acc")
    assert _colours(missing) > 2
    # a band of zero width adds (almost) nothing; a real spread fills an area with a blended colour
    assert _colours(spread) > _colours(same) + 5 and _colours(same) >= _colours(one)
