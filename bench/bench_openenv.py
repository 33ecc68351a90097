"""``branchgym serve`` on loopback vs stepping the env in-process (not a test).

Usage: ``.venv-openenv/bin/python bench/bench_openenv.py [--steps 300] [--repeats 5]
[--sessions 16] [--clones 20] [--no-docker] [--out bench/results]``.
Writes ``openenv.json`` and ``openenv.md``:

- per-step latency of the offline search env (``WebSearch-Offline-v0``, test split): in-process
  ``env.step`` vs one remote session (OpenEnv's ``GenericEnvClient``, sync); the overhead is the
  difference of the medians (target: at most 3 ms);
- throughput with ``--sessions`` concurrent remote sessions (async OpenEnv clients in one event
  loop, the server in another process; target: at least 300 steps/s on the 2-core machine);
- ``clone()`` latency: in-process ``branchgym.envs.clone`` vs a remote clone (clone frame + the new
  session's WebSocket), for the search env and, with Docker, the python env after one python call
  (the sandbox session forks on the server in both cases).

Medians over ``--repeats`` runs. The machine is shared with other jobs, so numbers are noisy;
client and server share its CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integrations" / "openenv"))
from openenv_server import start_server  # noqa: E402

ACTIONS = ("<search>river founder birthplace</search>", "<search>capital city</search>",
           "<search>industries founder</search>")


def _ms(times: list[float]) -> float:
    return statistics.median(times) * 1e3


def local_steps(env: Any, steps: int) -> list[float]:
    times: list[float] = []
    env.reset(options={"index": 0})
    for i in range(steps):
        t0 = time.perf_counter()
        _, _, term, trunc, _ = env.step(ACTIONS[i % len(ACTIONS)])
        times.append(time.perf_counter() - t0)
        if term or trunc:
            env.reset(options={"index": (i + 1) % 50})
    return times


def remote_steps(url: str, steps: int) -> list[float]:
    from openenv.core.generic_client import GenericEnvClient

    times: list[float] = []
    with GenericEnvClient(base_url=url).sync() as c:
        c.reset(index=0)
        for i in range(steps):
            t0 = time.perf_counter()
            r = c.step({"text": ACTIONS[i % len(ACTIONS)]})
            times.append(time.perf_counter() - t0)
            if r.done:
                c.reset(index=(i + 1) % 50)
    return times


async def _session(url: str, steps: int, index: int) -> int:
    from openenv.core.generic_client import GenericEnvClient

    client = GenericEnvClient(base_url=url)
    await client.connect()
    try:
        await client.reset(index=index)
        for i in range(steps):
            r = await client.step({"text": ACTIONS[i % len(ACTIONS)]})
            if r.done:
                await client.reset(index=index)
    finally:
        await client.close()
    return steps


async def _throughput(url: str, sessions: int, steps: int) -> float:
    from openenv.core.generic_client import GenericEnvClient

    clients = [GenericEnvClient(base_url=url) for _ in range(sessions)]
    await asyncio.gather(*(c.connect() for c in clients))
    await asyncio.gather(*(c.reset(index=i) for i, c in enumerate(clients)))

    async def run(i: int, c: Any) -> None:
        for k in range(steps):
            r = await c.step({"text": ACTIONS[k % len(ACTIONS)]})
            if r.done:
                await c.reset(index=i)

    t0 = time.perf_counter()
    await asyncio.gather(*(run(i, c) for i, c in enumerate(clients)))
    elapsed = time.perf_counter() - t0
    await asyncio.gather(*(c.close() for c in clients))
    return sessions * steps / elapsed


def clone_latency(url: str, make: Any, first_action: str, clones: int) -> dict[str, float]:
    from branchgym.envs.clone import clone
    from branchgym.integrations.openenv import BranchEnvClient

    env = make()
    env.reset(options={"index": 0})
    env.step(first_action)
    local = []
    for _ in range(clones):
        t0 = time.perf_counter()
        twin = clone(env)
        local.append(time.perf_counter() - t0)
        twin.close()
    env.close()
    remote = []
    parent = BranchEnvClient(base_url=url, message_timeout_s=120).sync()
    parent.connect()
    parent.reset(index=0)
    parent.step(first_action)
    for _ in range(clones):
        t0 = time.perf_counter()
        child = parent.clone()  # clone frame, then the new session's WebSocket
        remote.append(time.perf_counter() - t0)
        child.close()
    parent.close()
    return {"in_process_ms": _ms(local), "remote_ms": _ms(remote)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sessions", type=int, default=16)
    ap.add_argument("--clones", type=int, default=20)
    ap.add_argument("--no-docker", action="store_true")
    ap.add_argument("--out", default="bench/results")
    args = ap.parse_args()

    res: dict[str, Any] = {"machine": f"{platform.machine()}, {subprocess.os.cpu_count()} CPUs "
                           "(shared with other jobs: noisy)", "steps": args.steps,
                           "repeats": args.repeats, "sessions": args.sessions}
    server = start_server("WebSearch-Offline-v0", "split=test", max_sessions=args.sessions + 4)
    try:
        env = gym.make("WebSearch-Offline-v0", split="test")
        local_runs, remote_runs, thr = [], [], []
        for _ in range(args.repeats):
            local_runs.append(_ms(local_steps(env, args.steps)))
            remote_runs.append(_ms(remote_steps(server.url, args.steps)))
            thr.append(asyncio.run(_throughput(server.url, args.sessions, args.steps // 2)))
        env.close()
        res["step"] = {"in_process_ms": statistics.median(local_runs),
                       "remote_ms": statistics.median(remote_runs),
                       "runs_in_process_ms": local_runs, "runs_remote_ms": remote_runs}
        res["step"]["overhead_ms"] = res["step"]["remote_ms"] - res["step"]["in_process_ms"]
        res["throughput"] = {"steps_per_s": statistics.median(thr), "runs": thr}
        res["clone_search"] = clone_latency(
            server.url, lambda: gym.make("WebSearch-Offline-v0", split="test"), ACTIONS[0],
            args.clones)
    finally:
        server.stop()
    if not args.no_docker:
        server = start_server("CodeExec-Offline-v0", "split=smoke", "sandbox=docker")
        try:
            res["clone_python_docker"] = clone_latency(
                server.url,
                lambda: gym.make("CodeExec-Offline-v0", split="smoke", sandbox="docker"),
                "<python>x = [i * i for i in range(1000)]\nprint(len(x))</python>", args.clones)
        finally:
            server.stop()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "openenv.json").write_text(json.dumps(res, indent=2) + "\n")
    s, t = res["step"], res["throughput"]
    lines = [
        "# `branchgym serve` (OpenEnv, loopback) vs in-process",
        "",
        f"Machine: {res['machine']}. Client and server share the CPUs. Medians of "
        f"{args.repeats} runs of {args.steps} steps (`bench/bench_openenv.py`).",
        "",
        "| measure | in-process | remote (loopback) | target |",
        "|---|---|---|---|",
        f"| search env, ms per step | {s['in_process_ms']:.3f} | {s['remote_ms']:.3f} "
        f"(overhead {s['overhead_ms']:.2f} ms) | overhead ≤ 3 ms |",
        f"| search env, {args.sessions} concurrent sessions, steps/s | | "
        f"{t['steps_per_s']:.0f} | ≥ 300 |",
        f"| clone(), search env, ms | {res['clone_search']['in_process_ms']:.2f} | "
        f"{res['clone_search']['remote_ms']:.2f} | |",
    ]
    if "clone_python_docker" in res:
        c = res["clone_python_docker"]
        lines.append(f"| clone(), python env (Docker sandbox fork), ms | {c['in_process_ms']:.1f} "
                     f"| {c['remote_ms']:.1f} | |")
    lines += ["", "Remote steps use OpenEnv's own `GenericEnvClient` (sync for latency, async in "
              "one event loop for throughput); remote clones use `BranchEnvClient.clone()` (the "
              "clone frame plus the WebSocket of the new session)."]
    (out / "openenv.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
