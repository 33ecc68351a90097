"""branchgym's advantage estimators and policy losses in verl's registries (``branchgym_*``).

Loaded by the plugin on ``import verl``. Each entry adapts verl's registry signature to the
branchgym function that holds the math (:mod:`branchgym.algorithms`); nothing is recomputed here.

Estimators (``algorithm.adv_estimator``), verl signature
``fn(token_level_rewards, response_mask, index, config, **_) -> (advantages, returns)``:

- ``branchgym_grpo`` / ``branchgym_dr_grpo`` / ``branchgym_rloo`` / ``branchgym_arpo_soft``: the
  group statistics are taken over EVERY output row of a prompt (every leaf of every session's
  tree), grouped by verl's ``uid``. verl's own ``grpo`` in the v1 trainer scores only the last
  output of each session and copies its advantage to the session's other outputs.
- ``branchgym_arpo_hard`` / ``branchgym_aepo`` / ``branchgym_empg``: they read the rollout tree or
  token entropies, which this signature does not carry; the recipe's trainer
  (:mod:`branchgym.integrations.verl.recipe`) computes them. Called through plain verl they raise
  an error that says so.

Policy losses (``actor_rollout_ref.actor.policy_loss.loss_mode``), verl signature
``fn(old_log_prob, log_prob, advantages, response_mask, loss_agg_mode, config,
rollout_is_weights) -> (loss, metrics)``:

- ``branchgym_aepo``: AEPO's entropy-balanced clipping (gradient kept through the upper bound).
- ``branchgym_gppo``: GPPO's gradient-preserving clipping (both bounds; β = 1).

The per-token losses are :func:`branchgym.algorithms.losses.ppo.gppo_token_loss`; they are
aggregated with verl's ``agg_loss`` and the actor's ``global_batch_info`` so that data-parallel
and micro-batch splits keep verl's normalisation (docs/integrations/verl.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from verl.trainer.ppo.core_algos import (
    ADV_ESTIMATOR_REGISTRY,
    POLICY_LOSS_REGISTRY,
    agg_loss,
    register_adv_est,
    register_policy_loss,
)

from branchgym.algorithms.inputs import AdvantageInputs, needs_of
from branchgym.algorithms.registry import ADVANTAGES
from branchgym.errors import ConfigError

__all__ = [
    "VERL_NAMES",
    "PREFIX",
    "RECIPE_ESTIMATORS",
    "REGISTRY_ESTIMATORS",
    "branchgym_name",
    "group_ids_from_index",
    "hparams_from_config",
]

PREFIX = "branchgym_"

#: branchgym estimators whose inputs verl's registry signature carries (rewards, mask, uid).
REGISTRY_ESTIMATORS = ("grpo", "dr_grpo", "rloo", "arpo_soft")
#: branchgym estimators that read the tree or token entropies: computed by the recipe's trainer.
RECIPE_ESTIMATORS = ("arpo_hard", "aepo", "empg")
#: the clipped losses registered with verl, and the ``only_high`` flag of gppo_token_loss.
_LOSSES = {"aepo": True, "gppo": False}

VERL_NAMES: dict[str, tuple[str, ...]] = {
    "adv_estimators": tuple(PREFIX + n for n in (*REGISTRY_ESTIMATORS, *RECIPE_ESTIMATORS)),
    "policy_losses": tuple(PREFIX + n for n in _LOSSES),
}


def branchgym_name(verl_name: str) -> str | None:
    """``"branchgym_grpo" -> "grpo"``; ``None`` for a name that is not one of ours."""
    if not verl_name.startswith(PREFIX):
        return None
    name = verl_name[len(PREFIX) :]
    return name if name in ADVANTAGES or name in _LOSSES else None


def group_ids_from_index(index: Any) -> torch.Tensor:
    """verl's ``uid`` array (strings or ints, one per row) -> dense int64 group ids."""
    _, inverse = np.unique(np.asarray(index).astype(str), return_inverse=True)
    return torch.as_tensor(inverse.reshape(-1), dtype=torch.long)


def hparams_from_config(name: str, config: Any, extra: dict[str, Any] | None = None) -> dict:
    """Keyword hyperparameters for branchgym estimator ``name`` from verl's ``algorithm`` config.

    ``norm_adv_by_std_in_grpo`` maps to ``scale_by_std`` (``dr_grpo`` has none: it never scales);
    ``extra`` (the recipe's ``branchgym.estimator_params``) is passed through unchanged, and
    the estimator itself rejects a name it does not take.
    """
    import inspect

    params = dict(extra or {})
    fn = ADVANTAGES.get(name)
    accepted = inspect.signature(fn).parameters
    if config is not None and "scale_by_std" in accepted and "scale_by_std" not in params:
        params["scale_by_std"] = bool(config.get("norm_adv_by_std_in_grpo", True))
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(
            f"estimator branchgym_{name} takes no {unknown}; its hyperparameters are "
            f"{sorted(k for k in accepted if k != 'batch')} (set them under "
            "branchgym.estimator_params in the verl config)."
        )
    return params


