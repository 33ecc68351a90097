"""``branchgym quickstart``: tiny model → SFT on oracle trajectories → GRPO and AEPO → report.

On a 2-core CPU in about 15 minutes (one seed), per seed:

1. build the tiny model (:func:`branchgym.agents.tiny.build`: random init, local tokenizer);
2. warm-start it with supervised fine-tuning on ``OracleAgent`` episodes of the task
   (``task``: the one-call lookup of :mod:`branchgym.algorithms.quickstart_task`, or the two-call
   chain of :mod:`branchgym.algorithms.chain_task`; loss on action tokens only, tool results masked),
   stopped at the first validation check whose accuracy reaches ``sft_target_accuracy``: the
   tiny model learns to copy in a sudden jump whose timing varies with the seed, so a fixed
   step count leaves some seeds near 0.35 and others near 1.0, with nothing left for RL;
3. train the SFT model further with GRPO (flat rollouts) and, separately, with AEPO (tree
   rollouts that clone the env at high-entropy tool-call steps);
4. evaluate SFT, GRPO and AEPO on the held-out test split (keys never seen in training), and
   every ``eval_every`` RL steps on a subset of it (the learning curves);
5. write ``report.md``, ``results.json`` and PNG plots under ``out``.

The learning claim (RL beats SFT by more than the spread over seeds) is measured with
``--seeds 3``; the report states whether it held, with every seed's numbers.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from branchgym.errors import ConfigError
from branchgym.fields import ranged, validate

__all__ = ["QuickstartConfig", "QuickstartTask", "QUICKSTART_TASKS", "run_quickstart", "evaluate_policy",
           "heldout_batch", "sft_warm_start"]

_ENV = "branchgym.algorithms.quickstart_task:make_lookup_env"


@dataclass(frozen=True)
class QuickstartTask:
    """A task the quickstart can train on: its env factory and tool-call limit."""

    env: str
    """``"module:factory"`` taking ``split`` (train / validation / test)."""
    call_limit: int
    """ARPO's per-trajectory tool-call limit in rollouts: the calls the task needs, plus one."""
    summary: str
    """one line for the report."""


QUICKSTART_TASKS: dict[str, QuickstartTask] = {
    "lookup": QuickstartTask(_ENV, 2, "look an item's code up with `<search>` and copy it into `\\boxed{}` "
                                      "(one call; `branchgym.algorithms.quickstart_task`)"),
    "chain": QuickstartTask("branchgym.algorithms.chain_task:make_chain_env", 3,
                            "search an item, read the item its page links to, search that one and copy its code "
                            "into `\\boxed{}` (two calls; `branchgym.algorithms.chain_task`)"),
}
"""``QuickstartConfig.task`` → task. Both have held-out test keys never seen in training."""


