"""Local-backend latency in its two modes (bubblewrap jail, no jail): run, fork, cold start.

Medians over repeats of a warm ``session.run("x = 1")``, ``session.fork()`` of a small
interpreter (and its close), and ``LocalHost.start`` + ``close``. Each call of this script
adds one round under its label (e.g. before / after a change) to
bench/results/sandbox-local.json and rewrites bench/results/sandbox-local.md: per label and mode,
the median over its rounds (run labels alternately, so that both see the same machine load).

Run:  python bench/sandbox/bench_local.py --label after [--repeats 200] [--results DIR]
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
             "cold `LocalHost.start` + `close`; `preload=()`; each cell is the median over the "
             "label's rounds of the per-round medians. Written by "
             "`bench/sandbox/bench_local.py`.", "",
             "| label | mode | run | fork | cold start | rounds x repeats | machine (first round) |",
             "|---|---|---|---|---|---|---|"]
    for label, col in data.items():
        rounds = col["rounds"]
        for mode in rounds[0]["modes"]:
            cells = [statistics.median(r["modes"][mode][k] for r in rounds if mode in r["modes"])
                     for k in ("run_ms", "fork_ms", "cold_start_ms")]
            lines.append(f"| {label} | {mode} | {cells[0]:.2f} | {cells[1]:.2f} | "
                         f"{cells[2]:.0f} | {len(rounds)} x {rounds[0]['repeats']} | "
                         f"{rounds[0]['machine']} |")
    notes = [f"- {label}: {col['note']}" for label, col in data.items() if col.get("note")]
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--label", required=True)
    p.add_argument("--repeats", type=int, default=200)
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--note", help="what the label stands for (shown under the table)")
    p.add_argument("--render-only", action="store_true", help="only set --note and rewrite .md")
    args = p.parse_args()
    warnings.simplefilter("ignore")
    path = args.results / "sandbox-local.json"
    if args.render_only:
        data = json.loads(path.read_text())
        if args.note:
            data[args.label]["note"] = args.note
        path.write_text(json.dumps(data, indent=1) + "\n")
        (args.results / "sandbox-local.md").write_text(render(data))
        print(render(data))
        return 0
    load = os.getloadavg()[0]
    rnd = {"repeats": args.repeats, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, uid {os.geteuid()}, "
                      f"load {load:.1f}",
           "modes": {m: bench_mode(lim, args.repeats) for m, lim in _modes().items()}}
    data = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault(args.label, {"rounds": []})["rounds"].append(rnd)
    if args.note:
        data[args.label]["note"] = args.note
    path.write_text(json.dumps(data, indent=1) + "\n")
    (args.results / "sandbox-local.md").write_text(render(data))
    print(render(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
