"""Run a comparison's jobs: one SFT warm start per seed, then one RL run per (algorithm, seed).

Layout under ``cfg.out``::

    compare.json             the config and its fingerprint (a resumed run must match it)
    sessions.json            wall time of every invocation (the comparison's total wall time)
    seed<S>/sft/result.json  the seed's SFT model (model/) and its held-out evaluation
    seed<S>/<algo>/result.json, run/metrics.jsonl
    report.md, results.json, plots/*.png

A job's ``result.json`` is written atomically (temporary file, then rename) when the job has
finished, and marks it done: a re-run skips it. A job killed before that leaves no result and
starts over (its directory is cleared). Jobs run seed by seed; with ``cfg.parallel`` > 1 they
run that many at a time in separate processes, SFTs first (an RL job waits for its seed's SFT).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from branchgym.algorithms.compare.config import FREE_FIELDS, CompareConfig
from branchgym.errors import ConfigError

__all__ = ["Job", "plan", "run_compare", "run_job", "write_json_atomic", "evaluate_heldout"]


@dataclass(frozen=True)
class Job:
    """One unit of work: ``algo == "sft"`` is the seed's warm start."""

    seed: int
    algo: str

    @property
    def name(self) -> str:
        return f"seed{self.seed}/{self.algo}"

    def dir(self, out: Path) -> Path:
        return out / f"seed{self.seed}" / self.algo

    def done(self, out: Path) -> bool:
        return (self.dir(out) / "result.json").is_file()


