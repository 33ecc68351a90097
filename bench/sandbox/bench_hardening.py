"""Sandbox latency before/after the hostile-code hardening (forged replies, episode wipes, branch isolation, fork robustness).

Measures, per backend, the median over ``--repeats`` repeats of the per-repeat median of:
  - ``run``: a warm ``session.run("x = 1")``;
  - ``fork_1mb``: ``session.fork()`` of an interpreter holding ~1 MB, then closing the fork;
  - ``fork_close``: closing that fork (its process tree is killed, the parent lives on);
  - ``timeout``: ``session.run("while True: pass", timeout_s=0.2)``, minus the 0.2 s timeout
    (the cost of interrupting the code and killing what it started);
  - ``close_acquire``: closing a root session (kill, reset, wipe, spare worker) and acquiring
    the next one.

Run:  python bench/sandbox/bench_hardening.py --label before|after [--backends docker local]
Writes bench/results/sandbox-hardening-<label>.json; with both labels present, also
bench/results/sandbox-hardening.md (the before/after table).

``--isolation`` measures the isolation chosen for branches (item 4) on ``os.fork()`` itself: a
process with ~200 MB of state forks a child that exits at once, dumpable vs non-dumpable
(``PR_SET_DUMPABLE``) and with vs without ``PR_SET_CHILD_SUBREAPER``; writes
sandbox-hardening-isolation.json (included in the table).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import warnings
from pathlib import Path

from branchgym.sandbox.limits import SandboxLimits
from branchgym.sandbox.pool import SandboxPool

RESULTS = Path(__file__).resolve().parents[1] / "results"
OPS = ("run", "fork_1mb", "fork_close", "timeout", "close_acquire")


def _once(backend: str, n: int) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pool = SandboxPool(backend, SandboxLimits(), warm=1)
    out: dict[str, list[float]] = {op: [] for op in OPS}
    with pool:
        s = pool.acquire()
        for _ in range(5):
            s.run("x = 1")
        for _ in range(n * 10):
            t = time.perf_counter()
            s.run("x = 1")
            out["run"].append(time.perf_counter() - t)
        s.run("import os\nstate = os.urandom(1 << 20)")
        for _ in range(n):
            t = time.perf_counter()
            child = s.fork()
            out["fork_1mb"].append(time.perf_counter() - t)
            t = time.perf_counter()
            child.close()
            out["fork_close"].append(time.perf_counter() - t)
        for _ in range(max(3, n // 4)):
            t = time.perf_counter()
            r = s.run("while True: pass", timeout_s=0.2)
            out["timeout"].append(time.perf_counter() - t - 0.2)
            assert r.timed_out, r
        for _ in range(max(3, n // 4)):
            t = time.perf_counter()
            s.close()
            s = pool.acquire()
            out["close_acquire"].append(time.perf_counter() - t)
        s.close()
    return {op: statistics.median(xs) * 1e3 for op, xs in out.items()}


def _isolation(n: int) -> dict[str, dict[str, float]]:
    from branchgym.sandbox.procs import set_dumpable, set_subreaper

    big = bytearray(200 << 20)  # ~200 MB of touched state, as a worker holding arrays
    for i in range(0, len(big), 4096):
        big[i] = 1

    def forks() -> list[float]:
        out = []
        for _ in range(n):
            t = time.perf_counter()
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
            out.append(time.perf_counter() - t)
        return out

    res: dict[str, dict[str, float]] = {}
    for name, dumpable in (("fork_dumpable", True), ("fork_non_dumpable", False),
                           ("fork_dumpable", True), ("fork_non_dumpable", False)):
        set_dumpable(dumpable)
        xs = forks()
        res.setdefault(name, {"runs_ms": []})["runs_ms"].append(statistics.median(xs) * 1e3)
    set_subreaper()
    res["fork_non_dumpable_subreaper"] = {"runs_ms": [statistics.median(forks()) * 1e3]}
    set_dumpable(True)
    del big
    for r in res.values():
        r["median_ms"] = statistics.median(r["runs_ms"])
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--label", required=True)
    ap.add_argument("--backends", nargs="+", default=["docker", "local"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("-n", type=int, default=40, help="forks per repeat (runs: 10x)")
    ap.add_argument("--isolation", action="store_true", help="only the fork A/B (see above)")
    args = ap.parse_args(argv)
    if args.isolation:
        iso = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "load_average": list(os.getloadavg()), "n": args.n * 5,
               "rows": _isolation(args.n * 5)}
        (RESULTS / "sandbox-hardening-isolation.json").write_text(json.dumps(iso, indent=2) + "\n")
        print(json.dumps(iso, indent=2))
        return 0
    res: dict = {"label": args.label, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                 "machine": f"{platform.node()} {platform.machine()}, Python "
                            f"{platform.python_version()}",
                 "load_average": list(os.getloadavg()), "backends": {}}
    for backend in args.backends:
        reps = [_once(backend, args.n) for _ in range(args.repeats)]
        res["backends"][backend] = {
            op: {"median_ms": statistics.median(r[op] for r in reps),
                 "repeats_ms": [r[op] for r in reps]} for op in OPS}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"sandbox-hardening-{args.label}.json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))
    before, after = (RESULTS / "sandbox-hardening-before.json"), (
        RESULTS / "sandbox-hardening-after.json")
    if before.exists() and after.exists():
        (RESULTS / "sandbox-hardening.md").write_text(
            render(json.loads(before.read_text()), json.loads(after.read_text())))
    return 0


def render(before: dict, after: dict) -> str:
    lines = ["# Sandbox latency before/after the hostile-code hardening", "",
             f"Before: {before['date']} (load {before['load_average'][0]:.1f}); after: "
             f"{after['date']} (load {after['load_average'][0]:.1f}); {after['machine']}, "
             f"2 cores shared with other jobs. Median over repeats of per-repeat medians "
             f"(`bench/sandbox/bench_hardening.py`); `timeout` is the time past the 0.2 s limit.",
             "", "| backend | operation | before ms | after ms | before repeats | after repeats |",
             "|---|---|---|---|---|---|"]
    for backend, rows in after["backends"].items():
        for op in OPS:
            b = before["backends"].get(backend, {}).get(op)
            a = rows.get(op)
            if a is None:
                continue
            fmt = lambda xs: ", ".join(f"{x:.2f}" for x in xs)  # noqa: E731
            lines.append(f"| {backend} | {op} | {b['median_ms']:.2f} | {a['median_ms']:.2f} | "
                         f"{fmt(b['repeats_ms'])} | {fmt(a['repeats_ms'])} |" if b else
                         f"| {backend} | {op} | - | {a['median_ms']:.2f} | - | "
                         f"{fmt(a['repeats_ms'])} |")
    iso_path = RESULTS / "sandbox-hardening-isolation.json"
    if iso_path.exists():
        iso = json.loads(iso_path.read_text())
        lines += ["", f"Isolation of branches (item 4) on `os.fork()` of a process holding ~200 MB "
                  f"({iso['n']} forks per run, median; {iso['date']}, load "
                  f"{iso['load_average'][0]:.1f}):", "", "| variant | median ms | runs ms |",
                  "|---|---|---|"]
        for name, r in iso["rows"].items():
            runs = ", ".join(f"{x:.2f}" for x in r["runs_ms"])
            lines.append(f"| {name} | {r['median_ms']:.2f} | {runs} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
