"""The branchgym recipe for verl: verl's v1 trainer with branchgym's advantage step.

Start it like verl's own ``main_ppo``, with one of the shipped configs (or yours)::

    python -m branchgym.integrations.verl.recipe --config-name aepo_qwen3_8b_1node \\
        data.train_files=train.parquet data.val_files=val.parquet

It checks the config (:func:`~branchgym.integrations.verl.checks.check_config`) and verl's own
validation before Ray starts, then calls verl's ``run_ppo(config, task_runner_class=
BranchgymTaskRunner)``. The task runner is verl's ``TaskRunnerV1`` that picks this module's
trainer for the configured ``trainer.v1.trainer_mode`` (``sync`` -> ``branchgym_sync``, ...).
The trainer differs from verl's in ``_compute_advantage`` only:

1. with ``branchgym_algo.reward_source=env`` (default) each output's reward is its own
   ``extra_fields["branchgym_reward"]`` (verl gives a session's outputs its last output's);
2. ``branchgym_arpo_hard`` / ``branchgym_aepo`` / ``branchgym_empg`` are computed by
   :func:`branchgym.integrations.verl.advantage.compute_advantage` from the tree fields and
   verl's old-policy token entropies; every other estimator goes through verl's path.

Guide: docs/integrations/verl.md.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np
import ray
import transfer_queue as tq
from tensordict import TensorDict
from verl import DataProto
from verl.trainer.main_ppo import TaskRunnerV1, run_ppo
from verl.trainer.ppo.v1 import get_trainer_cls, register_trainer
from verl.workers.utils.padding import response_to_nested

from branchgym.integrations.verl import advantage as adv_step
from branchgym.integrations.verl.checks import RecipeSettings, check_config

__all__ = ["BranchgymAdvantageMixin", "BranchgymTaskRunner", "recipe_trainer_name", "main"]

_MODES = ("sync", "colocate_async", "separate_async")
_RECIPE_ONLY = ("branchgym_arpo_hard", "branchgym_aepo", "branchgym_empg")


def recipe_trainer_name(mode: str) -> str:
    """``"sync" -> "branchgym_sync"`` (the name registered in verl's trainer registry)."""
    return mode if mode.startswith("branchgym_") else f"branchgym_{mode}"


def _as_list(column: Any) -> list:
    return column.tolist() if hasattr(column, "tolist") else list(column)


class BranchgymAdvantageMixin:
    """verl's v1 ``PPOTrainer._compute_advantage`` with branchgym's rewards and estimators."""

    config: Any

    def _recipe_settings(self) -> RecipeSettings:
        return RecipeSettings.from_config(self.config)

    def _compute_advantage(self, batch: Any, metrics: dict) -> Any:
        settings = self._recipe_settings()
        if settings.reward_source == "env":
            self._put_env_rewards(batch, metrics)
        estimator = str(self.config.algorithm.adv_estimator)
        if estimator not in _RECIPE_ONLY:
            return super()._compute_advantage(batch, metrics)  # type: ignore[misc]
        return self._compute_recipe_advantage(batch, estimator, settings)

    def _put_env_rewards(self, batch: Any, metrics: dict) -> None:
        """Write each row's ``branchgym_reward`` into ``rm_scores`` (TransferQueue)."""
        td = tq.kv_batch_get(
            keys=batch.keys,
            partition_id=batch.partition_id,
            select_fields=["response_mask", "rm_scores", "extra_fields"],
        )
        extras = _as_list(td.pop("extra_fields"))
        nested_mask = td["response_mask"]
        padded = td.to_padded_tensor()
        data = DataProto(batch=padded)
        data.non_tensor_batch["extra_fields"] = np.array(extras, dtype=object)
        data.batch["token_level_scores"] = data.batch["rm_scores"]
        pad = [bool(t.get("is_padding", False)) for t in batch.tags]
        adv_step.env_rewards_into_scores(data, padding=pad)
        n_env = sum(adv_step.ENV_REWARD in e for e in extras)
        metrics["branchgym/rows_with_env_reward"] = float(n_env)
        out = TensorDict(
            {"rm_scores": response_to_nested(data.batch["token_level_scores"], nested_mask)},
            batch_size=len(batch),
        )
        tq.kv_batch_put(keys=batch.keys, partition_id=batch.partition_id, fields=out)

    def _compute_recipe_advantage(
        self, batch: Any, estimator: str, settings: RecipeSettings
    ) -> Any:
        td = tq.kv_batch_get(
            keys=batch.keys,
            partition_id=batch.partition_id,
            select_fields=["uid", "response_mask", "rm_scores", "entropy", "extra_fields"],
        )
        extras = _as_list(td.pop("extra_fields"))
        uids = _as_list(td.pop("uid"))
        nested_mask = td["response_mask"]
        data = DataProto(batch=td.to_padded_tensor())
        data.non_tensor_batch["uid"] = np.array(uids, dtype=object)
        data.non_tensor_batch["extra_fields"] = np.array(extras, dtype=object)
        data.batch["token_level_rewards"] = data.batch["rm_scores"].float()
        pad = [bool(t.get("is_padding", False)) for t in batch.tags]
        adv_step.compute_advantage(
            data,
            estimator,
            config=self.config.algorithm,
            params=settings.estimator_params,
            padding=pad,
        )
        out = TensorDict(
            {k: response_to_nested(data.batch[k], nested_mask) for k in ("advantages", "returns")},
            batch_size=len(batch),
        )
        return tq.kv_batch_put(keys=batch.keys, partition_id=batch.partition_id, fields=out)


def _register_trainers() -> None:
    from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY

    for mode in _MODES:
        name = recipe_trainer_name(mode)
        if name in TRAINER_REGISTRY:
            continue
        base = get_trainer_cls(mode)
        cls = type(f"Branchgym{base.__name__}", (BranchgymAdvantageMixin, base), {
            "__doc__": f"verl's {base.__name__} with branchgym's advantage step.",
            "__module__": __name__,
        })
        globals()[cls.__name__] = cls
        register_trainer(name)(cls)


_register_trainers()


class _BranchgymTaskRunner(TaskRunnerV1.__ray_actor_class__):  # type: ignore[name-defined]
    """verl's ``TaskRunnerV1`` that runs the recipe's trainer for the configured mode."""

    def run(self, config: Any) -> None:
        _register_trainers()  # this actor's process
        mode = str(config.trainer.v1.trainer_mode)
        config.trainer.v1.trainer_mode = recipe_trainer_name(mode)
        return super().run(config)


BranchgymTaskRunner = ray.remote(num_cpus=1)(_BranchgymTaskRunner)


def prepare(config: Any) -> RecipeSettings:
    """Every check that runs before Ray starts: branchgym's, then verl's own validation."""
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config
    from verl.utils.device import auto_set_device

    settings = check_config(config)
    auto_set_device(config)
    validate_config(
        config=config,
        use_reference_policy=need_reference_policy(config),
        use_critic=need_critic(config),
    )
    return settings


def main() -> None:
    """``python -m branchgym.integrations.verl.recipe [--config-name NAME] [key=value ...]``."""
    import hydra

    config_dir = os.path.join(os.path.dirname(__file__), "configs")

    @hydra.main(config_path=config_dir, config_name="grpo_qwen3_8b_1node", version_base=None)
    def _entry(config: Any) -> None:
        from branchgym.errors import Error

        try:
            prepare(config)
        except Error as exc:  # a config mistake: one line, before Ray or any model starts
            print(f"branchgym verl recipe: error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        run_ppo(config, task_runner_class=BranchgymTaskRunner)

    _entry()


if __name__ == "__main__":
    main()
