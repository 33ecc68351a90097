"""``CompareConfig``: what ``branchgym compare`` runs, at which budget, and how it evaluates."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from branchgym.errors import ConfigError
from branchgym.fields import ranged, validate

__all__ = ["CompareConfig", "DEFAULT_ALGOS", "LOOKUP_ENV"]

DEFAULT_ALGOS = ("grpo", "dapo", "arpo", "aepo", "empg", "gppo", "high_entropy")
"""The presets compared by default (names in :data:`~branchgym.algorithms.train_config.PRESETS`)."""

LOOKUP_ENV = "branchgym.algorithms.quickstart_task:make_lookup_env"

# Fields that do not change what a job computes: a resumed comparison may change them freely.
FREE_FIELDS = ("out", "algos", "seeds", "reference", "parallel", "bootstrap_resamples", "ci_level")


@dataclass(frozen=True)
class CompareConfig:
    """A comparison of algorithm presets on one env and model, at one budget, over seeds.

    Every algorithm of a seed starts from the same SFT model (trained once per seed) and trains
    until it has spent ``budget`` units of ``budget_kind``; it is evaluated on ``eval_split`` at
    ``curve_points`` evenly spaced budget points and once more, with more samples, at the end.
    """

    out: str = ranged("runs/compare", check=bool, allowed="a non-empty directory path")
    env: str = ranged(LOOKUP_ENV, check=bool, allowed="a Gymnasium id or 'package.module:factory'")
    """the env; its factory must take ``split`` and have ``train``, ``validation`` and ``eval_split``."""
    algos: tuple[str, ...] = DEFAULT_ALGOS
    """presets to compare (``branchgym train --help`` lists them)."""
    reference: str = ranged("grpo", check=bool, allowed="one of algos")
    """the algorithm every other one is compared with in the differences table."""
    seeds: int = ranged(3, ge=1, hint="differences are judged against the spread over ≥ 2 seeds")
    budget_kind: Literal["tokens", "trajectories", "seconds"] = "tokens"
    """what is equal across algorithms: generated tokens, trajectories, or training wall seconds."""
    budget: float = ranged(60_000.0, gt=0.0)
    """units of ``budget_kind`` each run may spend; a run stops at the first step that reaches it."""
    max_steps: int = ranged(10_000, ge=1)
    """safety cap on RL steps; a run that hits it before the budget is marked in the report."""
    curve_points: int = ranged(4, ge=1)
    """held-out evaluations during training, at budget·i/curve_points (plus the SFT start)."""
    # model and SFT warm start (the quickstart's)
    hidden: int = ranged(128, ge=32, check=lambda h: h % 32 == 0, allowed="a multiple of the head size 32")
    layers: int = ranged(2, ge=1)
    vocab_size: int = ranged(1024, ge=300, hint="byte-level BPE needs 256 byte tokens plus the tags")
    sft_steps: int = ranged(600, ge=0)
    sft_batch_size: int = ranged(32, ge=1)
    sft_lr: float = ranged(3e-3, gt=0.0, le=1.0)
    sft_target_accuracy: float = ranged(0.5, ge=0.0)
    """SFT stops at the first validation check whose sampled accuracy reaches this."""
    sft_eval_every: int = ranged(20, ge=1)
    sft_eval_every_close: int = ranged(5, ge=1)
    sft_eval_samples: int = ranged(2, ge=1)
    # RL (the same for every algorithm; the rest is each preset's own)
    lr: float = ranged(2e-4, gt=0.0, le=1.0, hint="the tiny model needs ~2e-4")
    prompts_per_step: int = ranged(8, ge=1)
    group_size: int = ranged(8, ge=2)
    """trajectories per prompt: G of the flat presets, n of the tree presets (whose global count
    keeps the preset's n/initial ratio), so a step has the same number of trajectories."""
    max_new_tokens: int = ranged(32, ge=1)
    max_response_tokens: int = ranged(128, ge=1)
    call_limit: int = ranged(3, ge=1)
    """tool calls allowed per trajectory, for every algorithm and for evaluation."""
    # evaluation
    eval_split: str = ranged("test", check=bool, allowed="a split name of the env")
    eval_tasks: int = ranged(100, ge=1)
    eval_samples: int = ranged(8, ge=1, hint="pass@k is reported for k = 1, 2, 4, ... up to it")
    """samples per task at T = 1 in the final evaluation (pass@k for k ≤ this)."""
    curve_tasks: int = ranged(100, ge=1)
    curve_samples: int = ranged(2, ge=1)
    """samples per task at each curve point (pass@1 = mean success)."""
    success_reward: float = ranged(1.0, gt=0.0)
    """an episode counts as solved when its reward reaches this (F1 = 1: the exact answer)."""
    # execution and statistics
    threads: int = ranged(1, ge=1, hint="1 per process on a small machine")
    parallel: int = ranged(1, ge=1)
    """jobs run at once, each in its own process."""
    bootstrap_resamples: int = ranged(2000, ge=100)
    ci_level: float = ranged(0.95, gt=0.0, lt=1.0)

    def __post_init__(self) -> None:
        validate(self)
        from branchgym.algorithms.train_config import PRESETS

        algos = self.algos
        if isinstance(algos, str):
            algos = tuple(a.strip() for a in algos.split(",") if a.strip())
        if not isinstance(algos, (tuple, list)) or not algos or not all(isinstance(a, str) for a in algos):
            raise ConfigError(f"CompareConfig.algos={algos!r} must be a non-empty list of preset names; "
                              f"presets: {list(PRESETS)}.")
        algos = tuple(dict.fromkeys(algos))
        unknown = [a for a in algos if a not in PRESETS]
        if unknown:
            raise ConfigError(f"CompareConfig.algos has unknown preset(s) {unknown}; presets: {list(PRESETS)}.")
        object.__setattr__(self, "algos", algos)
        if self.reference not in algos:
            raise ConfigError(f"CompareConfig.reference={self.reference!r} is not among algos {list(algos)}; "
                              "add it or pick one of them.")
        for algo in algos:  # every run's config is checked now, before any model is built
            try:
                self.train_config(algo, model="", out=self.out, seed=0)
            except ConfigError as e:
                raise ConfigError(f"CompareConfig gives a bad {algo} config: {e}") from None

    def train_config(self, algo: str, *, model: str, out: str, seed: int) -> Any:
        """The :class:`~branchgym.algorithms.train_config.TrainConfig` of one run.

        The preset's own settings are kept except the shared sizes above; a tree preset gets
        ``branching.n = group_size`` and ``branching.initial`` at the preset's ``initial/n`` ratio.
        """
        from branchgym.algorithms.train_config import PRESETS, preset

        p = PRESETS[algo]
        extra: dict[str, Any] = {}
        if p.branching is not None:
            ratio = p.branching.initial / p.branching.n
            extra["branching"] = {"n": self.group_size, "initial": max(1, round(ratio * self.group_size))}
        else:
            extra["group_size"] = self.group_size
        if "micro_batch_size" not in p.settings:  # a preset's own (batch-wide top-k masks) is kept
            extra["micro_batch_size"] = 32
        return preset(
            algo, env=self.env, model=model, out=out, seed=seed, steps=self.max_steps,
            prompts_per_step=self.prompts_per_step, max_new_tokens=self.max_new_tokens,
            max_response_tokens=self.max_response_tokens, lr=self.lr, call_limit=self.call_limit,
            checkpoint_every=10**6, entropy_source="exact", threads=self.threads, tensorboard=False,
            plots=False, progress=False, **extra,
        )

    @property
    def k_values(self) -> tuple[int, ...]:
        """k of the reported pass@k: 1, 2, 4, ... up to ``eval_samples`` (which is included)."""
        ks, k = [], 1
        while k < self.eval_samples:
            ks.append(k)
            k *= 2
        return (*ks, self.eval_samples)

    def fingerprint(self) -> str:
        """A hash of every field that changes what a job computes (not ``out``, ``algos``,
        ``seeds``, ``parallel``, ...): a resumed comparison must match it."""
        d = {k: v for k, v in dataclasses.asdict(self).items() if k not in FREE_FIELDS}
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def replace(self, **changes: Any) -> CompareConfig:
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ConfigError(f"unknown compare option(s) {unknown}; fields: {sorted(names)}.")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["algos"] = list(self.algos)
        return d

    @classmethod
    def tiny(cls, **changes: Any) -> CompareConfig:
        """A minute-sized comparison (tests, smoke runs): too short to learn much."""
        base = dict(hidden=64, sft_steps=20, sft_batch_size=8, sft_eval_every=10, sft_eval_samples=1,
                    prompts_per_step=2, group_size=4, budget=600.0, curve_points=2, eval_tasks=6,
                    eval_samples=4, curve_tasks=4, curve_samples=1, bootstrap_resamples=200)
        return cls(**{**base, **changes})