def plan(cfg: CompareConfig) -> list[Job]:
    """Every job, seed by seed: the SFT first, then each algorithm."""
    return [j for s in range(cfg.seeds) for j in (Job(s, "sft"), *(Job(s, a) for a in cfg.algos))]


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON so that ``path`` holds either the old or the whole new content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w") as f:
        json.dump(data, f, indent=1, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def evaluate_heldout(policy: Any, cfg: CompareConfig, *, tasks: int, samples: int, seed: int) -> dict[str, Any]:
    """``samples`` episodes (T = 1) of each of ``tasks`` held-out tasks, summarised per task.

    Sampling draws from a generator seeded with ``seed`` (the same for every algorithm at the same
    evaluation point), and the policy's own generator is restored afterwards, so evaluating does
    not change the training run.
    """
    import torch

    from branchgym.algorithms.quickstart import heldout_batch

    saved = policy._generator
    policy._generator = torch.Generator(device=policy.device).manual_seed(seed)
    t0 = time.perf_counter()
    try:
        batch = heldout_batch(policy, env=cfg.env, split=cfg.eval_split, tasks=tasks, samples=samples,
                              temperature=1.0, max_new_tokens=cfg.max_new_tokens,
                              max_response_tokens=cfg.max_response_tokens, call_limit=cfg.call_limit)
    finally:
        policy._generator = saved
    order = list(dict.fromkeys(batch.task_ids))
    solved = {t: 0 for t in order}
    for tid, r in zip(batch.task_ids, batch.rewards):
        solved[tid] += int(r >= cfg.success_reward)
    trajs = batch.trajectories
    n_solved = sum(solved.values())
    return {
        "tasks": order, "samples": samples, "successes": [solved[t] for t in order],
        "pass1": n_solved / len(trajs), "reward_mean": sum(batch.rewards) / len(trajs),
        "episodes": len(trajs), "solved": n_solved,
        "tokens": int(sum(sum(t.loss_mask) for t in trajs)),
        "tool_calls": int(sum(t.num_tool_calls for t in trajs)),
        "seconds": time.perf_counter() - t0,
    }


def _sft_job(cfg: CompareConfig, job: Job, d: Path) -> dict[str, Any]:
    from branchgym.agents import tiny
    from branchgym.agents.hf import HFPolicy
    from branchgym.algorithms.quickstart import sft_warm_start

    # the quickstart's model: small init, full multi-head attention (see quickstart.run_quickstart)
    base = tiny.build(d / "base", vocab_size=cfg.vocab_size, layers=cfg.layers, hidden=cfg.hidden, head_dim=32,
                      kv_heads=cfg.hidden // 32, intermediate=2 * cfg.hidden, seed=job.seed, init_std=0.02)
    info = sft_warm_start(base, d / "model", cfg, job.seed, env=cfg.env, call_limit=cfg.call_limit)
    info.pop("losses", None)
    policy = HFPolicy(d / "model", device="cpu", seed=job.seed)
    curve = evaluate_heldout(policy, cfg, tasks=cfg.curve_tasks, samples=cfg.curve_samples, seed=_eval_seed(job, 0))
    final = evaluate_heldout(policy, cfg, tasks=cfg.eval_tasks, samples=cfg.eval_samples, seed=_eval_seed(job, -1))
    return {"sft": info, "curve": [{"point": 0.0, "spent": 0.0, "step": 0, **_short(curve)}], "final": final}


def _eval_seed(job: Job, point: int) -> int:
    """Evaluation sampling seed: by seed and point only, so all algorithms share it (-1 = final)."""
    return 1_000_003 * (job.seed + 1) + (10_007 if point < 0 else point)


def _short(ev: dict[str, Any]) -> dict[str, Any]:
    return {k: ev[k] for k in ("pass1", "reward_mean", "episodes", "solved", "tokens", "tool_calls", "seconds")}


def _rl_job(cfg: CompareConfig, job: Job, d: Path) -> dict[str, Any]:
    from branchgym.algorithms.compare.budget import Budget
    from branchgym.algorithms.trainer import Trainer

    sft = job.dir(Path(cfg.out)).parent / "sft" / "model"
    tc = cfg.train_config(job.algo, model=str(sft), out=str(d / "run"), seed=job.seed)
    trainer = Trainer(tc, resume=False)
    budget = Budget.even(cfg.budget_kind, cfg.budget, cfg.curve_points)
    curve: list[dict[str, Any]] = []
    eval_s = 0.0

    def on_step(step: int, metrics: dict[str, float]) -> None:
        nonlocal eval_s
        crossed = budget.add(metrics)
        if crossed:
            ev = evaluate_heldout(trainer.policy, cfg, tasks=cfg.curve_tasks, samples=cfg.curve_samples,
                                  seed=_eval_seed(job, len(curve) + 1))
            eval_s += ev["seconds"]
            curve.extend({"point": p, "spent": budget.spent, "step": step, **_short(ev)} for p in crossed)

    t0 = time.perf_counter()
    try:
        trainer.run(on_step=on_step, stop=lambda: budget.exhausted)
    finally:
        trainer.close()
    train_s = time.perf_counter() - t0 - eval_s
    final = evaluate_heldout(trainer.policy, cfg, tasks=cfg.eval_tasks, samples=cfg.eval_samples,
                             seed=_eval_seed(job, -1))
    return {"steps": trainer.step, "spent": budget.spent, "budget": cfg.budget, "budget_kind": cfg.budget_kind,
            "reached_budget": budget.exhausted, "curve": curve, "final": final, "train_seconds": train_s,
            "eval_seconds": eval_s + final["seconds"], "metrics": str((d / "run" / "metrics.jsonl").relative_to(d))}


def run_job(cfg_dict: dict[str, Any], seed: int, algo: str) -> str:
    """Run one job to completion and write its ``result.json`` (a worker process's entry point)."""
    import torch

    cfg = CompareConfig(**cfg_dict)
    torch.set_num_threads(cfg.threads)
    job = Job(seed, algo)
    d = job.dir(Path(cfg.out))
    if job.done(Path(cfg.out)):
        return job.name
    shutil.rmtree(d, ignore_errors=True)  # a killed attempt's leftovers
    d.mkdir(parents=True)
    t0 = time.perf_counter()
    result = (_sft_job if algo == "sft" else _rl_job)(cfg, job, d)
    result.update({"seed": seed, "algo": algo, "seconds": time.perf_counter() - t0,
                   "fingerprint": cfg.fingerprint(), "finished": _now()})
    write_json_atomic(d / "result.json", result)
    return job.name


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _check_manifest(cfg: CompareConfig, out: Path) -> None:
    path = out / "compare.json"
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("fingerprint") != cfg.fingerprint():
            changed = sorted(k for k, v in cfg.to_dict().items()
                             if k in old.get("config", {}) and old["config"][k] != v and k not in
                             FREE_FIELDS)
            what = ", ".join(changed) or "see compare.json"
            raise ConfigError(f"{out} holds a comparison with other settings ({what}); finished jobs would "
                              "not be comparable. Use another --out, or the same settings (algos and seeds "
                              "may be added).")
    write_json_atomic(path, {"fingerprint": cfg.fingerprint(), "config": cfg.to_dict()})


class _Sessions:
    """``sessions.json``: start and wall seconds of each invocation, rewritten after every job."""

    def __init__(self, out: Path) -> None:
        self.path = out / "sessions.json"
        self.rows = json.loads(self.path.read_text()) if self.path.is_file() else []
        self.rows.append({"started": _now(), "seconds": 0.0, "jobs": 0})
        self.t0 = time.monotonic()
        self.tick(0)

    def tick(self, jobs: int) -> None:
        self.rows[-1].update(seconds=time.monotonic() - self.t0, jobs=self.rows[-1]["jobs"] + jobs)
        write_json_atomic(self.path, self.rows)


def run_compare(cfg: CompareConfig, *, log: Callable[[str], None] | None = None) -> Path:
    """Run every job not yet done, then write the report; returns the path of ``report.md``."""
    from branchgym.algorithms.compare.report import write_report

    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    with _exclusive(out):
        _check_manifest(cfg, out)
        _run_jobs(cfg, out, log)
    return write_report(out)


@contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """Hold ``out/compare.lock`` (an flock, released by the kernel even on SIGKILL): two
    comparisons in one directory would clear each other's unfinished jobs."""
    import fcntl

    with (out / "compare.lock").open("a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            raise ConfigError(f"another `branchgym compare` is running in {out} (pid {f.read().strip() or '?'}); "
                              "wait for it to finish or use another --out.") from None
        f.truncate(0)
        f.write(str(os.getpid()))
        f.flush()
        yield


def _run_jobs(cfg: CompareConfig, out: Path, log: Callable[[str], None]) -> None:
    sessions = _Sessions(out)
    jobs = plan(cfg)
    todo = [j for j in jobs if not j.done(out)]
    log(f"compare: {len(jobs) - len(todo)} of {len(jobs)} jobs already done in {out}; {len(todo)} to run")
    cfg_dict = cfg.to_dict()
    if cfg.parallel == 1:
        for i, job in enumerate(todo):
            log(f"compare: [{i + 1}/{len(todo)}] {job.name} ...")
            t0 = time.monotonic()
            run_job(cfg_dict, job.seed, job.algo)
            sessions.tick(1)
            log(f"compare: {job.name} done in {time.monotonic() - t0:.0f} s")
    else:
        _run_parallel(cfg, cfg_dict, todo, out, sessions, log)


def _run_parallel(cfg: CompareConfig, cfg_dict: dict[str, Any], todo: list[Job], out: Path, sessions: _Sessions,
                  log: Callable[[str], None]) -> None:
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    pending = list(todo)
    running: dict[Any, Job] = {}
    with ProcessPoolExecutor(max_workers=cfg.parallel, mp_context=mp.get_context("spawn")) as pool:
        while pending or running:
            while len(running) < cfg.parallel:
                # an SFT unlocks a seed's RL jobs, so SFTs go first: no slot idles waiting for one
                ready = [j for j in pending if j.algo == "sft"] or \
                    [j for j in pending if Job(j.seed, "sft").done(out)]
                if not ready:
                    break
                job = ready[0]
                pending.remove(job)
                log(f"compare: start {job.name}")
                running[pool.submit(run_job, cfg_dict, job.seed, job.algo)] = job
            if not running:  # only RL jobs whose seed's SFT is missing: cannot happen unless it failed
                raise RuntimeError(f"compare: jobs {[j.name for j in pending]} wait for an SFT that is not running")
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in done:
                job = running.pop(fut)
                try:
                    fut.result()
                except BaseException:
                    log(f"compare: {job.name} failed; finished jobs are kept, re-run to continue")
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
                sessions.tick(1)
                log(f"compare: {job.name} done")
