"""The RL trainer behind ``branchgym train``: rollout, advantage, clipped-loss update, metrics.

One step (docs/algorithms.md):

1. draw ``prompts_per_step`` task ids with the trainer's task sampler;
2. roll out: ``flat_rollout`` (G per prompt) or ``tree_rollout`` (ARPO/AEPO; AEPO's optional
   pre-monitoring gives m per prompt); rewards get DAPO's overlong shaping if configured, and
   DAPO's dynamic sampling drops all-equal groups;
3. recompute ``old_logp`` (and the old-policy token entropies) with the trainable model, and
   ``ref_logp`` with the frozen reference when there is one;
4. ``ADVANTAGES.get(cfg.advantage)(AdvantageInputs(...), **cfg.advantage_params)``;
5. ``ppo_epochs`` × ``mini_batches`` optimizer steps of
   ``POLICY_LOSSES.get(cfg.loss)(LossInputs(...), **cfg.loss_params)`` with gradient
   accumulation over micro-batches (each micro-batch loss weighted by its share of rows, as the
   verl used by ARPO/AEPO does), gradient clipping and the LR schedule;
6. sync weights to a vLLM rollout engine if one is used; log metrics; checkpoint.

Checkpoints (``checkpoint.py``) hold weights, optimizer, scheduler and every RNG, so a killed
run resumes from its last checkpoint and ends with the same parameters as an uninterrupted one.
"""

from __future__ import annotations

import importlib
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from branchgym.algorithms.train_config import TrainConfig
from branchgym.errors import ConfigError

__all__ = ["Trainer", "make_env_factory", "train"]


def make_env_factory(env: str, kwargs: dict[str, Any], split: str) -> Callable[[], Any]:
    """``env`` is a Gymnasium id or ``"module:factory"``; returns ``() -> env`` on ``split``."""
    kw = {**kwargs, "split": split}
    if ":" in env:
        module, _, attr = env.partition(":")
        try:
            fn = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"env factory {env!r} cannot be loaded ({e}); give 'package.module:function'.") from e
        return lambda: fn(**kw)
    import gymnasium as gym

    if env not in gym.registry:
        import difflib

        close = difflib.get_close_matches(env, list(gym.registry), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown env id {env!r}.{hint} List them with `branchgym list`.")
    return lambda: gym.make(env, **kw)


def _lr_lambda(cfg: TrainConfig) -> Callable[[int], float]:
    total = cfg.steps * cfg.ppo_epochs * cfg.mini_batches

    def f(i: int) -> float:
        if cfg.warmup_steps and i < cfg.warmup_steps:
            return (i + 1) / cfg.warmup_steps
        frac = min(1.0, (i - cfg.warmup_steps) / max(1, total - cfg.warmup_steps))
        if cfg.lr_schedule == "linear":
            return 1.0 - frac
        if cfg.lr_schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * frac))
        return 1.0

    return f


