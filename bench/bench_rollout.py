"""Rollout cost per RL step, flat vs tree, with the python sandbox (not a test; prints a table).

Usage: ``python bench/bench_rollout.py [--backend local|docker] [--repeats 3] [--model DIR]
[--tool-workers 1,0] [--out bench/results]``. Writes ``rollout.json`` and ``rollout.md``.

Setup: the CodeExec offline env (stateful python tool in the sandbox), M = 16 trajectories per
prompt for both rollouts (flat: G = 16; tree: ARPO rule, N = 8 globals), 2 prompts per step,
then one GRPO-style update on the batch with the trainer's code path. Reported per step: wall
time; shares of generation, tool execution (sandbox), env cloning and the update; generated
tokens and executed tool calls. The policy is the tiny model (``--model``; default: built
here), which writes code rarely, so a ``--policy scripted`` run also drives the sandbox with a
fixed stateful program per turn (its generation cost is nil; it isolates tools and cloning).

``--tool-workers 1,0`` measures each configuration with the engine's tool executor at one worker
(the calls of a round one after another, as before the engine ran them concurrently) and at its
default size (0: ``min(32, live trajectories)``). Per step it also reports where the tool time
went: the median duration of one call, and the sum of all call durations divided by the tools
phase's wall time (how many calls were in flight on average).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np


class _ScriptedCode:
    """Stateful python calls then an answer, tokenised with the real tokenizer (bench double)."""

    def __init__(self, policy: Any, calls: int = 3, seed: int = 0) -> None:
        self.p, self.calls, self.rng = policy, calls, random.Random(seed)
        self.tokenizer = policy.tokenizer

    vocab_size = property(lambda self: self.p.vocab_size)
    eos_token_ids = property(lambda self: self.p.eos_token_ids)

    def encode_chat(self, m):  # noqa: ANN001
        return self.p.encode_chat(m)

    def encode(self, t):  # noqa: ANN001
        return self.p.encode(t)

    def decode(self, ids):  # noqa: ANN001
        return self.p.decode(ids)

    def generate(self, prompts, params):  # noqa: ANN001
        from branchgym.agents.policy import Completion

        out = []
        for i, p in enumerate(prompts):
            if self.decode(p).count("<result>") >= self.calls:
                text, stop = "<answer>\\boxed{0}</answer>", "</answer>"
            else:
                k = self.rng.randrange(1000)
                text, stop = f"<python>s = globals().get('s', 0) + {k}\nprint(s)</python>", "</python>"
            ids = self.encode(text)
            out.append(Completion(ids, [-1.0] * len(ids), [self.rng.uniform(0, 3) for _ in ids], text, "stop", stop,
                                  prompt_index=i))
        return out


def _update_seconds(trainer: Any, batch: Any) -> float:
    """One update on ``batch`` through the trainer's own code path."""
    from branchgym.algorithms.inputs import AdvantageInputs, LossInputs
    from branchgym.algorithms.registry import ADVANTAGES, POLICY_LOSSES
    from branchgym.algorithms.rollout.tensors import to_tensors

    tt = to_tensors(batch, trainer.policy.pad_token_id, [random.random() for _ in range(len(batch))])
    t0 = time.perf_counter()
    trainer._update(tt, AdvantageInputs, LossInputs, ADVANTAGES, POLICY_LOSSES)
    return time.perf_counter() - t0


def _tool_stats(b: Any) -> dict[str, float]:
    """Median call duration and the calls' summed duration over the tools phase's wall time."""
    spans = b.extra.get("tool_spans", [])
    durs = [s.end - s.start for s in spans]
    wall = b.seconds.get("tools", 0.0)
    return {"call_ms_median": 1000 * statistics.median(durs) if durs else 0.0,
            "calls_in_flight": sum(durs) / wall if wall else 0.0}


