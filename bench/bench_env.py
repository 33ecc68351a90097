"""Env-core latency: clone of a mid-episode env, step, reset (not a test; prints a table).

Usage: ``python bench/bench_env.py [--repeats 2000] [--out bench/results]``.
Writes ``env.json`` and ``env.md`` to the output folder. Target: clone of a
mid-episode search env p50 <= 0.2 ms.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym

from branchgym.envs.clone import clone as clone_stack


def _times(
    fn: Callable[[], Any], repeats: int, setup: Callable[[], Any] | None = None
) -> list[float]:
    out = []
    for _ in range(repeats):
        arg = setup() if setup else None
        t0 = time.perf_counter()
        fn() if arg is None else fn(arg)
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def _row(name: str, ms: list[float]) -> dict[str, Any]:
    ms = sorted(ms)
    return {
        "case": name,
        "n": len(ms),
        "p50_ms": statistics.median(ms),
        "p90_ms": ms[int(0.9 * (len(ms) - 1))],
        "p99_ms": ms[int(0.99 * (len(ms) - 1))],
    }


def _mid_episode(env_id: str, **kw: Any) -> gym.Env[str, str]:
    env = gym.make(env_id, split="test", **kw)
    _, info = env.reset(seed=0)
    for step in info["task"]["gold_path"][:2]:
        if step["tool"] == "search":
            env.step(f"<think>look</think><search>{step['argument']}</search>")
    env.step("<search>an extra query to fill the dedup set</search>")
    return env


def run(repeats: int) -> list[dict[str, Any]]:
    rows = []
    env = _mid_episode("WebSearch-Offline-v0")
    base = env.unwrapped
    rows.append(_row("clone: ToolEnv.clone() mid-episode search env", _times(base.clone, repeats)))
    rows.append(
        _row(
            "clone: branchgym.envs.clone(gym.make stack)", _times(lambda: clone_stack(env), repeats)
        )
    )
    rows.append(_row("get_state() mid-episode search env", _times(base.get_state, repeats)))

    queries = [f"<search>query number {i} about founders</search>" for i in range(repeats)]
    it = iter(queries)

    # each timed step runs on a fresh clone of the mid-episode env, so limits never kick in
    rows.append(
        _row(
            "step: search call (BM25, default world)",
            _times(lambda e: e.step(next(it)), repeats, setup=base.clone),
        )
    )
    rows.append(
        _row(
            "step: invalid action",
            _times(lambda e: e.step("no call here"), repeats, setup=base.clone),
        )
    )
    rows.append(_row("reset(seed)", _times(lambda: base.reset(seed=1), min(repeats, 500))))

    def episode_answer() -> None:
        base.reset(seed=2)
        base.step("<answer>The final answer is \\boxed{x}</answer>")

    rows.append(_row("reset + answer step (scoring)", _times(episode_answer, min(repeats, 500))))
    env.close()

    for sandbox in ("local", "docker"):
        rows += _python_rows(sandbox, min(repeats, 100))
    return rows


def _python_rows(sandbox: str, n: int) -> list[dict[str, Any]]:
    """Clone (= session fork) and python-step latency of a mid-episode CodeExec env."""
    try:
        py = gym.make("CodeExec-Offline-v0", split="test", sandbox=sandbox)
        py.reset(seed=0)
        py.step("<python>import math\nx = [math.factorial(i) for i in range(200)]</python>")
    except Exception as exc:  # no engine / no image: say so and go on
        print(f"skipping python cases on {sandbox}: {exc}")
        return []
    base = py.unwrapped
    clone_ms, step_ms = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        twin = base.clone()
        clone_ms.append((time.perf_counter() - t0) * 1e3)
        t0 = time.perf_counter()
        twin.step("<python>print(len(x))</python>")
        step_ms.append((time.perf_counter() - t0) * 1e3)
        twin.close()
    py.close()
    return [
        _row(f"clone: mid-episode python env, session forked ({sandbox})", clone_ms),
        _row(f"step: python call on the clone ({sandbox})", step_ms),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=2000)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()
    rows = run(args.repeats)
    width = max(len(r["case"]) for r in rows)
    lines = [
        f"| {'case':<{width}} | p50 ms | p90 ms | p99 ms |",
        f"|{'-' * (width + 2)}|--------|--------|--------|",
    ]
    lines += [
        f"| {r['case']:<{width}} | {r['p50_ms']:.4f} | {r['p90_ms']:.4f} | {r['p99_ms']:.4f} |"
        for r in rows
    ]
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "repeats": args.repeats,
    }
    (out / "env.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    (out / "env.md").write_text(
        f"# Env-core latency\n\n`python bench/bench_env.py --repeats {args.repeats}` "
        f"({meta['python']}, {meta['machine']}, shared 2-core box)\n\n{table}\n"
    )


if __name__ == "__main__":
    main()