class Trainer:
    """Runs ``cfg.steps`` RL steps; ``run()`` resumes from the newest checkpoint under ``cfg.out``.

    ``make_env`` overrides the env factory built from ``cfg.env`` (tests, quickstart).
    """

    def __init__(self, cfg: TrainConfig, *, make_env: Callable[[], Any] | None = None, resume: bool = True) -> None:
        import copy

        import torch

        from branchgym.agents.hf import HFPolicy

        from branchgym.algorithms.needs import check_needs

        check_needs(cfg)
        if not cfg.model:
            raise ConfigError("TrainConfig.model is empty; pass --model PATH (e.g. a `branchgym.agents.tiny.build` dir).")
        if not Path(cfg.model).exists():
            raise ConfigError(f"model directory {cfg.model!r} does not exist; build one with branchgym.agents.tiny.build.")
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        import random

        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.policy = HFPolicy(cfg.model, device=cfg.device, seed=cfg.seed)
        self.model = self.policy.model
        self.ref: HFPolicy | None = None  # frozen reference (same forward, another copy of the weights)
        if cfg.ref_model:
            ref_model = copy.deepcopy(self.model).eval()
            for p in ref_model.parameters():
                p.requires_grad_(False)
            self.ref = HFPolicy(ref_model, self.policy.tokenizer, device=str(self.policy.device))
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, _lr_lambda(cfg))
        self.make_env = make_env or make_env_factory(cfg.env, cfg.env_kwargs, cfg.split)
        probe = self.make_env()
        try:
            self.task_ids = [t.id for t in probe.unwrapped.tasks]
        finally:
            probe.close()
        if len(self.task_ids) < cfg.prompts_per_step:
            raise ConfigError(
                f"split {cfg.split!r} has {len(self.task_ids)} tasks but prompts_per_step={cfg.prompts_per_step}; lower it."
            )
        self.sampler = np.random.default_rng(cfg.seed)
        self.tree_rng = np.random.default_rng(cfg.seed + 1)
        self.h_init_store: dict[int, float] = {}
        self.step = 0
        self.rollout_policy = self.policy
        if cfg.rollout_backend == "vllm":
            from branchgym.agents.vllm import VLLMPolicy

            kwargs = {"dtype": str(self.model.dtype).removeprefix("torch."), **cfg.vllm_kwargs}
            self.rollout_policy = VLLMPolicy(cfg.model, seed=cfg.seed, **kwargs)
        resume_step = self._maybe_resume() if resume else None
        from branchgym.algorithms.metrics import MetricsLogger

        self.logger = MetricsLogger(self.out, tensorboard=cfg.tensorboard, resume_step=resume_step)
        (self.out / "config.yaml").write_text(_yaml(cfg))

    # -- state ------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        from branchgym.algorithms.checkpoint import capture_global_rng

        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "rng": capture_global_rng(),
            "policy_generator": self.policy._generator.get_state(),
            "sampler": self.sampler.bit_generator.state,
            "tree_rng": self.tree_rng.bit_generator.state,
            "h_init_store": dict(self.h_init_store),
            "algo": self.cfg.algo,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        from branchgym.algorithms.checkpoint import restore_global_rng

        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        restore_global_rng(state["rng"])
        self.policy._generator.set_state(state["policy_generator"])
        self.sampler.bit_generator.state = state["sampler"]
        self.tree_rng.bit_generator.state = state["tree_rng"]
        self.h_init_store = dict(state["h_init_store"])
        self.step = int(state["step"])
        if self.rollout_policy is not self.policy:
            self.rollout_policy.load_weights(self.policy.state_dict())

    def _maybe_resume(self) -> int | None:
        """Resume from the newest checkpoint that verifies (checksum, keys, shapes, finite
        values); a damaged one is skipped with a warning, none intact is a CheckpointError."""
        from branchgym.algorithms.checkpoint import resume

        def apply(state: dict[str, Any]) -> None:
            if state.get("algo") != self.cfg.algo:
                raise ConfigError(
                    f"{self.out}/checkpoints was written by algo={state.get('algo')!r}, not {self.cfg.algo!r}; "
                    "use another --out."
                )
            self.load_state(state)

        shapes = [tuple(p.shape) for group in self.opt.param_groups for p in group["params"]]
        path = resume(self.out, apply, reference=self.model.state_dict(), param_shapes=shapes,
                      config=self.cfg.to_dict())
        return None if path is None else self.step

    def save(self) -> Path:
        from branchgym.algorithms.checkpoint import save_checkpoint

        return save_checkpoint(self.out, self.step, self.state(), keep=self.cfg.keep_checkpoints,
                               config=self.cfg.to_dict())

    # -- one step -------------------------------------------------------------------------------
    def _rollout(self, task_ids: list[str]) -> Any:
        from branchgym.agents.policy import SamplingParams
        from branchgym.algorithms.rollout import flat_rollout, premonitor_initial, tree_rollout

        cfg = self.cfg
        params = SamplingParams(
            max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
            logprobs_topk=cfg.entropy_top_k if cfg.entropy_source == "topk" else 0,
        )
        common = dict(max_response_tokens=cfg.max_response_tokens, call_limit=cfg.call_limit,
                      entropy_source=cfg.entropy_source)
        if cfg.rollout == "flat":
            return flat_rollout(self.make_env, self.rollout_policy, task_ids, params, group_size=cfg.group_size,
                                tool_workers=cfg.tool_workers, **common)
        assert cfg.branching is not None
        initial = None
        if cfg.premonitor:
            initial = premonitor_initial(self.make_env, self.rollout_policy, task_ids, params, n=cfg.branching.n,
                                         beta=cfg.premonitor_beta, m_rounding=cfg.m_rounding,
                                         probe_tokens=cfg.initial_entropy_tokens, entropy_tokens=cfg.entropy_tokens,
                                         tool_workers=cfg.tool_workers, **common)
        store = self.h_init_store if cfg.branching.h_init == "code_stale_dict" else None
        return tree_rollout(self.make_env, self.rollout_policy, task_ids, params, branch=cfg.branching,
                            rng=self.tree_rng, initial=initial, h_init_store=store, entropy_tokens=cfg.entropy_tokens,
                            tool_workers=cfg.tool_workers, **common)

    def _shaped_rewards(self, batch: Any) -> list[float]:
        rewards = list(batch.rewards)
        if self.cfg.overlong_buffer_frac is not None:
            from branchgym.algorithms.dapo import overlong_penalty

            L = self.cfg.max_response_tokens
            pen = overlong_penalty([len(t.response_ids) for t in batch.trajectories], max_len=L,
                                   buffer_len=max(1, int(self.cfg.overlong_buffer_frac * L)))
            rewards = [r + float(p) for r, p in zip(rewards, pen)]
        return rewards

    def _no_grad_pass(self, policy: Any, tt: Any) -> tuple[Any, Any]:
        """Log-probs and token entropies of every row under ``policy``, no gradient, on its device.

        The same forward as the update's (:meth:`~branchgym.agents.hf.HFPolicy.forward_logprobs`),
        in micro-batches; (B, L) each, 0 beyond a row's length.
        """
        import torch

        b, width = tt.input_ids.shape
        logp = torch.zeros(b, width, device=policy.device)
        ent = torch.zeros(b, width, device=policy.device)
        mb = self.cfg.micro_batch_size
        with torch.no_grad():
            for s in range(0, b, mb):
                sub = tt.rows(range(s, min(b, s + mb)))
                lp, en = policy.forward_logprobs(sub.input_ids, sub.attention_mask, temperature=self.cfg.temperature)
                logp[s : s + lp.shape[0], : lp.shape[1]] = lp
                ent[s : s + en.shape[0], : en.shape[1]] = en
        return logp, ent

    def _pick_prompts(self, used: set[str]) -> list[str]:
        """``prompts_per_step`` distinct task ids, avoiding ``used`` while enough others remain."""
        pool = [t for t in self.task_ids if t not in used]
        if len(pool) < self.cfg.prompts_per_step:
            pool = self.task_ids
        picks = self.sampler.choice(len(pool), size=self.cfg.prompts_per_step, replace=False)
        return [pool[int(i)] for i in picks]

    def _dynamic_sampling(self, batch: Any, rewards: list[float]) -> tuple[Any, list[float], list[int], int]:
        """DAPO's dynamic sampling (docs/algorithms.md#dapo): keep groups whose rewards differ and
        roll out fresh prompts until ``prompts_per_step`` such groups are in hand or
        ``max_gen_batches`` batches were generated; surplus groups beyond the train batch are
        dropped, as verl's DAPO recipe truncates to the train batch size.

        Returns the merged batch, its shaped rewards, the rows to train on and the batch count.
        """
        from branchgym.algorithms.dapo import dynamic_sampling_keep
        from branchgym.algorithms.rollout.batch import concat_batches

        cfg = self.cfg
        merged, all_rewards, n = batch, list(rewards), 1

        def kept_groups() -> list[int]:
            keep = dynamic_sampling_keep(np.asarray(all_rewards), np.asarray(merged.group_ids))
            return list(dict.fromkeys(g for g, k in zip(merged.group_ids, keep) if k))

        while len(kept_groups()) < cfg.prompts_per_step and n < cfg.max_gen_batches:
            extra = self._rollout(self._pick_prompts(set(merged.task_ids)))
            merged = concat_batches([merged, extra])
            all_rewards += self._shaped_rewards(extra)
            n += 1
        chosen = set(kept_groups()[: cfg.prompts_per_step])
        rows = [i for i, g in enumerate(merged.group_ids) if g in chosen]
        return merged, all_rewards, rows, n

    def train_step(self) -> dict[str, float]:
        """Roll out, compute advantages and update; returns the step's metrics."""
        from branchgym.algorithms.inputs import AdvantageInputs, LossInputs
        from branchgym.algorithms.registry import ADVANTAGES, POLICY_LOSSES
        from branchgym.algorithms.rollout.tensors import to_tensors

        cfg = self.cfg
        t_step = time.perf_counter()
        batch = self._rollout(self._pick_prompts(set()))
        rewards = self._shaped_rewards(batch)
        rows = list(range(len(batch)))
        gen_batches = 1
        if cfg.dynamic_sampling:
            batch, rewards, rows, gen_batches = self._dynamic_sampling(batch, rewards)
        metrics = batch.metrics()
        tt = to_tensors(batch, self.policy.pad_token_id, rewards)
        metrics["train/kept_rows"] = float(len(rows))
        metrics["train/kept_groups"] = float(len({batch.group_ids[i] for i in rows}))
        metrics["train/gen_batches"] = float(gen_batches)
        t_update = time.perf_counter()
        if rows:
            metrics.update(self._update(tt.rows(rows) if len(rows) < len(batch) else tt,
                                        AdvantageInputs, LossInputs, ADVANTAGES, POLICY_LOSSES))
            if self.rollout_policy is not self.policy:
                self.rollout_policy.load_weights(self.policy.state_dict())
        else:
            import warnings

            with warnings.catch_warnings():  # no optimizer step this time, on purpose
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step", category=UserWarning)
                self.sched.step()  # keep the schedule aligned with the step count
        now = time.perf_counter()
        total = now - t_step
        metrics["time/update_s"] = now - t_update
        metrics["time/step_s"] = total
        for phase in ("generation", "tools", "clone"):
            metrics[f"time/{phase}_share"] = batch.seconds.get(phase, 0.0) / total
        metrics["time/update_share"] = (now - t_update) / total
        metrics["train/lr"] = self.sched.get_last_lr()[0]
        return metrics

    def _update(self, tt: Any, AdvantageInputs: Any, LossInputs: Any, ADVANTAGES: Any, POLICY_LOSSES: Any) -> dict[str, float]:
        """Advantages, then ``ppo_epochs`` × ``mini_batches`` optimizer steps of the policy loss.

        What the estimator and the loss read is what they declare
        (:class:`~branchgym.algorithms.inputs.Needs`): only the declared optional fields are
        filled, and an estimator declared ``per_minibatch`` is called once per mini-batch with
        the current policy's entropies instead of once for the batch. The loss path (forward,
        log-probs, ratio, loss, backward) stays on the model's device; advantages are computed
        on the CPU from detached data and moved there once per call.
        """
        import torch

        from branchgym.algorithms.inputs import needs_of
        from branchgym.algorithms.needs import advantage_inputs

        cfg = self.cfg
        estimator, loss_fn = ADVANTAGES.get(cfg.advantage), POLICY_LOSSES.get(cfg.loss)
        adv_needs, loss_needs = needs_of(estimator), needs_of(loss_fn)
        dev = self.policy.device
        self.model.eval()
        old_logp, old_ent = self._no_grad_pass(self.policy, tt)
        ref_logp = self._no_grad_pass(self.ref, tt)[0] if self.ref is not None else None
        if adv_needs.per_minibatch:
            advantages = torch.zeros_like(old_logp)  # filled mini-batch by mini-batch below
        else:
            adv_in = advantage_inputs(tt, old_ent, adv_needs)
            advantages = estimator(adv_in, **cfg.advantage_params).to(dev)
        loss_params = dict(cfg.loss_params)
        if loss_params.get("agg_mode") == "seq-mean-token-sum-norm" and loss_params.get("norm_constant") is None:
            loss_params["norm_constant"] = float(cfg.max_response_tokens)  # Dr. GRPO's constant budget
        loss_entropy = "entropies" in loss_needs.fields
        sums: dict[str, Any] = {}
        n_micro = 0
        grad_norms = []
        b = tt.input_ids.shape[0]
        self.model.train()
        for _ in range(cfg.ppo_epochs):
            perm = self.sampler.permutation(b).tolist()
            chunks = [perm[i::cfg.mini_batches] for i in range(cfg.mini_batches)]
            for mini in (c for c in chunks if c):
                if adv_needs.per_minibatch:
                    # entropies of the policy being updated: the rollout policy's (the same
                    # weights) before the first optimizer step, recomputed after each one
                    sub = tt.rows(mini)
                    w, mt = sub.input_ids.shape[1], torch.as_tensor(mini, device=dev)
                    if n_micro == 0:
                        ent = old_ent[mt, :w]
                    else:
                        self.model.eval()
                        ent = self._no_grad_pass(self.policy, sub)[1]
                        self.model.train()
                    adv_in = advantage_inputs(sub, ent, adv_needs, population=tt)
                    advantages[mt] = 0.0
                    advantages[mt, :w] = estimator(adv_in, **cfg.advantage_params).to(dev)
                self.opt.zero_grad(set_to_none=True)
                for s in range(0, len(mini), cfg.micro_batch_size):
                    idx = mini[s : s + cfg.micro_batch_size]
                    sub = tt.rows(idx)
                    w = sub.input_ids.shape[1]
                    logp, ent = self.policy.forward_logprobs(
                        sub.input_ids, sub.attention_mask, temperature=cfg.temperature, with_entropy=loss_entropy
                    )
                    it = torch.as_tensor(idx, device=dev)
                    inputs = LossInputs(
                        logp=logp, old_logp=old_logp[it, :w], advantages=advantages[it, :w],
                        loss_mask=sub.loss_mask.to(dev), entropies=None if ent is None else ent.detach(),
                        ref_logp=None if ref_logp is None else ref_logp[it, :w],
                    )
                    loss, m = loss_fn(inputs, **loss_params)
                    (loss * (len(idx) / len(mini))).backward()
                    for k, v in m.items():  # summed on the device; read once per step
                        sums[k] = sums.get(k, 0.0) + (v.detach() if isinstance(v, torch.Tensor) else float(v))
                    n_micro += 1
                grad_norms.append(torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm).detach())
                self.opt.step()
                self.sched.step()
        self.model.eval()
        valid = tt.loss_mask.to(dev) > 0
        out = {k: float(v) / max(1, n_micro) for k, v in sums.items()}  # one device sync per metric per step
        out["train/grad_norm"] = float(torch.stack(grad_norms).mean()) if grad_norms else 0.0
        out["adv/mean"] = float(advantages[valid].mean()) if valid.any() else 0.0
        out["adv/std"] = float(advantages[valid].std()) if valid.sum() > 1 else 0.0
        out["adv/reward_std"] = float(tt.rewards.std()) if len(tt.rewards) > 1 else 0.0
        if tt.rollout_logprobs is not None and valid.any():
            # rollout engine vs trainer forward on the same tokens: ~1e-6 for HF, larger for vLLM
            # (other kernels) or when weights were not synced; PPO's ratio is taken to the latter.
            diff = (old_logp - tt.rollout_logprobs.to(dev))[valid].abs().mean()
            out["train/rollout_logprob_abs_diff"] = float(diff)
        return out

    # -- loop ---------------------------------------------------------------------------------
    def run(
        self,
        on_step: Callable[[int, dict[str, float]], None] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> dict[str, float]:
        """Train up to ``cfg.steps`` (from the resumed step); save final weights and plots.

        ``stop()`` is asked before each step; True ends training early (a time budget).
        """
        from tqdm import tqdm

        cfg = self.cfg
        last: dict[str, float] = {}
        bar = tqdm(total=cfg.steps, initial=self.step, desc=f"train {cfg.algo}", disable=not cfg.progress,
                   dynamic_ncols=True)
        try:
            while self.step < cfg.steps:
                if stop is not None and stop():
                    break
                last = self.train_step()
                self.step += 1
                self.logger.log(self.step, last)
                bar.update(1)
                bar.set_postfix(reward=f"{last.get('rollout/reward_mean', 0):.3f}",
                                tok=int(last.get("rollout/generated_tokens", 0)))
                if on_step is not None:
                    on_step(self.step, last)
                if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
                    self.save()
        finally:
            bar.close()
            self.logger.close()
        final = self.out / "final"
        self.model.save_pretrained(final)
        self.policy.tokenizer.save_pretrained(final)
        if cfg.plots:
            from branchgym.algorithms.metrics import read_metrics
            from branchgym.algorithms.plots import plot_run

            plot_run(read_metrics(self.out), self.out / "plots")
        return last

    def close(self) -> None:
        self.logger.close()
        if self.rollout_policy is not self.policy:
            self.rollout_policy.close()


def _yaml(cfg: TrainConfig) -> str:
    import yaml

    d = cfg.to_dict()
    return yaml.safe_dump(d, sort_keys=False)


def train(cfg: TrainConfig, *, make_env: Callable[[], Any] | None = None) -> dict[str, float]:
    """Build a :class:`Trainer` (resuming if ``cfg.out`` has checkpoints) and run it."""
    trainer = Trainer(cfg, make_env=make_env)
    try:
        return trainer.run()
    finally:
        trainer.close()
