"""Sandbox latency: branchgym's sandbox vs `docker exec python3 -c` vs `subprocess python3 -c`.

Measures, in one run, p50/p99 of:
  - warm ``session.run("x = 1")``;
  - ``session.fork()`` with ~1 MB and ~200 MB of interpreter state;
  - acquiring a session from a warm pool;
  - a cold host start (a new container / a new local server);
  - the baselines ARPO, GEM and skyrl-gym use: ``docker exec <c> python3 -c "x = 1"`` and a plain
    ``subprocess.run([python3, "-c", "x = 1"])``.

Targets: warm run p50 <= 2 ms, fork p50 <= 20 ms at 200 MB, acquire p50 <= 5 ms.

Run:  python bench/sandbox/bench_sandbox.py [--backends docker local] [--quick]
Writes bench/results/sandbox.json and .md (sandbox-nopreload.* with --no-preload).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from branchgym.sandbox.limits import SandboxLimits
from branchgym.sandbox.pool import SandboxPool

RESULTS = Path(__file__).resolve().parents[1] / "results"
TARGETS_MS = {"run": 2.0, "fork_200mb": 20.0, "acquire": 5.0}


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def _summary(samples_s: list[float]) -> dict[str, float]:
    ms = [x * 1e3 for x in samples_s]
    return {"n": len(ms), "p50_ms": statistics.median(ms), "p99_ms": _pct(ms, 0.99),
            "mean_ms": statistics.fmean(ms)}


def _time(fn: Callable[[], object], n: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def _fork_samples(session, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        child = session.fork()
        out.append(time.perf_counter() - t)
        child.close()
    return out


def bench_backend(backend: str, quick: bool, preload: bool) -> dict[str, dict[str, float]]:
    k = 0.2 if quick else 1.0
    limits = SandboxLimits(memory_mb=4096, worker_memory_mb=2048,
                           preload=SandboxLimits.preload if preload else ())
    rows: dict[str, dict[str, float]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pool = SandboxPool(backend, limits, warm=1)
    with pool:
        s = pool.acquire()
        rows["run"] = _summary(_time(lambda: s.run("x = 1"), int(1000 * k)))
        s.run("import os\nstate = os.urandom(1 << 20)")  # ~1 MB of live data
        rows["fork_1mb"] = _summary(_fork_samples(s, int(100 * k)))
        r = s.run("big = b'x' * (200 << 20)\nrss = [l for l in open('/proc/self/status') "
                  "if l.startswith('VmRSS')][0].split()[1]\nint(rss) // 1024")
        rows["fork_200mb"] = _summary(_fork_samples(s, int(50 * k)))
        rows["fork_200mb"]["worker_rss_mb"] = float(r.stdout.strip() or "nan")
        s.close()

        def acquire_once() -> None:
            t = time.perf_counter()
            a = pool.acquire()
            samples.append(time.perf_counter() - t)
            t = time.perf_counter()
            a.close()  # reset the host (kill, wipe) and start its next spare interpreter
            releases.append(time.perf_counter() - t)
            deadline = time.time() + 30  # let the pool put the reset host back first
            while pool.stats()["idle"] < 1 and time.time() < deadline:
                time.sleep(0.001)

        samples: list[float] = []
        releases: list[float] = []
        for _ in range(int(100 * k) + 3):
            acquire_once()
        rows["acquire"] = _summary(samples[3:])
        rows["release_and_recycle"] = _summary(releases[3:])
        with pool.acquire() as fresh:
            rows["first_import_numpy_sympy"] = _summary(
                [fresh.run("import numpy, sympy").duration_s])

        if backend == "docker":
            from branchgym.sandbox.docker import DockerHost as Host
        else:
            from branchgym.sandbox.local import LocalHost as Host  # type: ignore[assignment]
        starts = []
        for _ in range(max(3, int(15 * k))):
            t = time.perf_counter()
            h = Host.start(limits)
            starts.append(time.perf_counter() - t)
            h.close()
        rows["cold_start"] = _summary(starts)

        if backend == "docker":
            with pool.acquire() as d:
                cid = d.host.container_id
                cmd = ["docker", "exec", cid, "python3", "-c", "x = 1"]
                rows["docker_exec_python_c"] = _summary(
                    _time(lambda: subprocess.run(cmd, check=True, capture_output=True),
                          int(30 * k)))
    return rows


def bench_subprocess(quick: bool) -> dict[str, float]:
    n = 10 if quick else 50
    py = "python3"
    return _summary(_time(lambda: subprocess.run([py, "-c", "x = 1"], check=True), n))


def render(results: dict) -> str:
    lines = ["# Sandbox latency", "",
             f"Machine: {results['machine']}; {results['date']}; load average at start "
             f"{results['load_average'][0]:.1f} (2 cores shared with other jobs); servers "
             f"preload numpy+sympy: {results['preload']}. "
             "Targets: warm run p50 ≤ 2 ms, fork p50 ≤ 20 ms at 200 MB, acquire p50 ≤ 5 ms.", "",
             "| backend | operation | n | p50 ms | p99 ms | mean ms |", "|---|---|---|---|---|---|"]
    for backend, rows in results["backends"].items():
        for op, r in rows.items():
            lines.append(f"| {backend} | {op} | {r['n']} | {r['p50_ms']:.3f} | "
                         f"{r['p99_ms']:.3f} | {r['mean_ms']:.3f} |")
    sp = results["subprocess_python_c"]
    lines.append(f"| host | subprocess python3 -c | {sp['n']} | {sp['p50_ms']:.3f} | "
                 f"{sp['p99_ms']:.3f} | {sp['mean_ms']:.3f} |")
    lines += ["", "Ratios (p50): " + "; ".join(results["ratios"]), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backends", nargs="+", default=["docker", "local"],
                    choices=["docker", "local"])
    ap.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    ap.add_argument("--no-preload", action="store_true",
                    help="servers import nothing up front (default: numpy and sympy)")
    args = ap.parse_args(argv)
    results: dict = {"machine": f"{platform.node()} {platform.machine()}, "
                                f"Python {platform.python_version()}",
                     "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                     "preload": not args.no_preload, "load_average": list(os.getloadavg()),
                     "backends": {}}
    for backend in args.backends:
        results["backends"][backend] = bench_backend(backend, args.quick, not args.no_preload)
    results["subprocess_python_c"] = bench_subprocess(args.quick)
    ratios = []
    sp = results["subprocess_python_c"]["p50_ms"]
    for backend, rows in results["backends"].items():
        ratios.append(f"{backend} run is {sp / rows['run']['p50_ms']:.0f}x faster than "
                      f"subprocess python3 -c")
        if "docker_exec_python_c" in rows:
            ratios.append(f"{backend} run is "
                          f"{rows['docker_exec_python_c']['p50_ms'] / rows['run']['p50_ms']:.0f}x "
                          f"faster than docker exec python3 -c")
        for op, target in TARGETS_MS.items():
            ok = rows[op]["p50_ms"] <= target
            ratios.append(f"{backend} {op} p50 {rows[op]['p50_ms']:.2f} ms "
                          f"{'meets' if ok else 'MISSES'} the {target:g} ms target")
    results["ratios"] = ratios
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "sandbox" if not args.no_preload else "sandbox-nopreload"
    (RESULTS / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    text = render(results)
    (RESULTS / f"{stem}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