@dataclass(frozen=True)
class QuickstartConfig:
    """Sizes and budgets of the quickstart (defaults: one seed in ≤15 min on 2 CPU cores)."""

    out: str = ranged("runs/quickstart", check=bool, allowed="a non-empty directory path")
    task: str = ranged("lookup", choices=lambda: tuple(QUICKSTART_TASKS))
    """``lookup`` (one search call) or ``chain`` (two: the second call's key is read from the first result)."""
    seeds: int = ranged(1, ge=1, hint="the learning claim uses 3")
    minutes_budget: float = ranged(15.0, gt=0.0)
    """wall-clock budget; RL phases stop early (and say so) to keep within it."""
    hidden: int = ranged(128, ge=32, check=lambda h: h % 32 == 0, allowed="a multiple of the head size 32")
    layers: int = ranged(2, ge=1)
    vocab_size: int = ranged(1024, ge=300, hint="byte-level BPE needs 256 byte tokens plus the tags")
    sft_steps: int = ranged(600, ge=0)
    """upper bound on SFT steps (early stopping on ``sft_target_accuracy`` usually ends it sooner)."""
    sft_batch_size: int = ranged(32, ge=1)
    sft_lr: float = ranged(3e-3, gt=0.0, le=1.0)
    sft_target_accuracy: float = ranged(0.5, ge=0.0)
    """SFT stops once validation accuracy (T = 1) reaches this: an imperfect start RL can improve,
    at the same level for every seed. Set above 1 to always run ``sft_steps``."""
    sft_eval_every: int = ranged(20, ge=1, hint="SFT steps between checks")
    sft_eval_every_close: int = ranged(5, ge=1, hint="SFT steps between checks")
    """check this often once validation accuracy passes a quarter of the target: the jump from
    ~0.1 to ~0.7 takes only a few dozen steps."""
    sft_eval_samples: int = ranged(2, ge=1)
    """samples per validation task at each SFT check (64 tasks)."""
    rl_steps: int = ranged(60, ge=1)
    rl_lr: float = ranged(2e-4, gt=0.0, le=1.0)
    prompts_per_step: int = ranged(8, ge=1)
    group_size: int = ranged(8, ge=1)
    """G for GRPO, and the tree size n for AEPO (equal trajectory counts)."""
    aepo_initial: int = ranged(4, ge=1)
    """N global trajectories per prompt for AEPO."""
    max_new_tokens: int = ranged(32, ge=1)
    max_response_tokens: int = ranged(128, ge=1)
    eval_tasks: int = ranged(100, ge=1)
    eval_samples: int = ranged(4, ge=1)
    """samples per held-out task at T = 1 (pass@1 is their mean); greedy is reported too."""
    eval_every: int = ranged(10, ge=1, hint="RL steps between held-out checks")
    """held-out accuracy (T = 1) is also measured every this many RL steps, at step 0 (the SFT model)
    and at the last step: the report's learning curves. Their cost counts against the budget."""
    curve_tasks: int = ranged(50, ge=1)
    """held-out tasks per curve point (the first ones of the test split; a subset keeps it cheap)."""
    curve_samples: int = ranged(2, ge=1)
    """samples per task per curve point."""
    threads: int = ranged(1, ge=1)
    """torch threads; 1 avoids OpenMP spin-waits fighting the env and sandbox for 2 cores."""
    sft_model: str | None = ranged(None, check=bool, allowed="a model directory")
    """reuse this SFT model for every seed (skip build + SFT); then only the RL phases and the
    evaluation sampling vary with the seed, and the report says so."""

    def __post_init__(self) -> None:
        validate(self)
        if not self.aepo_initial <= self.group_size:
            raise ConfigError(f"aepo_initial={self.aepo_initial!r} must be in [1, group_size={self.group_size}].")
        for algo in ("grpo", "aepo"):  # the RL phases' configs, checked now rather than after SFT
            try:
                self.train_config(algo, model="", out=self.out, seed=0)
            except ConfigError as e:
                raise ConfigError(f"QuickstartConfig gives a bad {algo} config: {e}") from None

    def train_config(self, algo: str, *, model: str, out: str, seed: int) -> Any:
        """The :class:`~branchgym.algorithms.train_config.TrainConfig` of an RL phase."""
        from branchgym.algorithms.train_config import preset

        extra: dict[str, Any] = {}
        if algo == "aepo":
            extra["branching"] = {"n": self.group_size, "initial": self.aepo_initial, "z_extra": 1,
                                  "penalty": 0.05, "rule": "aepo_code", "weight": 0.2}
        return preset(
            algo, env=QUICKSTART_TASKS[self.task].env, model=model, out=out, seed=seed, steps=self.rl_steps,
            prompts_per_step=self.prompts_per_step, group_size=self.group_size, max_new_tokens=self.max_new_tokens,
            max_response_tokens=self.max_response_tokens, lr=self.rl_lr,
            call_limit=QUICKSTART_TASKS[self.task].call_limit, checkpoint_every=10**6,
            entropy_source="exact", threads=self.threads, tensorboard=True, progress=True, micro_batch_size=32,
            **extra,
        )

    def replace(self, **changes: Any) -> QuickstartConfig:
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown quickstart option(s) {sorted(unknown)}; fields: "
                              f"{sorted(f.name for f in dataclasses.fields(self))}.")
        return dataclasses.replace(self, **changes)

    @classmethod
    def quick(cls) -> QuickstartConfig:
        """A minute-sized run for CI: the whole pipeline, too short to learn much."""
        return cls(hidden=64, sft_steps=20, sft_batch_size=8, sft_eval_every=10, sft_eval_samples=1, rl_steps=2, prompts_per_step=2, group_size=4,
                   aepo_initial=2, eval_tasks=6, eval_samples=1, eval_every=1, curve_tasks=6, curve_samples=1,
                   minutes_budget=5.0)


def heldout_batch(policy: Any, *, env: str = _ENV, split: str = "test", tasks: int = 100, samples: int = 4,
                  temperature: float = 1.0, max_new_tokens: int = 32, max_response_tokens: int = 128,
                  call_limit: int | None = 2) -> Any:
    """``samples`` episodes of each of the first ``tasks`` tasks of ``split`` (a ``RolloutBatch``).

    ``env`` is a Gymnasium id or ``"module:factory"`` taking ``split``; ``policy`` a loaded
    :class:`~branchgym.agents.hf.HFPolicy` (its own generator draws the samples).
    """
    from branchgym.agents.policy import SamplingParams
    from branchgym.algorithms.rollout import flat_rollout
    from branchgym.algorithms.trainer import make_env_factory

    make = make_env_factory(env, {}, split)
    probe = make()
    try:
        ids = [t.id for t in probe.unwrapped.tasks][:tasks]
    finally:
        probe.close()
    params = SamplingParams(max_new_tokens=max_new_tokens, temperature=temperature)
    return flat_rollout(make, policy, ids, params, group_size=samples, max_response_tokens=max_response_tokens,
                        call_limit=call_limit)


