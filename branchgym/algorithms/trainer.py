"""The RL trainer behind ``branchgym train``: rollout, advantage, clipped-loss update, metrics.

One step (ALGORITHMS.md §0.5, §1–§4):

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
        self.ref = None
        if cfg.ref_model:
            self.ref = copy.deepcopy(self.model).eval()
            for p in self.ref.parameters():
                p.requires_grad_(False)
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
            logprobs_topk=10 if cfg.entropy_source == "topk" else 0,
        )
        common = dict(max_response_tokens=cfg.max_response_tokens, call_limit=cfg.call_limit,
                      entropy_source=cfg.entropy_source)
        if cfg.rollout == "flat":
            return flat_rollout(self.make_env, self.rollout_policy, task_ids, params, group_size=cfg.group_size, **common)
        assert cfg.branching is not None
        initial = None
        if cfg.premonitor:
            initial = premonitor_initial(self.make_env, self.rollout_policy, task_ids, params, n=cfg.branching.n,
                                         beta=cfg.premonitor_beta, m_rounding=cfg.m_rounding, **common)
        store = self.h_init_store if cfg.branching.h_init == "code_stale_dict" else None
        return tree_rollout(self.make_env, self.rollout_policy, task_ids, params, branch=cfg.branching,
                            rng=self.tree_rng, initial=initial, h_init_store=store, **common)

    def _shaped_rewards(self, batch: Any) -> list[float]:
        rewards = list(batch.rewards)
        if self.cfg.overlong_buffer_frac is not None:
            from branchgym.algorithms.dapo import overlong_penalty

            L = self.cfg.max_response_tokens
            pen = overlong_penalty([len(t.response_ids) for t in batch.trajectories], max_len=L,
                                   buffer_len=max(1, int(self.cfg.overlong_buffer_frac * L)))
            rewards = [r + float(p) for r, p in zip(rewards, pen)]
        return rewards

    def _forward(self, model: Any, tt: Any, *, grad: bool) -> tuple[Any, Any]:
        import torch

        from branchgym.agents.entropy import entropy_from_logits

        ids, att = tt.input_ids.to(self.policy.device), tt.attention_mask.to(self.policy.device)
        pos = (att.cumsum(-1) - 1).clamp(min=0)
        with torch.set_grad_enabled(grad):
            z = model(input_ids=ids, attention_mask=att, position_ids=pos).logits[:, :-1].float() / self.cfg.temperature
            logp = torch.log_softmax(z, -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
            ent = entropy_from_logits(z, 1.0)
            zero = torch.zeros_like(logp[:, :1])
            return torch.cat([zero, logp], 1).cpu(), torch.cat([zero, ent], 1).cpu()

    def _no_grad_pass(self, model: Any, tt: Any) -> tuple[Any, Any]:
        import torch

        b, width = tt.input_ids.shape
        logp = torch.zeros(b, width)
        ent = torch.zeros(b, width)
        mb = self.cfg.micro_batch_size
        for s in range(0, b, mb):
            idx = list(range(s, min(b, s + mb)))
            sub = tt.rows(idx)
            lp, en = self._forward(model, sub, grad=False)
            logp[s : s + len(idx), : lp.shape[1]] = lp
            ent[s : s + len(idx), : en.shape[1]] = en
        return logp, ent

    def _pick_prompts(self, used: set[str]) -> list[str]:
        """``prompts_per_step`` distinct task ids, avoiding ``used`` while enough others remain."""
        pool = [t for t in self.task_ids if t not in used]
        if len(pool) < self.cfg.prompts_per_step:
            pool = self.task_ids
        picks = self.sampler.choice(len(pool), size=self.cfg.prompts_per_step, replace=False)
        return [pool[int(i)] for i in picks]

    def _dynamic_sampling(self, batch: Any, rewards: list[float]) -> tuple[Any, list[float], list[int], int]:
        """DAPO's dynamic sampling (ALGORITHMS.md §1(b)): keep groups whose rewards differ and
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
        import torch

        cfg = self.cfg
        self.model.eval()
        old_logp, old_ent = self._no_grad_pass(self.model, tt)
        ref_logp = self._no_grad_pass(self.ref, tt)[0] if self.ref is not None else None
        adv_in = AdvantageInputs(
            rewards=tt.rewards, group_ids=tt.group_ids, loss_mask=tt.loss_mask, entropies=old_ent,
            step_ids=tt.step_ids, parent_ids=tt.parent_ids, branch_points=tt.branch_points,
        )
        # AEPO's Ã = A(1 + a·z(H)) reads the entropy of the policy being updated over the
        # mini-batch (ALGORITHMS.md §3(c)): the rollout policy's entropies serve the first
        # mini-batch; later ones (more mini-batches or epochs) are recomputed after each update.
        entropy_adv = cfg.advantage == "aepo"
        if entropy_adv:
            from branchgym.algorithms.advantages import entropy_aware_advantage

            ap = dict(cfg.advantage_params)
            a_weight, a_unbiased = ap.pop("weight", 0.2), ap.pop("entropy_std_unbiased", True)
            base_adv = ADVANTAGES.get("grpo")(adv_in, **ap)
            advantages = base_adv.clone()
            mask_f = tt.loss_mask.to(base_adv.dtype)
        else:
            advantages = ADVANTAGES.get(cfg.advantage)(adv_in, **cfg.advantage_params)
        loss_params = dict(cfg.loss_params)
        if loss_params.get("agg_mode") == "seq-mean-token-sum-norm" and loss_params.get("norm_constant") is None:
            loss_params["norm_constant"] = float(cfg.max_response_tokens)  # Dr. GRPO's constant budget
        sums: dict[str, float] = {}
        n_micro = 0
        grad_norms = []
        b = tt.input_ids.shape[0]
        self.model.train()
        for _ in range(cfg.ppo_epochs):
            perm = self.sampler.permutation(b).tolist()
            chunks = [perm[i::cfg.mini_batches] for i in range(cfg.mini_batches)]
            for mini in (c for c in chunks if c):
                if entropy_adv:
                    mt = torch.as_tensor(mini)
                    if n_micro == 0:
                        ent = old_ent[mt]
                    else:
                        ent = torch.zeros_like(old_ent[mt])
                        self.model.eval()
                        cur = self._no_grad_pass(self.model, tt.rows(mini))[1]
                        ent[:, : cur.shape[1]] = cur
                        self.model.train()
                    advantages[mt] = entropy_aware_advantage(base_adv[mt], ent, mask_f[mt], weight=a_weight,
                                                             unbiased=a_unbiased)
                self.opt.zero_grad(set_to_none=True)
                for s in range(0, len(mini), cfg.micro_batch_size):
                    idx = mini[s : s + cfg.micro_batch_size]
                    sub = tt.rows(idx)
                    w = sub.input_ids.shape[1]
                    logp, ent = self._forward(self.model, sub, grad=True)
                    it = torch.as_tensor(idx)
                    inputs = LossInputs(
                        logp=logp, old_logp=old_logp[it, :w], advantages=advantages[it, :w],
                        loss_mask=sub.loss_mask, entropies=ent,
                        ref_logp=None if ref_logp is None else ref_logp[it, :w],
                    )
                    loss, m = POLICY_LOSSES.get(cfg.loss)(inputs, **loss_params)
                    (loss * (len(idx) / len(mini))).backward()
                    for k, v in m.items():
                        sums[k] = sums.get(k, 0.0) + float(v)
                    n_micro += 1
                gn = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
                grad_norms.append(float(gn))
                self.opt.step()
                self.sched.step()
        self.model.eval()
        valid = tt.loss_mask > 0
        out = {k: v / max(1, n_micro) for k, v in sums.items()}
        out["train/grad_norm"] = sum(grad_norms) / max(1, len(grad_norms))
        out["adv/mean"] = float(advantages[valid].mean()) if valid.any() else 0.0
        out["adv/std"] = float(advantages[valid].std()) if valid.sum() > 1 else 0.0
        out["adv/reward_std"] = float(tt.rewards.std()) if len(tt.rewards) > 1 else 0.0
        if tt.rollout_logprobs is not None and valid.any():
            # rollout engine vs trainer forward on the same tokens: ~1e-6 for HF, larger for vLLM
            # (other kernels) or when weights were not synced; PPO's ratio is taken to the latter.
            out["train/rollout_logprob_abs_diff"] = float((old_logp - tt.rollout_logprobs)[valid].abs().mean())
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
