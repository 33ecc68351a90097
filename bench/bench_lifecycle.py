"""Env lifecycle cost with the python tool: start, step, clone, close and many at once.

Not a test: prints a table and writes ``bench/results/lifecycle.{json,md}``. Everything is
measured in one interleaved run against a plain ``subprocess.run([python3, "-c", code])`` timed in
the same run (the design GEM, SkyRL-gym and ARPO's released code use for their python tool), so
the ratios stay meaningful on a shared, noisy machine. Medians over ``--repeats``.

Cases (CodeExec-Offline-v0, ``sandbox=`` the backend given):
  - ``python_c``: one ``python3 -c`` subprocess;
  - ``step``: a python step in a running episode (the warm path);
  - ``episode_start``: ``reset()`` after a finished episode + the first python step;
  - ``clone_close``: close a clone (its sandbox forked) while its parent episode lives;
  - ``vec_round_{sync,async}``: reset + one python step on every sub-env of ``make_vec(n)``;
  - ``many``: 64 episodes x 4 python steps in one process, per call, against ``python -c`` per call.

Targets (docs: the rollout engine's lifecycle contract): episode start <= 1/10 of a ``python -c``;
closing a clone <= 50 ms; sync vector env within 2x of async; many-episode throughput >= 5x a
``python -c``-per-call design.

Run: ``python bench/bench_lifecycle.py [--backend local|docker] [--repeats 15] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym

from branchgym.envs import clone, make_vec

RESULTS = Path(__file__).resolve().parent / "results"
ENV_ID = "CodeExec-Offline-v0"
ACTION = "<python>x = 6 * 7\nprint(x)</python>"
TARGETS = {
    "episode_start / python_c": ("<=", 0.1),
    "clone_close_ms": ("<=", 50.0),
    "vec_round sync / async": ("<=", 2.0),
    "many: python_c per call / branchgym per call": (">=", 5.0),
}


def _python_c() -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "x = 6 * 7\nprint(x)"], check=True, capture_output=True)
    return time.perf_counter() - t


def _timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _make(backend: str) -> gym.Env:
    return gym.make(ENV_ID, split="test", sandbox=backend)


def _episode_start(env: gym.Env, i: int) -> float:
    env.step(ACTION)  # an episode that used the sandbox, then a new one on the same env
    return _timed(lambda: (env.reset(seed=i), env.step(ACTION)))


def _clone_close(env: gym.Env) -> float:
    child = clone(env)
    child.step(ACTION)  # the fork has run code of its own
    return _timed(child.close)


def _vec_round(vec: Any, n: int, seed: int) -> float:
    """A new episode on every sub-env and one python step each (what a GRPO group does)."""
    return _timed(lambda: (vec.reset(seed=seed), vec.step([ACTION] * n)))


def _many(backend: str, episodes: int, steps: int) -> float:
    """Seconds per python call over ``episodes`` x ``steps`` in one process (envs reused as a
    trainer reuses them: one env per trajectory slot, reset per episode)."""
    slots = [_make(backend) for _ in range(8)]
    t = time.perf_counter()
    for e in range(episodes):
        env = slots[e % len(slots)]
        env.reset(seed=e)
        for _ in range(steps):
            env.step(ACTION)
    dt = time.perf_counter() - t
    for env in slots:
        env.close()
    return dt / (episodes * steps)


def _med_ms(xs: list[float]) -> float:
    return statistics.median(xs) * 1e3


def run(backend: str, repeats: int, n_vec: int, episodes: int) -> dict[str, Any]:
    samples: dict[str, list[float]] = {k: [] for k in
                                       ("python_c", "step", "episode_start", "clone_close",
                                        "vec_round_sync", "vec_round_async")}
    env = _make(backend)
    env.reset(seed=0)
    env.step(ACTION)
    vecs = {m: make_vec(ENV_ID, n_vec, mode=m, split="test", sandbox=backend)
            for m in ("sync", "async")}
    for vec in vecs.values():
        vec.reset(seed=0)
        vec.step([ACTION] * n_vec)
    for i in range(repeats):  # interleaved, so load changes hit every case alike
        samples["python_c"].append(_python_c())
        samples["step"].append(_timed(lambda: env.step(ACTION)))
        samples["episode_start"].append(_episode_start(env, i + 1))
        samples["clone_close"].append(_clone_close(env))
        for m, vec in vecs.items():
            samples[f"vec_round_{m}"].append(_vec_round(vec, n_vec, i + 1))
    env.close()
    for vec in vecs.values():
        vec.close()
    per_call = _many(backend, episodes, 4)
    pc = _med_ms(samples["python_c"])
    med = {k: _med_ms(v) for k, v in samples.items()}
    ratios = {
        "episode_start / python_c": med["episode_start"] / pc,
        "clone_close_ms": med["clone_close"],
        "vec_round sync / async": med["vec_round_sync"] / med["vec_round_async"],
        "many: python_c per call / branchgym per call": pc / (per_call * 1e3),
    }
    return {"backend": backend, "repeats": repeats, "n_vec": n_vec, "episodes": episodes,
            "median_ms": med, "many_per_call_ms": per_call * 1e3, "ratios": ratios}


def _markdown(res: dict[str, Any]) -> str:
    lines = [f"# Env lifecycle, python tool, `{res['backend']}` backend",
             "",
             f"{ENV_ID}; medians over {res['repeats']} interleaved repeats; vector envs of "
             f"{res['n_vec']}; 'many' = {res['episodes']} episodes x 4 python steps in one "
             f"process. Machine: {platform.machine()}, {platform.python_version()}.",
             "", "| case | median ms |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in res["median_ms"].items()]
    lines += [f"| many (per call) | {res['many_per_call_ms']:.1f} |", "",
              "| ratio | value | target | met |", "|---|---|---|---|"]
    for k, v in res["ratios"].items():
        op, target = TARGETS[k]
        met = v <= target if op == "<=" else v >= target
        lines.append(f"| {k} | {v:.2f} | {op} {target:g} | {'yes' if met else 'no'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="local", choices=["local", "docker"])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--n-vec", type=int, default=4)
    ap.add_argument("--episodes", type=int, default=64)
    ap.add_argument("--quick", action="store_true", help="3 repeats, 8 episodes")
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    if a.quick:
        a.repeats, a.episodes = 3, 8
    warnings.simplefilter("ignore")
    res = run(a.backend, a.repeats, a.n_vec, a.episodes)
    md = _markdown(res)
    print(md)
    a.out.mkdir(parents=True, exist_ok=True)
    stem = f"lifecycle-{a.backend}"
    (a.out / f"{stem}.json").write_text(json.dumps(res, indent=2) + "\n")
    (a.out / f"{stem}.md").write_text(md)


if __name__ == "__main__":
    main()