def evaluate_policy(model: str | Path | Any, *, split: str = "test", tasks: int = 100, samples: int = 4,
                    max_new_tokens: int = 32, max_response_tokens: int = 128, seed: int = 0,
                    greedy: bool = True, env: str = _ENV, call_limit: int | None = 2) -> dict[str, float]:
    """Accuracy on ``split`` of ``env``: mean reward at T = 1 over ``samples`` per task, and greedy.

    ``model`` is a model directory or a loaded :class:`~branchgym.agents.hf.HFPolicy`.
    """
    from branchgym.agents.hf import HFPolicy

    policy = model if isinstance(model, HFPolicy) else HFPolicy(model, device="cpu", seed=seed)
    out = {}
    modes = (("sampled", 1.0, samples), ("greedy", 0.0, 1)) if greedy else (("sampled", 1.0, samples),)
    for name, temp, n in modes:
        batch = heldout_batch(policy, env=env, split=split, tasks=tasks, samples=n, temperature=temp,
                              max_new_tokens=max_new_tokens, max_response_tokens=max_response_tokens,
                              call_limit=call_limit)
        out[f"{name}_accuracy"] = sum(batch.rewards) / len(batch)
        out[f"{name}_tool_calls"] = sum(t.num_tool_calls for t in batch.trajectories) / len(batch)
    return out


def _curve_point(policy: Any, cfg: QuickstartConfig, step: int) -> dict[str, float]:
    """Held-out accuracy (T = 1) of ``policy`` on the first ``curve_tasks`` test tasks."""
    task = QUICKSTART_TASKS[cfg.task]
    t0 = time.perf_counter()
    acc = evaluate_policy(policy, tasks=cfg.curve_tasks, samples=cfg.curve_samples, greedy=False, env=task.env,
                          call_limit=task.call_limit, max_new_tokens=cfg.max_new_tokens,
                          max_response_tokens=cfg.max_response_tokens)
    return {"step": step, "accuracy": acc["sampled_accuracy"], "tool_calls": acc["sampled_tool_calls"],
            "seconds": time.perf_counter() - t0}


def _rl(algo: str, model: Path, out: Path, cfg: QuickstartConfig, seed: int, deadline: float,
        start_point: dict[str, float]) -> dict[str, Any]:
    """One RL phase; its held-out curve starts at ``start_point`` (the SFT model's, step 0)."""
    from branchgym.agents.hf import HFPolicy
    from branchgym.algorithms.trainer import Trainer

    tc = cfg.train_config(algo, model=str(model), out=str(out), seed=seed)
    shutil.rmtree(out, ignore_errors=True)
    trainer = Trainer(tc, resume=False)
    # Same weights, its own sampling generator: the checks leave the training run's draws unchanged.
    probe = HFPolicy(trainer.model, trainer.policy.tokenizer, device=str(trainer.policy.device), seed=seed + 1)
    curve = [dict(start_point)]

    def on_step(step: int, _metrics: dict[str, float]) -> None:
        if step % cfg.eval_every == 0:
            curve.append(_curve_point(probe, cfg, step))

    t0 = time.perf_counter()
    try:
        trainer.run(on_step=on_step, stop=lambda: time.monotonic() > deadline)
        if curve[-1]["step"] != trainer.step:  # the last step (a budget stop or rl_steps % eval_every)
            curve.append(_curve_point(probe, cfg, trainer.step))
    finally:
        trainer.close()
    curve_s = sum(p["seconds"] for p in curve[1:])
    return {"steps": trainer.step, "seconds": time.perf_counter() - t0 - curve_s, "model": str(out / "final"),
            "curve": curve, "curve_seconds": curve_s}