def _registry_estimator(name: str):
    fn = ADVANTAGES.get(name)

    def estimator(
        token_level_rewards: torch.Tensor,
        response_mask: torch.Tensor,
        index: Any = None,
        config: Any = None,
        **_: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if index is None:
            raise ConfigError(
                f"branchgym_{name} groups rows by verl's 'uid' (non_tensor_batch['uid']), which "
                "this batch lacks; verl sets it for every prompt in the trainer."
            )
        batch = AdvantageInputs(
            rewards=token_level_rewards.sum(dim=-1).float().cpu(),
            group_ids=group_ids_from_index(index),
            loss_mask=response_mask.float().cpu(),
        )
        adv = fn(batch, **hparams_from_config(name, config)).to(token_level_rewards.device)
        return adv, adv

    estimator.__name__ = f"branchgym_{name}"
    estimator.__doc__ = (
        f"verl adapter of branchgym's ``{name}`` estimator over every output row "
        f"(:func:`{fn.__module__}.{fn.__name__}`)."
    )
    return estimator


def _recipe_only_estimator(name: str):
    needs = sorted(needs_of(ADVANTAGES.get(name)).fields)

    def estimator(*_: Any, **__: Any) -> tuple[torch.Tensor, torch.Tensor]:
        raise ConfigError(
            f"algorithm.adv_estimator=branchgym_{name} reads {needs}, which verl's estimator "
            "signature does not carry; start training with the branchgym recipe "
            "(python -m branchgym.integrations.verl.recipe ...), whose trainer computes it "
            "(docs/integrations/verl.md), or pick branchgym_grpo."
        )

    estimator.__name__ = f"branchgym_{name}"
    return estimator


def _clipped_loss(name: str, only_high: bool):
    from branchgym.algorithms.losses.common import importance_ratio
    from branchgym.algorithms.losses.ppo import gppo_token_loss

    def loss_fn(
        old_log_prob: torch.Tensor,
        log_prob: torch.Tensor,
        advantages: torch.Tensor,
        response_mask: torch.Tensor,
        loss_agg_mode: str = "token-mean",
        config: Any = None,
        rollout_is_weights: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        if config is None:
            raise ConfigError(
                f"branchgym_{name} reads the clip range from the actor config "
                "(clip_ratio_low/high, clip_ratio_c); pass config=ActorConfig(...)."
            )
        clip = config.clip_ratio
        low = config.clip_ratio_low if config.clip_ratio_low is not None else clip
        high = config.clip_ratio_high if config.clip_ratio_high is not None else clip
        loss_mat, info = gppo_token_loss(
            log_prob,
            old_log_prob,
            advantages,
            clip_low=low,
            clip_high=high,
            clip_ratio_c=config.get("clip_ratio_c", 3.0),
            only_high=only_high,
        )
        if rollout_is_weights is not None:
            loss_mat = loss_mat * rollout_is_weights
        mask = response_mask.to(loss_mat.dtype)
        loss = agg_loss(
            loss_mat=loss_mat,
            loss_mask=mask,
            loss_agg_mode=loss_agg_mode,
            **(config.get("global_batch_info", None) or {}),
        )
        ratio = importance_ratio(log_prob.detach(), old_log_prob)
        n = mask.sum().clamp(min=1.0)

        def frac(x: torch.Tensor) -> float:
            return float((x.to(mask.dtype) * mask).sum() / n)

        metrics = {
            "actor/pg_clipfrac": frac(info["clipped_high"] | info["clipped_low"]),
            "actor/pg_clipfrac_lower": frac(info["dual"]),
            "actor/pg_clipfrac_high": frac(info["clipped_high"]),
            "actor/ppo_kl": float(((old_log_prob - log_prob.detach()) * mask).sum() / n),
            "actor/ratio_mean": float((ratio * mask).sum() / n),
        }
        return loss, metrics

    loss_fn.__name__ = f"branchgym_{name}"
    loss_fn.__doc__ = (
        f"verl adapter of branchgym's ``{name}`` clipping "
        f"(gppo_token_loss(only_high={only_high})), aggregated with verl's agg_loss."
    )
    return loss_fn


def _register() -> None:
    for name in REGISTRY_ESTIMATORS:
        if PREFIX + name not in ADV_ESTIMATOR_REGISTRY:
            register_adv_est(PREFIX + name)(_registry_estimator(name))
    for name in RECIPE_ESTIMATORS:
        if PREFIX + name not in ADV_ESTIMATOR_REGISTRY:
            register_adv_est(PREFIX + name)(_recipe_only_estimator(name))
    for name, only_high in _LOSSES.items():
        if PREFIX + name not in POLICY_LOSS_REGISTRY:
            register_policy_loss(PREFIX + name)(_clipped_loss(name, only_high))


_register()
