"""The quickstart's report: ``report.md`` with per-seed tables, the learning verdict, and PNG plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["write_report", "learning_verdict"]

_POLICIES = ("sft", "grpo", "aepo")


def learning_verdict(results: dict[str, Any], metric: str = "sampled_accuracy") -> dict[str, Any]:
    """Per RL algorithm: mean gain over SFT and whether it exceeds the spread over seeds.

    Spread = the larger of the max − min ranges of the SFT and the RL scores over seeds; the claim
    holds when mean(RL) − mean(SFT) > spread (with one seed the spread is 0 and the verdict says so).
    """
    seeds = results["seeds"]
    scores = {p: [seeds[s]["eval"][p][metric] for s in seeds] for p in _POLICIES}
    out: dict[str, Any] = {"metric": metric, "n_seeds": len(seeds), "scores": scores}
    mean = {p: sum(v) / len(v) for p, v in scores.items()}
    for rl in ("grpo", "aepo"):
        spread = max(max(scores[rl]) - min(scores[rl]), max(scores["sft"]) - min(scores["sft"]))
        gain = mean[rl] - mean["sft"]
        paired = [a - b for a, b in zip(scores[rl], scores["sft"])]
        out[rl] = {"mean": mean[rl], "gain_over_sft": gain, "spread": spread, "per_seed_gain": paired,
                   "holds": gain > spread and len(seeds) > 1}
    out["sft"] = {"mean": mean["sft"]}
    return out


def _plots(results: dict[str, Any], out: Path) -> list[str]:
    from branchgym.algorithms.metrics import read_metrics
    from branchgym.algorithms.plots import plot_curves

    made = []
    seeds = results["seeds"]
    for stem, key in (("reward", "rollout/reward_mean"), ("entropy", "rollout/entropy_mean"),
                      ("tool_calls", "rollout/tool_calls_per_traj"), ("generated_tokens", "rollout/generated_tokens")):
        curves = {}
        for s in seeds:
            for algo in ("grpo", "aepo"):
                rows = read_metrics(out / f"seed{s}" / algo)
                curves[f"{algo} seed{s}"] = [(r["step"], r.get(key)) for r in rows]
        path = plot_curves(curves, out / "plots" / f"{stem}.png", title=f"training: {key}", ylabel=stem.replace("_", " "))
        made.append(str(path.relative_to(out)))
    curves = {p: [(int(s), seeds[s]["eval"][p]["sampled_accuracy"]) for s in seeds] for p in _POLICIES}
    path = plot_curves(curves, out / "plots" / "heldout_accuracy.png", title="held-out accuracy (T=1) per seed",
                       ylabel="accuracy")
    made.append(str(path.relative_to(out)))
    return made


def write_report(results: dict[str, Any], out: Path) -> Path:
    """Write ``report.md`` (and the plots) for ``results`` from :func:`run_quickstart`."""
    seeds = results["seeds"]
    plots = _plots(results, out)
    lines = [
        "# branchgym quickstart report", "",
        "Task: look an item's code up with `<search>` and copy it into `\\boxed{}` "
        "(`branchgym.algorithms.quickstart_task`); held-out split = keys never seen in training.",
        f"Seeds: {len(seeds)}; total time {results.get('seconds', 0) / 60:.1f} min.",
        ("SFT model shared by all seeds (`sft_model`): the seeds vary the RL runs and the evaluation "
         "sampling only." if results["config"].get("sft_model") else
         "Each seed builds its own tiny model and SFT warm start."), "",
        "| seed | policy | held-out acc. (T=1) | greedy acc. | tool calls / episode | RL steps | train s |",
        "|---|---|---|---|---|---|---|",
    ]
    for s, r in seeds.items():
        for p in _POLICIES:
            ev = r["eval"][p]
            if p != "sft":
                steps = r[p]["steps"]
            else:
                n = r["sft"].get("steps", results["config"]["sft_steps"])
                steps = "SFT (shared)" if results["config"].get("sft_model") else f"SFT {n}"
            secs = r[p]["seconds"]
            lines.append(f"| {s} | {p} | {ev['sampled_accuracy']:.3f} | {ev['greedy_accuracy']:.3f} | "
                         f"{ev['sampled_tool_calls']:.2f} | {steps} | {secs:.0f} |")
    for metric in ("sampled_accuracy", "greedy_accuracy"):
        v = learning_verdict(results, metric)
        lines += ["", f"**{metric}**: SFT mean {v['sft']['mean']:.3f}"]
        for rl in ("grpo", "aepo"):
            x = v[rl]
            verdict = ("holds" if x["holds"] else
                       ("needs ≥2 seeds" if v["n_seeds"] < 2 else "does NOT hold"))
            lines.append(f"- {rl}: mean {x['mean']:.3f}, gain over SFT {x['gain_over_sft']:+.3f}, "
                         f"spread over seeds {x['spread']:.3f} → RL > SFT by more than the spread: {verdict} "
                         f"(per-seed gains {', '.join(f'{g:+.3f}' for g in x['per_seed_gain'])})")
    stops = [(s, r["sft"]) for s, r in seeds.items() if r["sft"].get("checks")]
    if stops:
        lines += ["", f"SFT stops at the first validation check with accuracy ≥ "
                      f"{results['config']['sft_target_accuracy']} (T = 1, 64 validation tasks):"]
        lines += [f"- seed {s}: step {x['steps']}, validation accuracy {x['checks'][-1]['validation_accuracy']:.3f}"
                  + ("" if x.get("stopped_early") else " (target not reached: ran all steps)") for s, x in stops]
    lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    lines += ["", "Training metrics per run: `seed*/grpo/metrics.jsonl`, `seed*/aepo/metrics.jsonl` "
              "(TensorBoard: `seed*/*/tb`); keys are defined in docs/metrics.md.", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