def sft_warm_start(base: Path, out: Path, cfg: Any, seed: int, *, env: str = _ENV,
                   call_limit: int | None = 2) -> dict[str, Any]:
    """SFT of the model at ``base`` on oracle episodes of ``env``'s train split, saved at ``out``.

    ``cfg`` holds the ``sft_*``, ``max_new_tokens`` and ``max_response_tokens`` fields
    (:class:`QuickstartConfig`, or the comparison's config); training stops at the first check
    whose sampled accuracy on the ``validation`` split reaches ``cfg.sft_target_accuracy``.
    """
    import torch

    from branchgym.agents.hf import HFPolicy
    from branchgym.algorithms.sft import SFTConfig, oracle_examples, sft_train
    from branchgym.algorithms.trainer import make_env_factory

    torch.manual_seed(seed)
    policy = HFPolicy(base, device="cpu", seed=seed)
    make_train = make_env_factory(env, {}, "train")
    probe = make_train()
    try:
        train_ids = [t.id for t in probe.unwrapped.tasks]
    finally:
        probe.close()
    examples = oracle_examples(make_train, policy.tokenizer, train_ids)
    checks: list[dict[str, float]] = []

    def check(step: int, loss: float) -> bool:
        close = bool(checks) and checks[-1]["validation_accuracy"] >= cfg.sft_target_accuracy / 4
        if (step + 1) % (cfg.sft_eval_every_close if close else cfg.sft_eval_every):
            return False
        acc = evaluate_policy(policy, split="validation", samples=cfg.sft_eval_samples, seed=seed, greedy=False,
                              max_new_tokens=cfg.max_new_tokens, max_response_tokens=cfg.max_response_tokens,
                              env=env, call_limit=call_limit)
        checks.append({"step": step + 1, "loss": loss, "validation_accuracy": acc["sampled_accuracy"]})
        return acc["sampled_accuracy"] >= cfg.sft_target_accuracy

    t0 = time.perf_counter()
    losses = sft_train(policy.model, examples, SFTConfig(steps=cfg.sft_steps, batch_size=cfg.sft_batch_size,
                                                         lr=cfg.sft_lr, seed=seed), pad_id=policy.pad_token_id,
                       on_step=check)
    policy.model.save_pretrained(out)
    policy.tokenizer.save_pretrained(out)
    return {"examples": len(examples), "steps": len(losses), "loss_first": losses[0] if losses else None,
            "loss_last": losses[-1] if losses else None, "seconds": time.perf_counter() - t0, "losses": losses,
            "checks": checks,
            "stopped_early": bool(checks) and checks[-1]["validation_accuracy"] >= cfg.sft_target_accuracy}


def run_quickstart(cfg: QuickstartConfig) -> Path:
    """Run the whole pipeline for ``cfg.seeds`` seeds; returns the path of ``report.md``."""
    import torch

    from branchgym.agents import tiny
    from branchgym.agents.hf import HFPolicy
    from branchgym.algorithms.quickstart_report import write_report

    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    budget_s = cfg.minutes_budget * 60.0
    task = QUICKSTART_TASKS[cfg.task]
    results: dict[str, Any] = {"config": dataclasses.asdict(cfg), "task": task.summary, "seeds": {}}
    for i in range(cfg.seeds):
        seed = i
        sdir = out / f"seed{seed}"
        seed_start = time.monotonic()
        seed_end = start + budget_s * (i + 1) / cfg.seeds
        r: dict[str, Any] = {}
        # Small init (0.02) and full multi-head attention: the copy heads form within a few
        # hundred SFT steps (tiny's default init of 0.2 learned no copying in 600 steps).
        if cfg.sft_model is None:
            base = tiny.build(sdir / "base", vocab_size=cfg.vocab_size, layers=cfg.layers, hidden=cfg.hidden,
                              head_dim=32, kv_heads=cfg.hidden // 32, intermediate=2 * cfg.hidden, seed=seed,
                              init_std=0.02)
            r["sft"] = sft_warm_start(base, sdir / "sft", cfg, seed, env=task.env, call_limit=task.call_limit)
            sft_dir = sdir / "sft"
        else:
            sft_dir = Path(cfg.sft_model)
            if not (sft_dir / "config.json").exists():
                raise ConfigError(f"sft_model={cfg.sft_model!r} is not a model directory (no config.json).")
            r["sft"] = {"seconds": 0.0, "shared": str(sft_dir)}
        start_point = _curve_point(HFPolicy(sft_dir, device="cpu", seed=seed + 1), cfg, 0)
        # Whatever time is left for this seed goes to RL (half each) after reserving evaluation.
        left = seed_end - time.monotonic()
        rl_end_grpo = time.monotonic() + 0.42 * left
        r["grpo"] = _rl("grpo", sft_dir, sdir / "grpo", cfg, seed, rl_end_grpo, start_point)
        left = seed_end - time.monotonic()
        r["aepo"] = _rl("aepo", sft_dir, sdir / "aepo", cfg, seed, time.monotonic() + 0.72 * left, start_point)
        r["eval"] = {
            name: evaluate_policy(path, tasks=cfg.eval_tasks, samples=cfg.eval_samples, seed=seed,
                                  max_new_tokens=cfg.max_new_tokens, max_response_tokens=cfg.max_response_tokens,
                                  env=task.env, call_limit=task.call_limit)
            for name, path in (("sft", sft_dir), ("grpo", sdir / "grpo" / "final"), ("aepo", sdir / "aepo" / "final"))
        }
        r["seconds"] = time.monotonic() - seed_start
        results["seeds"][str(seed)] = r
        (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    results["seconds"] = time.monotonic() - start
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    return write_report(results, out)
