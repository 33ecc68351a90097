"""The algorithm registries, one signature per kind (docs/algorithms.md#trainer).

- ``ADVANTAGES[name](batch: AdvantageInputs, **hparams) -> Tensor[B, T]`` (masked).
- ``POLICY_LOSSES[name](inputs: LossInputs, *, agg_mode=..., norm_constant=..., kl_coef=...,
  kl_estimator=..., **hparams) -> (loss scalar, metrics dict of detached tensors)``.
- ``KL_ESTIMATORS[name](logp, ref_logp, *, clamp=True) -> Tensor`` (per token).
- ``AGGREGATIONS[name](loss_mat, loss_mask, *, norm_constant=None) -> scalar``.

Entries are ``"module:attr"`` strings resolved on first ``get``, so importing this module
imports no torch. Add your own with ``ADVANTAGES.register("name", fn)``.

>>> sorted(ADVANTAGES)
['aepo', 'arpo_hard', 'arpo_soft', 'dr_grpo', 'empg', 'grpo', 'rloo']
>>> ADVANTAGES.get("grp0")
Traceback (most recent call last):
...
branchgym.errors.UnknownName: unknown advantage estimator 'grp0'. Did you mean 'grpo'? ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from branchgym.registry import Registry

__all__ = ["ADVANTAGES", "POLICY_LOSSES", "KL_ESTIMATORS", "AGGREGATIONS"]

ADVANTAGES: Registry[Callable[..., Any]] = Registry("advantage estimator")
POLICY_LOSSES: Registry[Callable[..., Any]] = Registry("policy loss")
KL_ESTIMATORS: Registry[Callable[..., Any]] = Registry("KL estimator")
AGGREGATIONS: Registry[Callable[..., Any]] = Registry("loss aggregation mode")

_A = "branchgym.algorithms.advantages"
for _name in ("grpo", "dr_grpo", "rloo", "arpo_soft", "arpo_hard", "aepo"):
    ADVANTAGES.register(_name, f"{_A}:{_name}")
ADVANTAGES.register("empg", "branchgym.algorithms.empg:empg")

_L = "branchgym.algorithms.losses"
for _name, _module in (
    ("ppo_clip", "ppo"),
    ("dapo", "ppo"),
    ("gppo", "ppo"),
    ("aepo", "ppo"),
    ("cispo", "cispo"),
    ("high_entropy_mask", "entropy_mask"),
    ("clip_cov", "cov"),
    ("kl_cov", "cov"),
):
    POLICY_LOSSES.register(_name, f"{_L}.{_module}:{_name}")

for _name, _attr in (
    ("k1", "k1"),
    ("k2", "k2"),
    ("k3", "k3"),
    ("k3+", "k3_plus"),
    ("low_var_kl", "k3"),
):
    KL_ESTIMATORS.register(_name, f"branchgym.algorithms.kl:{_attr}")

for _name, _attr in (
    ("token-mean", "token_mean"),
    ("seq-mean-token-mean", "seq_mean_token_mean"),
    ("seq-mean-token-sum", "seq_mean_token_sum"),
    ("seq-mean-token-sum-norm", "seq_mean_token_sum_norm"),
):
    AGGREGATIONS.register(_name, f"branchgym.algorithms.aggregation:{_attr}")
