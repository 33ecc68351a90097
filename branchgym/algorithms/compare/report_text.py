"""The text of ``report.md``, from the numbers :func:`~branchgym.algorithms.compare.report.collect` returns."""

from __future__ import annotations

from typing import Any

__all__ = ["report_lines", "UNITS"]

UNITS = {"tokens": "generated tokens", "trajectories": "trajectories", "seconds": "training wall seconds"}
_COUNTED = {
    "tokens": "tokens the policy generated in training rollouts (`rollout/generated_tokens`: prompt and "
              "tool-result tokens excluded, a clone's shared prefix counted once, DAPO's extra rollout batches "
              "included)",
    "trajectories": "trajectories rolled out in training (`rollout/trajectories`, DAPO's dropped groups included)",
    "seconds": "wall seconds of training steps (`time/step_s`; held-out evaluation excluded)",
}


def _f(x: float | None, fmt: str = ".3f") -> str:
    return "—" if x is None else format(x, fmt)


def _span(xs: list[float], fmt: str = ".0f") -> str:
    if not xs:
        return "—"
    return f"{min(xs):{fmt}}" if min(xs) == max(xs) else f"{min(xs):{fmt}}–{max(xs):{fmt}}"


def _yes(v: bool | None) -> str:
    return "needs ≥ 2 seeds" if v is None else ("**yes**" if v else "no")


def report_lines(res: dict[str, Any], plots: list[str]) -> list[str]:
    cfg, summ, ks = res["config"], res["summary"], res["k_values"]
    kind, kmax, lvl = cfg["budget_kind"], str(ks[-1]), f"{cfg['ci_level']:.0%}"
    algos = [a for a in cfg["algos"] if a in summ]
    n_seeds = max((len(s["seeds"]) for s in summ.values()), default=0)
    lines = [
        "# branchgym compare report", "",
        f"Env `{cfg['env']}`; held-out split `{cfg['eval_split']}`. Tiny model (hidden {cfg['hidden']}, "
        f"{cfg['layers']} layers, vocab {cfg['vocab_size']}), SFT warm start on oracle episodes once per seed, "
        f"shared by every algorithm of that seed. Seeds: {n_seeds}. Reference: `{res['reference']}`.",
        "",
        f"**Equal budget: {cfg['budget']:g} {UNITS[kind]} per run**, counted as {_COUNTED[kind]}. "
        "A run checks the budget before each step and stops at the first step that reaches it.",
        f"Shared settings: {cfg['prompts_per_step']} prompts × {cfg['group_size']} trajectories per step "
        f"(G of flat presets, n of tree presets), lr {cfg['lr']:g}, ≤{cfg['max_new_tokens']} tokens per segment, "
        f"≤{cfg['max_response_tokens']} response tokens, ≤{cfg['call_limit']} tool calls; "
        "everything else is each preset's own (`branchgym train --help`).",
        f"Wall time of the whole comparison: {res['span_seconds'] / 60:.1f} min from the first start to the last "
        f"job's end; {res['wall_seconds'] / 60:.1f} min within {len(res['sessions'])} invocation(s) "
        f"(parallel {cfg['parallel']}; an invocation killed mid-job counts up to its last finished job)."
        + ("" if res["complete"] else " **Incomplete: some jobs have not run yet.**"),
        "",
        f"## Final held-out results ({cfg['eval_tasks']} tasks × {cfg['eval_samples']} samples at T = 1, per seed)",
        "",
        f"pass@k: unbiased estimator from {cfg['eval_samples']} samples per task; a task is solved when its reward "
        f"≥ {cfg['success_reward']:g}. Intervals: {lvl} percentile bootstrap over seeds and tasks "
        f"({cfg['bootstrap_resamples']} resamples). Cost per solved task = all evaluation tool calls (tokens) / "
        "solved episodes.", "",
        "| algorithm | pass@1 | " + f"pass@{kmax} | " + "tool calls / solved | tokens / solved | "
        "steps | budget spent | train s / run | job s / run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for a in ("sft", *algos):
        if a not in summ:
            continue
        s = summ[a]
        p1, pk = s["pass_at_k"]["1"], s["pass_at_k"][kmax]
        cols = [f"{p1['mean']:.3f} [{p1['ci'][0]:.3f}, {p1['ci'][1]:.3f}]",
                f"{pk['mean']:.3f} [{pk['ci'][0]:.3f}, {pk['ci'][1]:.3f}]",
                _f(s["tool_calls_per_solved"]["mean"], ".2f"), _f(s["tokens_per_solved"]["mean"], ".1f")]
        if a == "sft":
            cols += ["(start)", "0", "—", "—"]
        else:
            cols += [_span(s["steps"]), _span(s["spent"]), f"{sum(s['train_seconds']) / len(s['seeds']):.0f}",
                     f"{sum(s['job_seconds']) / len(s['seeds']):.0f}"]
        lines.append(f"| {a} | " + " | ".join(cols) + " |")
    ks_text = ", ".join(f"pass@{k}" for k in ks)
    lines += ["", f"All of {ks_text} with intervals are in `results.json` (`summary.<algo>.pass_at_k`).", ""]
    lines += _difference_lines(res, algos, kmax, lvl)
    lines += _budget_lines(res, algos)
    lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots]
    lines += ["", "- `heldout_pass1.png`: held-out pass@1 at each evaluation point (0 = the shared SFT start); "
              "line = mean over seeds, band = min–max over seeds.",
              "- `entropy.png`, `train_reward.png`: mean token entropy and reward of the training rollouts per "
              "step, against budget spent (mean over seeds, min–max band).",
              f"- `pass_at_k_and_cost.png`: final pass@k with {lvl} intervals; tool calls and tokens per solved "
              "task (bars: pooled over seeds; dots: per seed).", "",
              "Per-run files: `seed*/<algo>/result.json` (evaluations, budget) and `seed*/<algo>/run/metrics.jsonl` "
              "(step metrics, docs/metrics.md). How to read this report: docs/compare.md."]
    return lines


