"""Local-backend latency in its two modes (bubblewrap jail, no jail): run, fork, cold start.

Medians over repeats of a warm ``session.run("x = 1")``, ``session.fork()`` of a small
interpreter (and its close), and ``LocalHost.start`` + ``close``. Each call of this script
records one labelled column (e.g. before / after a change) in bench/results/sandbox-local.json
and rewrites bench/results/sandbox-local.md with every column recorded so far.

Run:  python bench/sandbox/bench_local.py --label after [--repeats 200]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

from branchgym.sandbox.limits import SandboxLimits
from branchgym.sandbox.local import LocalHost, bwrap_available
from branchgym.sandbox.pool import SandboxPool

RESULTS = Path(__file__).resolve().parents[1] / "results"


def _median_ms(xs: list[float]) -> float:
    return round(statistics.median(xs) * 1e3, 2)


def _modes() -> dict[str, SandboxLimits]:
    names = {f.name for f in dataclasses.fields(SandboxLimits)}
    base = SandboxLimits(preload=())
    out = {}
    if bwrap_available():
        out["jail"] = base
    plain = dataclasses.replace(base, bwrap=False)
    if "allow_root" in names:  # after the root rule: the opt-in, and the dropped uid
        out["plain"] = dataclasses.replace(plain, allow_root=True)
        if os.geteuid() == 0 and os.path.exists("/usr/bin/python3"):
            out["plain, uid dropped (/usr/bin/python3)"] = dataclasses.replace(
                plain, python="/usr/bin/python3")
    else:
        out["plain"] = plain
    return out


def bench_mode(limits: SandboxLimits, repeats: int) -> dict[str, float]:
    rows: dict[str, float] = {}
    with SandboxPool("local", limits, warm=1) as pool, pool.acquire() as s:
        for _ in range(5):
            s.run("x = 1")
        runs = []
        for _ in range(repeats):
            t = time.perf_counter()
            s.run("x = 1")
            runs.append(time.perf_counter() - t)
        rows["run_ms"] = _median_ms(runs)
        forks = []
        for _ in range(max(10, repeats // 4)):
            t = time.perf_counter()
            f = s.fork()
            forks.append(time.perf_counter() - t)
            f.close()
        rows["fork_ms"] = _median_ms(forks)
    starts = []
    for _ in range(max(5, repeats // 20)):
        t = time.perf_counter()
        LocalHost.start(limits).close()
        starts.append(time.perf_counter() - t)
    rows["cold_start_ms"] = _median_ms(starts)
    return rows


def render(data: dict) -> str:
    lines = ["# Local sandbox backend: latency with and without the jail", "",
             "Medians (ms) of a warm `run(\"x = 1\")`, `fork()` of a small interpreter, and a "
             "cold `LocalHost.start` + `close`; `preload=()`. Written by "
             "`bench/sandbox/bench_local.py`.", "",
             "| label | mode | run | fork | cold start | repeats | machine |",
             "|---|---|---|---|---|---|---|"]
    for label, col in data.items():
        for mode, r in col["modes"].items():
            lines.append(f"| {label} | {mode} | {r['run_ms']} | {r['fork_ms']} | "
                         f"{r['cold_start_ms']} | {col['repeats']} | {col['machine']} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--label", required=True)
    p.add_argument("--repeats", type=int, default=200)
    args = p.parse_args()
    warnings.simplefilter("ignore")
    col = {"repeats": args.repeats, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, uid {os.geteuid()}, "
                      f"load {os.getloadavg()[0]:.1f}",
           "modes": {m: bench_mode(lim, args.repeats) for m, lim in _modes().items()}}
    path = RESULTS / "sandbox-local.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[args.label] = col
    path.write_text(json.dumps(data, indent=1) + "\n")
    (RESULTS / "sandbox-local.md").write_text(render(data))
    print(render(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
