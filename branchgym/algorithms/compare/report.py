"""The comparison's report: ``results.json``, ``report.md`` and PNG plots, from the jobs' results.

Everything here is read back from the files the jobs wrote (``result.json``, ``metrics.jsonl``),
so a report can be rebuilt at any time (``branchgym compare --report-only``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from branchgym.algorithms.compare.budget import BUDGET_METRICS, cumulative
from branchgym.algorithms.compare.config import CompareConfig
from branchgym.algorithms.compare.runner import Job, write_json_atomic
from branchgym.algorithms.compare.report_text import UNITS, report_lines
from branchgym.algorithms.compare.stats import grid_interval, pass_at_k, seed_spread_verdict
from branchgym.errors import ConfigError

__all__ = ["collect", "write_report"]

def _load(out: Path) -> tuple[CompareConfig, dict[str, dict[int, dict[str, Any]]]]:
    path = out / "compare.json"
    if not path.is_file():
        raise ConfigError(f"{out} holds no comparison (no compare.json); run `branchgym compare --out {out}` first.")
    cfg = CompareConfig(**json.loads(path.read_text())["config"])
    runs: dict[str, dict[int, dict[str, Any]]] = {}
    for algo in ("sft", *cfg.algos):
        for s in range(cfg.seeds):
            job = Job(s, algo)
            if job.done(out):
                r = json.loads((job.dir(out) / "result.json").read_text())
                if algo != "sft":
                    from branchgym.algorithms.metrics import read_metrics

                    r["rows"] = read_metrics(job.dir(out) / r["metrics"])
                runs.setdefault(algo, {})[s] = r
    return cfg, runs


def _per_solved(final: dict[str, Any], key: str) -> float | None:
    return final[key] / final["solved"] if final["solved"] else None


def _summary(cfg: CompareConfig, algo: str, runs: dict[int, dict[str, Any]],
             rng: np.random.Generator) -> dict[str, Any]:
    seeds = sorted(runs)
    finals = [runs[s]["final"] for s in seeds]
    tasks = finals[0]["tasks"]
    if any(f["tasks"] != tasks for f in finals):
        raise ConfigError(f"{algo}: the seeds were evaluated on different tasks; re-run with one eval split.")
    out: dict[str, Any] = {"seeds": seeds, "pass_at_k": {}, "grid": {}}
    for k in cfg.k_values:
        grid = np.array([[pass_at_k(f["samples"], c, k) for c in f["successes"]] for f in finals])
        lo, hi = grid_interval(grid, n_resamples=cfg.bootstrap_resamples, level=cfg.ci_level, rng=rng)
        out["pass_at_k"][str(k)] = {"mean": float(grid.mean()), "ci": [lo, hi],
                                   "per_seed": grid.mean(axis=1).tolist()}
        out["grid"][str(k)] = grid
    for key in ("tool_calls", "tokens"):
        solved = sum(f["solved"] for f in finals)
        out[f"{key}_per_solved"] = {"mean": sum(f[key] for f in finals) / solved if solved else None,
                                   "per_seed": [_per_solved(f, key) for f in finals]}
        out[f"{key}_per_episode"] = sum(f[key] for f in finals) / sum(f["episodes"] for f in finals)
    if algo != "sft":
        rows = [runs[s]["rows"] for s in seeds]
        out["steps"] = [runs[s]["steps"] for s in seeds]
        out["spent"] = [runs[s]["spent"] for s in seeds]
        out["last_step"] = [float(r[-1].get(BUDGET_METRICS[cfg.budget_kind]) or 0.0) if r else 0.0 for r in rows]
        out["reached_budget"] = [runs[s]["reached_budget"] for s in seeds]
        out["train_seconds"] = [runs[s]["train_seconds"] for s in seeds]
        out["job_seconds"] = [runs[s]["seconds"] for s in seeds]
        out["train_tool_calls"] = [sum(x.get("rollout/tool_calls") or 0 for x in r) for r in rows]
        out["train_trajectories"] = [sum(x.get("rollout/trajectories") or 0 for x in r) for r in rows]
        out["train_tokens"] = [sum(x.get("rollout/generated_tokens") or 0 for x in r) for r in rows]
    return out


def collect(out: str | Path) -> dict[str, Any]:
    """Every number of the report, as a JSON-serialisable dict (also written as results.json)."""
    out = Path(out)
    cfg, runs = _load(out)
    rng = np.random.default_rng(0)
    summary = {a: _summary(cfg, a, r, rng) for a, r in runs.items()}
    ref = cfg.reference
    diffs: dict[str, Any] = {}
    kmax = str(cfg.k_values[-1])
    for algo in cfg.algos:
        if algo == ref or algo not in summary or ref not in summary:
            continue
        common = sorted(set(summary[algo]["seeds"]) & set(summary[ref]["seeds"]))
        if not common:
            continue
        rows = {}
        for k in ("1", kmax):
            a, b = summary[algo], summary[ref]
            ia, ib = [a["seeds"].index(s) for s in common], [b["seeds"].index(s) for s in common]
            v = seed_spread_verdict([a["pass_at_k"][k]["per_seed"][i] for i in ia],
                                    [b["pass_at_k"][k]["per_seed"][i] for i in ib])
            lo, hi = grid_interval(a["grid"][k][ia] - b["grid"][k][ib], n_resamples=cfg.bootstrap_resamples,
                                   level=cfg.ci_level, rng=rng)
            rows[f"pass@{k}"] = {**v, "ci": [lo, hi], "ci_excludes_0": lo > 0 or hi < 0}
        for key in ("tool_calls_per_solved", "tokens_per_solved"):
            pa = [summary[algo][key]["per_seed"][summary[algo]["seeds"].index(s)] for s in common]
            pb = [summary[ref][key]["per_seed"][summary[ref]["seeds"].index(s)] for s in common]
            if None not in pa and None not in pb:
                rows[key] = seed_spread_verdict(pa, pb)
        diffs[algo] = {"seeds": common, **rows}
    sessions = json.loads((out / "sessions.json").read_text()) if (out / "sessions.json").is_file() else []
    for s in summary.values():
        s.pop("grid")
    from datetime import datetime

    ends = [r["finished"] for rs in runs.values() for r in rs.values()]
    span = (datetime.fromisoformat(max(ends)) - datetime.fromisoformat(sessions[0]["started"])).total_seconds() \
        if sessions and ends else 0.0
    return {"config": cfg.to_dict(), "reference": ref, "k_values": list(cfg.k_values), "summary": summary,
            "differences": diffs, "wall_seconds": sum(x["seconds"] for x in sessions), "span_seconds": span,
            "sessions": sessions,
            "curves": {a: {s: r["curve"] for s, r in rs.items()} for a, rs in runs.items()},
            "complete": all(Job(s, a).done(out) for s in range(cfg.seeds) for a in ("sft", *cfg.algos))}


def _on_grid(runs: list[tuple[np.ndarray, np.ndarray]], n: int = 20) -> list[list[tuple[float, float]]]:
    """Each run's (x, y) interpolated onto one grid over the x range all runs cover, so that runs
    whose steps end at different budgets are averaged point by point (each run is a list of its
    grid points; one run alone keeps its own steps)."""
    runs = [(x[~np.isnan(y)], y[~np.isnan(y)]) for x, y in runs]
    runs = [(x, y) for x, y in runs if len(x)]
    if len(runs) < 2:
        return [list(zip(x.tolist(), y.tolist())) for x, y in runs]
    lo, hi = max(float(x[0]) for x, _ in runs), min(float(x[-1]) for x, _ in runs)
    grid = np.linspace(lo, hi, n) if hi > lo else np.array([lo])
    return [list(zip(grid.tolist(), np.interp(grid, x, y).tolist())) for x, y in runs]


def _bar_plot(res: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    algos = [a for a in ("sft", *res["config"]["algos"]) if a in res["summary"]]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), dpi=110)
    ks = res["k_values"]
    for a in algos:
        p = res["summary"][a]["pass_at_k"]
        mean = [p[str(k)]["mean"] for k in ks]
        err = np.array([[p[str(k)]["mean"] - p[str(k)]["ci"][0], p[str(k)]["ci"][1] - p[str(k)]["mean"]] for k in ks]).T
        axes[0].errorbar(ks, mean, yerr=err, marker="o", markersize=3, capsize=2, label=a)
    axes[0].set_xscale("log", base=2)
    axes[0].set_xticks(ks, [str(k) for k in ks])
    axes[0].set_ylim(0.0, 1.02)
    axes[0].set(xlabel="k", ylabel="held-out pass@k", title=f"pass@k ({res['config']['ci_level']:.0%} CI)")
    axes[0].legend(fontsize=7)
    for ax, key, label in ((axes[1], "tool_calls_per_solved", "tool calls / solved task"),
                           (axes[2], "tokens_per_solved", "generated tokens / solved task")):
        vals = [res["summary"][a][key]["mean"] or 0.0 for a in algos]
        ax.bar(range(len(algos)), vals, color="tab:gray")
        for i, a in enumerate(algos):
            ps = [v for v in res["summary"][a][key]["per_seed"] if v is not None]
            ax.plot([i] * len(ps), ps, "k.", markersize=4)
        ax.set_xticks(range(len(algos)), algos, rotation=45, fontsize=7)
        ax.set_ylim(bottom=0.0)
        ax.set_title(f"{label} (held-out)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _plots(out: Path, res: dict[str, Any], runs: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    from branchgym.algorithms.plots import plot_bands

    cfg = res["config"]
    kind = cfg["budget_kind"]
    xlabel = f"budget spent ({UNITS[kind]})"
    curves, ent, rew = {}, {}, {}
    for algo in cfg["algos"]:
        for s, r in runs.get(algo, {}).items():
            start = runs["sft"][s]["curve"][0]["pass1"]
            x = np.array([0.0] + [c["point"] for c in r["curve"]])
            curves.setdefault(algo, []).append(list(zip(x.tolist(), [start] + [c["pass1"] for c in r["curve"]])))
            spent = np.array(cumulative(r["rows"], kind))
            for store, key in ((ent, "rollout/entropy_mean"), (rew, "rollout/reward_mean")):
                vals = [row.get(key) for row in r["rows"]]
                store.setdefault(algo, []).append((spent, np.array([np.nan if v is None else v for v in vals])))
    plots = out / "plots"
    made = [
        plot_bands(curves, plots / "heldout_pass1.png", title="held-out pass@1 (T=1); band = min–max over seeds",
                   xlabel=xlabel, ylabel="pass@1", ylim=(0.0, 1.0)),
        plot_bands({a: _on_grid(r) for a, r in ent.items()}, plots / "entropy.png",
                   title="token entropy of the training rollouts", xlabel=xlabel, ylabel="mean entropy (nats)"),
        plot_bands({a: _on_grid(r) for a, r in rew.items()}, plots / "train_reward.png",
                   title="training reward (rollout/reward_mean)", xlabel=xlabel, ylabel="reward"),
        _bar_plot(res, plots / "pass_at_k_and_cost.png"),
    ]
    return [str(p.relative_to(out)) for p in made]


def write_report(out: str | Path) -> Path:
    """Write ``results.json``, ``report.md`` and ``plots/`` for the comparison under ``out``."""
    out = Path(out)
    res = collect(out)
    write_json_atomic(out / "results.json", res)
    _, runs = _load(out)
    plots = _plots(out, res, runs) if "sft" in runs and len(runs) > 1 else []
    path = out / "report.md"
    path.write_text("\n".join(report_lines(res, plots)) + "\n")
    return path
