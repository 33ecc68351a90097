"""PNG plots of a run's metrics (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["plot_run", "plot_curves", "plot_bands", "DEFAULT_PLOTS"]

DEFAULT_PLOTS: dict[str, str] = {
    "reward": "rollout/reward_mean",
    "entropy": "rollout/entropy_mean",
    "tool_calls": "rollout/tool_calls_per_traj",
}
"""file stem -> metric key plotted per step."""


def plot_curves(
    curves: Mapping[str, Sequence[tuple[float, float]]], path: str | Path, *, title: str, ylabel: str
) -> Path:
    """One line per label (``label -> [(x, y), ...]``), saved as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.4), dpi=110)
    for label, pts in curves.items():
        pts = [(x, y) for x, y in pts if y is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=2.5, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_bands(
    runs: Mapping[str, Sequence[Sequence[tuple[float, float]]]], path: str | Path, *, title: str, ylabel: str,
    xlabel: str = "step", ylim: tuple[float, float] | None = None,
) -> Path:
    """Per label, the mean over runs (``label -> [[(x, y), ...] per seed]``) as a line with markers,
    and the min-max band over runs where there are several; saved as a PNG at ``path``.

    At each x the mean and band use the runs that have a point there (a run stopped early by a
    time budget has fewer points); the legend gives the number of runs. Labels get distinct
    markers and line styles, so equal curves stay visible on top of each other.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(5.5, 3.4), dpi=110)
    styles = [("o", "-", 5), ("s", "--", 4), ("^", ":", 4), ("D", "-.", 3)]
    all_x: set[float] = set()
    for i, (label, curves) in enumerate(runs.items()):
        marker, linestyle, size = styles[i % len(styles)]
        at: dict[float, list[float]] = {}
        for pts in curves:
            for x, y in pts:
                if y is not None:
                    at.setdefault(x, []).append(y)
        if not at:
            continue
        xs = sorted(at)
        all_x.update(xs)
        mean = [sum(at[x]) / len(at[x]) for x in xs]
        n = len(curves)
        (line,) = ax.plot(xs, mean, marker=marker, linestyle=linestyle, markersize=size,
                          label=f"{label} (mean of {n})" if n > 1 else label)
        if n > 1:
            ax.fill_between(xs, [min(at[x]) for x in xs], [max(at[x]) for x in xs], color=line.get_color(),
                            alpha=0.2, linewidth=0)
    if 1 < len(all_x) <= 12:
        ax.set_xticks(sorted(all_x))  # a tick at each evaluation
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_run(rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Mapping[str, Any]]], out_dir: str | Path,
             plots: Mapping[str, str] = DEFAULT_PLOTS) -> list[Path]:
    """Plot each metric of ``plots`` per step; ``rows`` is one run's metrics or ``label -> rows``."""
    runs = rows if isinstance(rows, Mapping) else {"run": rows}
    made = []
    for stem, key in plots.items():
        curves = {label: [(r["step"], r.get(key)) for r in rs] for label, rs in runs.items()}
        made.append(plot_curves(curves, Path(out_dir) / f"{stem}.png", title=key, ylabel=stem.replace("_", " ")))
    return made