def run(backend: str, repeats: int, model: Path, policy_kind: str,
        workers: tuple[int | None, ...] = (None,)) -> list[dict[str, Any]]:
    """Measure flat and tree steps for every tool executor size in ``workers``, interleaved per
    repeat (so machine load and the sandbox pool's warmth hit every configuration alike), after one
    discarded warm-up rollout that starts the pool's containers."""
    from branchgym.agents.policy import SamplingParams
    from branchgym.algorithms.config import BranchConfig
    from branchgym.algorithms.rollout import flat_rollout, tree_rollout
    from branchgym.algorithms.train_config import preset
    from branchgym.algorithms.trainer import Trainer

    make = lambda: gym.make("CodeExec-Offline-v0", split="smoke", sandbox=backend)  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(preset("grpo", env="CodeExec-Offline-v0", split="smoke", model=str(model), out=tmp,
                                 tensorboard=False, progress=False, micro_batch_size=16, prompts_per_step=2),
                          make_env=make, resume=False)
        env = make()
        tids = [t.id for t in env.unwrapped.tasks[:2]]
        env.close()
        params = SamplingParams(max_new_tokens=48, temperature=1.0, logprobs_topk=10)
        source = "topk" if policy_kind == "tiny" else "exact"

        def rollout(kind: str, rep: int, w: int | None) -> Any:
            pol = trainer.policy if policy_kind == "tiny" else _ScriptedCode(trainer.policy, seed=rep)
            if kind == "flat":
                return flat_rollout(make, pol, tids, params, group_size=16, max_response_tokens=256, call_limit=3,
                                    entropy_source=source, tool_workers=w)
            return tree_rollout(make, pol, tids, params, branch=BranchConfig(n=16, initial=8),
                                rng=np.random.default_rng(rep), max_response_tokens=256, call_limit=3,
                                entropy_source=source, tool_workers=w)

        rollout("flat", -1, None)  # warm-up, discarded
        rows = []
        for rep in range(repeats):
            for kind in ("flat", "tree"):
                for w in workers:
                    t0 = time.perf_counter()
                    b = rollout(kind, rep, w)
                    rollout_s = time.perf_counter() - t0
                    upd = _update_seconds(trainer, b)
                    total = rollout_s + upd
                    rows.append({
                        "rollout": kind, "repeat": rep, "step_s": total, "rollout_s": rollout_s, "update_s": upd,
                        **{f"{ph}_s": b.seconds.get(ph, 0.0) for ph in ("generation", "tools", "clone", "reset", "close")},
                        "generation_share": b.seconds.get("generation", 0.0) / total,
                        "tools_share": b.seconds.get("tools", 0.0) / total,
                        "clone_share": b.seconds.get("clone", 0.0) / total,
                        "reset_share": b.seconds.get("reset", 0.0) / total,
                        "close_share": b.seconds.get("close", 0.0) / total,
                        "update_share": upd / total,
                        "generated_tokens": b.generated_tokens, "tool_calls": b.tool_calls,
                        "trajectories": len(b), "clones": b.counts.get("clones", 0),
                        "tool_workers": w or 0, **_tool_stats(b),
                    })
        trainer.close()
    return rows


def cold_child(backend: str, model: Path, workers: int | None) -> dict[str, Any]:
    """One flat rollout (scripted policy) in this fresh process: the sandbox pool starts empty, so
    every session start pays for the containers, as the first step of a training run does."""
    from branchgym.agents.hf import HFPolicy
    from branchgym.agents.policy import SamplingParams
    from branchgym.algorithms.rollout import flat_rollout

    make = lambda: gym.make("CodeExec-Offline-v0", split="smoke", sandbox=backend)  # noqa: E731
    pol = _ScriptedCode(HFPolicy(model, device="cpu"), seed=0)
    env = gym.make("CodeExec-Offline-v0", split="smoke", sandbox=backend)
    tids = [t.id for t in env.unwrapped.tasks[:2]]
    env.close()
    t0 = time.perf_counter()
    b = flat_rollout(make, pol, tids, SamplingParams(max_new_tokens=48), group_size=16, max_response_tokens=256,
                     call_limit=3, entropy_source="exact", tool_workers=workers)
    return {"rollout": "flat", "tool_workers": workers or 0, "rollout_s": time.perf_counter() - t0,
            **{f"{ph}_s": b.seconds.get(ph, 0.0) for ph in ("generation", "tools", "clone", "reset", "close")},
            "tool_calls": b.tool_calls, **_tool_stats(b)}


