"""The quickstart's report: ``report.md`` with per-seed tables, the learning verdict, and PNG plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["write_report", "learning_verdict", "heldout_curves"]

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


def _lookup_summary() -> str:  # results written before the task option existed
    from branchgym.algorithms.quickstart import QUICKSTART_TASKS

    return QUICKSTART_TASKS["lookup"].summary


def heldout_curves(results: dict[str, Any]) -> dict[str, list[list[tuple[int, float]]]]:
    """Per RL algorithm, one held-out accuracy curve ``[(RL step, accuracy), ...]`` per seed
    (step 0 is the SFT model); runs without curves (older results) give none."""
    seeds = results["seeds"]
    return {algo: [[(p["step"], p["accuracy"]) for p in seeds[s][algo]["curve"]] for s in seeds
                   if seeds[s].get(algo, {}).get("curve")] for algo in ("grpo", "aepo")}


def _plots(results: dict[str, Any], out: Path) -> list[str]:
    from branchgym.algorithms.metrics import read_metrics
    from branchgym.algorithms.plots import plot_bands, plot_curves

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
    n = len(seeds)
    cfg = results["config"]
    band = f"band = min-max of {n} seeds" if n > 1 else "1 seed"
    path = plot_bands(heldout_curves(results), out / "plots" / "heldout_accuracy.png", xlabel="RL step",
                      ylabel="held-out accuracy (T=1)", ylim=(-0.02, 1.02),
                      title=f"held-out accuracy, {cfg.get('curve_tasks')} tasks x {cfg.get('curve_samples')}; {band}")
    made.append(str(path.relative_to(out)))
    return made


def write_report(results: dict[str, Any], out: Path) -> Path:
    """Write ``report.md`` (and the plots) for ``results`` from :func:`run_quickstart`."""
    seeds = results["seeds"]
    plots = _plots(results, out)
    lines = [
        "# branchgym quickstart report", "",
        f"Task: {results.get('task') or _lookup_summary()}; held-out split = keys never seen in training.",
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
    curves = heldout_curves(results)
    if any(curves.values()):
        cfg = results["config"]
        lines += ["", f"Held-out accuracy during RL (T = 1; the first {cfg['curve_tasks']} test tasks x "
                      f"{cfg['curve_samples']} samples, every {cfg['eval_every']} RL steps; step 0 = SFT):", "",
                  "| seed | algo | RL step: accuracy |", "|---|---|---|"]
        for s in seeds:
            for algo in ("grpo", "aepo"):
                pts = seeds[s][algo].get("curve") or []
                lines.append(f"| {s} | {algo} | " + ", ".join(f"{p['step']}: {p['accuracy']:.3f}" for p in pts) + " |")
    lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    lines += ["", "Training metrics per run: `seed*/grpo/metrics.jsonl`, `seed*/aepo/metrics.jsonl` "
              "(TensorBoard: `seed*/*/tb`); keys are defined in docs/metrics.md.", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