def _difference_lines(res: dict[str, Any], algos: list[str], kmax: str, lvl: str) -> list[str]:
    ref, diffs = res["reference"], res["differences"]
    lines = [f"## Differences from `{ref}`", "",
             "Per seed, both algorithms start from the same SFT model and are evaluated on the same tasks with the "
             "same sampling seed, so differences are paired. *Seed spread* = the larger of the two algorithms' "
             f"max − min over seeds; *> spread* says whether |difference| exceeds it. *{lvl} CI* is a paired "
             "bootstrap over seeds and tasks of the difference.", "",
             "| algorithm | metric | difference | per seed | seed spread | > spread | " + lvl + " CI | CI excludes 0 |",
             "|---|---|---|---|---|---|---|---|"]
    for a in algos:
        if a not in diffs:
            continue
        for metric in ("pass@1", f"pass@{kmax}", "tool_calls_per_solved", "tokens_per_solved"):
            if metric not in diffs[a]:
                continue
            d = diffs[a][metric]
            fmt = ".3f" if metric.startswith("pass") else ".2f"
            ci = f"[{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]" if "ci" in d else "—"
            excl = ("yes" if d["ci_excludes_0"] else "no") if "ci" in d else "—"
            lines.append(f"| {a} | {metric.replace('_per_solved', ' / solved').replace('_', ' ')} | "
                         f"{d['diff']:+{fmt}} | {', '.join(format(x, '+' + fmt) for x in d['per_seed'])} | "
                         f"{d['spread']:{fmt}} | {_yes(d['exceeds'])} | {ci} | {excl} |")
    big = [f"{a} ({m})" for a in algos if a in diffs for m in ("pass@1", f"pass@{kmax}")
           if m in diffs[a] and diffs[a][m]["exceeds"]]
    lines += ["", "Differences in pass@1 or pass@" + kmax + " larger than the seed spread: " +
              (", ".join(big) if big else "**none**") + ".", ""]
    return lines


def _budget_lines(res: dict[str, Any], algos: list[str]) -> list[str]:
    cfg, summ = res["config"], res["summary"]
    kind, total = cfg["budget_kind"], cfg["budget"]
    lines = ["## Equal budget check", "",
             f"Every run must end with `spent − last step < {total:g} ≤ spent` ({UNITS[kind]}, "
             "from its metrics).", "",
             "| algorithm | steps | spent | last step | holds | training tool calls | tool calls / trajectory |",
             "|---|---|---|---|---|---|---|"]
    for a in algos:
        s = summ[a]
        ok = all(sp - ls < total <= sp for sp, ls in zip(s["spent"], s["last_step"]))
        capped = not all(s["reached_budget"])
        per_traj = [c / t for c, t in zip(s["train_tool_calls"], s["train_trajectories"]) if t]
        lines.append(f"| {a} | {_span(s['steps'])} | {_span(s['spent'])} | {_span(s['last_step'])} | "
                     f"{'yes' if ok else ('NO: hit max_steps' if capped else 'NO')} | {_span(s['train_tool_calls'])} | "
                     f"{_span(per_traj, '.2f')} |")
    return lines + [""]