def run_cold(backend: str, model: Path, workers: list[int], repeats: int) -> list[dict[str, Any]]:
    """``cold_child`` in ``repeats`` fresh processes per executor size, interleaved."""
    import subprocess
    import sys

    rows = []
    for rep in range(repeats):
        for w in workers:
            cmd = [sys.executable, __file__, "--backend", backend, "--model", str(model), "--cold-child", str(w)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            rows.append({**json.loads(out.strip().splitlines()[-1]), "repeat": rep})
    return rows


def run_lookup(model: Path, repeats: int, prompts: int = 8) -> list[dict[str, Any]]:
    """Tokens and tool calls at M = 16 on the quickstart lookup task (a policy that calls tools)."""
    from branchgym.agents.hf import HFPolicy
    from branchgym.agents.policy import SamplingParams
    from branchgym.algorithms.config import BranchConfig
    from branchgym.algorithms.quickstart_task import lookup_tasks, make_lookup_env
    from branchgym.algorithms.rollout import flat_rollout, tree_rollout

    pol = HFPolicy(model, device="cpu", seed=0)
    make = lambda: make_lookup_env("train")  # noqa: E731
    tids = [t.id for t in lookup_tasks("train")[:prompts]]
    p = SamplingParams(max_new_tokens=32, temperature=1.0, logprobs_topk=10)
    rows = []
    for rep in range(repeats):
        for kind in ("flat", "tree"):
            t0 = time.perf_counter()
            if kind == "flat":
                b = flat_rollout(make, pol, tids, p, group_size=16, max_response_tokens=128, call_limit=2,
                                 entropy_source="topk")
            else:
                b = tree_rollout(make, pol, tids, p, branch=BranchConfig(n=16, initial=8),
                                 rng=np.random.default_rng(rep), max_response_tokens=128, call_limit=2,
                                 entropy_source="topk")
            total = time.perf_counter() - t0
            rows.append({"rollout": kind, "repeat": rep, "step_s": total, "rollout_s": total, "update_s": 0.0,
                         "generation_share": b.seconds.get("generation", 0.0) / total,
                         "tools_share": b.seconds.get("tools", 0.0) / total,
                         "clone_share": b.seconds.get("clone", 0.0) / total,
                         "reset_share": b.seconds.get("reset", 0.0) / total, "update_share": 0.0,
                         "generated_tokens": b.generated_tokens, "tool_calls": b.tool_calls,
                         "trajectories": len(b), "clones": b.counts.get("clones", 0),
                         "reward": sum(b.rewards) / len(b)})
    return rows


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for kind in ("flat", "tree"):
        for w in dict.fromkeys(r.get("tool_workers", 0) for r in rows):
            rs = [r for r in rows if r["rollout"] == kind and r.get("tool_workers", 0) == w]
            if not rs:
                continue
            med = {k: statistics.median(r[k] for r in rs) for k in rs[0] if isinstance(rs[0][k], (int, float))
                   and k != "repeat"}
            out.append({"rollout": kind, "n": len(rs), **med})
    return out


def kinds_needed(policy: str) -> bool:
    return policy != "none"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="local", choices=("local", "docker"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", default=None, help="tiny model dir (default: build one)")
    ap.add_argument("--policy", default="both", choices=("tiny", "scripted", "both", "none"))
    ap.add_argument("--name", default="rollout", help="output stem: <out>/<name>.json and .md")
    ap.add_argument("--lookup-model", default=None,
                    help="also measure M=16 tokens/tool calls on the lookup task with this (SFT'd) model")
    ap.add_argument("--tool-workers", default="0",
                    help="comma list of tool executor sizes to measure; 0 = the default size, 1 = sequential")
    ap.add_argument("--cold", type=int, default=0,
                    help="also time the first rollout of N fresh processes per tool-workers size (cold pool)")
    ap.add_argument("--cold-child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default="bench/results")
    args = ap.parse_args()
    workers = [int(w) for w in args.tool_workers.split(",")]
    if args.cold_child is not None:
        print(json.dumps(cold_child(args.backend, Path(args.model), args.cold_child or None)))
        return
    model = Path(args.model) if args.model else None
    if model is None and kinds_needed(args.policy):
        from branchgym.agents import tiny

        model = tiny.build(Path(tempfile.mkdtemp()) / "tiny", vocab_size=1024, hidden=64)
    kinds = {"both": ("tiny", "scripted"), "none": ()}.get(args.policy, (args.policy,))
    result: dict[str, Any] = {"machine": platform.platform(), "backend": args.backend, "M": 16, "N": 8,
                              "prompts": 2, "results": {}}
    lines = [f"# Rollout cost per step, flat vs tree (CodeExec, {args.backend} sandbox, M=16, N=8, 2 prompts)", "",
             "| policy | rollout | tool workers | step s | rollout s | tools s | close s | clone s | reset s | update s "
             "| tool calls | call ms (median) | calls in flight | clones |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for kind in kinds:
        rows = run(args.backend, args.repeats, model, kind, workers=tuple(w or None for w in workers))
        summ = summarise(rows)
        result["results"][kind] = {"rows": rows, "median": summ}
        for s in summ:
            w = int(s["tool_workers"]) or "default"
            lines.append(
                f"| {kind} | {s['rollout']} | {w} | {s['step_s']:.2f} | {s['rollout_s']:.2f} | {s['tools_s']:.2f} | "
                f"{s['close_s']:.2f} | {s['clone_s']:.2f} | {s['reset_s']:.2f} | {s['update_s']:.2f} | "
                f"{s['tool_calls']:.0f} | {s['call_ms_median']:.1f} | {s['calls_in_flight']:.1f} | {s['clones']:.0f} |")
    if args.cold:
        assert model is not None
        rows = run_cold(args.backend, model, workers, args.cold)
        result["results"]["cold_flat"] = {"rows": rows}
        lines += ["", f"First rollout of a fresh process (sandbox pool empty), scripted flat, {args.cold} processes "
                  "per size, medians:", "",
                  "| tool workers | rollout s | tools s | close s | reset s | tool calls | call ms (median) | calls in flight |",
                  "|---|---|---|---|---|---|---|---|"]
        for w in workers:
            rs = [r for r in rows if r["tool_workers"] == w]
            m = {k: statistics.median(r[k] for r in rs) for k in ("rollout_s", "tools_s", "close_s", "reset_s",
                                                                 "tool_calls", "call_ms_median", "calls_in_flight")}
            lines.append(f"| {w or 'default'} | {m['rollout_s']:.2f} | {m['tools_s']:.2f} | {m['close_s']:.2f} | "
                         f"{m['reset_s']:.2f} | {m['tool_calls']:.0f} | {m['call_ms_median']:.1f} | "
                         f"{m['calls_in_flight']:.1f} |")
    if args.lookup_model:
        rows = run_lookup(Path(args.lookup_model), args.repeats)
        summ = summarise(rows)
        result["results"]["lookup_sft"] = {"rows": rows, "median": summ}
        lines += ["", "Lookup task (quickstart), SFT'd tiny model, 8 prompts, M=16, N=8, rollout only:", "",
                  "| rollout | rollout s | gen % | gen. tokens | tool calls | clones |", "|---|---|---|---|---|---|"]
        for s_ in summ:
            lines.append(f"| {s_['rollout']} | {s_['step_s']:.2f} | {100 * s_['generation_share']:.0f} | "
                         f"{s_['generated_tokens']:.0f} | {s_['tool_calls']:.0f} | {s_['clones']:.0f} |")
    lines += ["", f"Medians over {args.repeats} repeats; machine: {result['machine']}.", ""]
    text = "\n".join(lines)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(result, indent=1))
    (out / f"{args.name}.md").write_text(text)


if __name__ == "__main__":
    main()
