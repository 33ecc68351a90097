"""Rounds of concurrent episodes on one sandbox pool: how long a session's start waits.

What an RL worker does each step: ``--concurrent`` episodes start at once (each takes a root
session and runs one call), finish and close; then ``--pause`` seconds pass (the update) before
the next round. The first round warms the pool; every later round should find reset hosts. Per
session: the time from ``acquire()`` to the end of its first ``run("x = 1")``. Also: how many
hosts the pool started after the warm-up round (0 when every released host was reused).

    python bench/sandbox/bench_pool_rounds.py --backend docker --concurrent 8 --rounds 6
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

from branchgym.sandbox.pool import SandboxPool

OUT = Path(__file__).resolve().parents[1] / "results"


def _episode(pool: SandboxPool, out: list[float], i: int, barrier: threading.Barrier) -> None:
    barrier.wait()
    t0 = time.perf_counter()
    session = pool.acquire()
    session.run("x = 1")
    out[i] = time.perf_counter() - t0
    session.close()


def measure(backend: str, concurrent: int, rounds: int, pause_s: float) -> dict:
    """Per-round start latencies (seconds) and the hosts started after the warm-up round."""
    with SandboxPool(backend, warm=1) as pool:
        per_round, started_after_warmup = [], 0
        for r in range(rounds + 1):  # round 0 warms the pool
            lat = [0.0] * concurrent
            barrier = threading.Barrier(concurrent)
            threads = [threading.Thread(target=_episode, args=(pool, lat, i, barrier))
                       for i in range(concurrent)]
            before = pool.started_hosts
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if r > 0:
                per_round.append(lat)
                started_after_warmup += pool.started_hosts - before
            time.sleep(pause_s)
    flat = [x for lat in per_round for x in lat]
    return {
        "backend": backend, "concurrent": concurrent, "rounds": rounds, "pause_s": pause_s,
        "start_p50_ms": 1e3 * statistics.median(flat),
        "start_p90_ms": 1e3 * statistics.quantiles(flat, n=10)[-1],
        "start_max_ms": 1e3 * max(flat),
        "round_wall_median_ms": 1e3 * statistics.median(max(lat) for lat in per_round),
        "hosts_started_after_warmup": started_after_warmup,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backend", default="docker", choices=["docker", "local"])
    ap.add_argument("--concurrent", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--pause", type=float, default=2.0, help="seconds between rounds")
    ap.add_argument("--label", default="", help="suffix of the result file (e.g. before/after)")
    args = ap.parse_args(argv)
    res = measure(args.backend, args.concurrent, args.rounds, args.pause)
    res["machine"] = f"{platform.machine()}, {__import__('os').cpu_count()} CPUs"
    print(json.dumps(res, indent=1))
    name = f"pool-rounds-{args.backend}{'-' + args.label if args.label else ''}.json"
    (OUT / name).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
