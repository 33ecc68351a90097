"""Start-up checks of a verl config that uses branchgym's names (run before any model loads).

:func:`check_config` reads plain mappings (an OmegaConf ``DictConfig`` works) and raises a
:class:`~branchgym.errors.ConfigError` that names the conflicting settings and the fix. It
imports neither verl nor torch. The rules, and why each combination cannot work, are listed in
docs/integrations/verl.md#start-up-checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from branchgym.errors import ConfigError
from branchgym.fields import ranged

__all__ = ["RecipeSettings", "check_config", "agents_in_files", "SECTION"]

#: Root section of the verl config read by the recipe (the agent loops read ``branchgym``).
SECTION = "branchgym_algo"

_PREFIX = "branchgym_"
_TREE_AGENT = "branchgym_tree"
_LOSSES = ("branchgym_aepo", "branchgym_gppo")
#: estimators the recipe's trainer computes (they read the tree or the token entropies).
_RECIPE_ONLY = ("branchgym_arpo_hard", "branchgym_aepo", "branchgym_empg")
_TREE_ONLY = ("branchgym_arpo_hard",)
#: verl estimators that, in the v1 trainer, score only each session's last output.
_FINAL_OUTPUT_ONLY = ("grpo",)


@dataclass(frozen=True)
class RecipeSettings:
    """The ``branchgym_algo`` section of a verl config (the recipe's own knobs)."""

    reward_source: Literal["env", "verl"] = ranged("env", choices=("env", "verl"))
    """``env``: each output's ``extra_fields["branchgym_reward"]`` (every leaf its own reward);
    ``verl``: verl's ``rm_scores`` (one reward per session, its last output's)."""
    estimator_params: dict[str, Any] = field(default_factory=dict)
    """Keyword hyperparameters of the branchgym estimator (e.g. ``{weight: 0.2}`` for
    ``branchgym_aepo``, ``{k: 1.0, zeta: 0.1}`` for ``branchgym_empg``)."""

    def __post_init__(self) -> None:
        from branchgym.fields import validate

        validate(self)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RecipeSettings:
        section = _plain(config.get(SECTION)) or {}
        if not isinstance(section, Mapping):
            raise ConfigError(f"{SECTION} must be a mapping of recipe settings, got {section!r}")
        known = {"reward_source", "estimator_params"}
        unknown = sorted(set(section) - known)
        if unknown:
            raise ConfigError(f"unknown {SECTION} keys {unknown}; known: {sorted(known)}")
        return cls(**{k: _plain(v) for k, v in section.items()})


def _plain(v: Any) -> Any:
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf
    except ImportError:  # pragma: no cover - omegaconf comes with verl
        return v
    if isinstance(v, (DictConfig, ListConfig)):
        return OmegaConf.to_container(v, resolve=True)
    return v


def _get(config: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) and not hasattr(node, "get"):
            return default
        node = node.get(part, None)
        if node is None:
            return default
    return node


def agents_in_files(files: Any) -> set[str]:
    """The ``agent_name`` values of local parquet files (unreadable or remote paths: none)."""
    paths = [files] if isinstance(files, str) else list(_plain(files) or [])
    names: set[str] = set()
    for p in paths:
        if not isinstance(p, str) or not Path(p).is_file():
            continue
        try:
            import pyarrow.parquet as pq

            table = pq.read_table(p, columns=["agent_name"])
        except Exception:  # no column, not parquet: the dataset loader reports it later
            continue
        names.update(str(x) for x in table.column("agent_name").to_pylist() if x is not None)
    return names


def _agents(config: Mapping[str, Any]) -> set[str]:
    found = agents_in_files(_get(config, "data.train_files"))
    if found:
        return found
    default = _get(config, "actor_rollout_ref.rollout.agent.default_agent_loop")
    return {str(default)} if default else set()


def check_config(
    config: Mapping[str, Any], *, agents: Iterable[str] | None = None
) -> RecipeSettings:
    """Refuse a verl config whose branchgym loss, estimator and agent loop cannot work together.

    ``agents``: the agent loops of the training data (default: the ``agent_name`` column of the
    local ``data.train_files``, else ``rollout.agent.default_agent_loop``). Returns the recipe's
    settings.
    """
    settings = RecipeSettings.from_config(config)
    est = str(_get(config, "algorithm.adv_estimator", "gae"))
    loss = str(_get(config, "actor_rollout_ref.actor.policy_loss.loss_mode", "vanilla"))
    used = set(agents) if agents is not None else _agents(config)
    tree = _TREE_AGENT in used

    if est.startswith(_PREFIX) and est not in _known_estimators():
        raise ConfigError(
            f"algorithm.adv_estimator={est} is not a branchgym estimator; use one of "
            f"{sorted(_known_estimators())}."
        )
    if loss.startswith(_PREFIX) and loss not in _LOSSES:
        raise ConfigError(
            f"actor_rollout_ref.actor.policy_loss.loss_mode={loss} is not a branchgym loss; use "
            f"one of {list(_LOSSES)}."
        )
    if est in _FINAL_OUTPUT_ONLY and tree:
        raise ConfigError(
            f"policy_loss.loss_mode={loss} with algorithm.adv_estimator={est} on branchgym_tree "
            f"data cannot work: verl's {est} takes the group statistics over the LAST output of "
            "each session and copies that advantage to the session's other outputs, so every "
            f"leaf of a tree would be trained with one leaf's advantage. Set "
            f"algorithm.adv_estimator=branchgym_grpo (the same GRPO over every leaf)"
            + (" or branchgym_aepo (AEPO's entropy-aware advantage)." if loss == "branchgym_aepo"
               else ".")
        )
    if est in _TREE_ONLY and used and not tree:
        raise ConfigError(
            f"algorithm.adv_estimator={est} shares each prefix's advantage over the rows of a "
            f"rollout tree, but the data's agent loops are {sorted(used)} (no tree); build the "
            "data with `branchgym verl-data ... --agent branchgym_tree`, or use branchgym_grpo."
        )
    if est in _RECIPE_ONLY:
        if _get(config, "algorithm.use_kl_in_reward", False):
            raise ConfigError(
                f"algorithm.adv_estimator={est} with algorithm.use_kl_in_reward=True: the recipe "
                "computes this estimator from the outcome rewards and puts no KL in them; set "
                "algorithm.use_kl_in_reward=False (actor_rollout_ref.actor.use_kl_loss=True adds "
                "a KL term to the loss instead)."
            )
        if _get(config, "algorithm.rollout_correction.bypass_mode", False):
            raise ConfigError(
                f"algorithm.adv_estimator={est} reads the old policy's token entropies, which "
                "verl skips computing with algorithm.rollout_correction.bypass_mode=True; set "
                "it to False."
            )
        for knob in ("rollout_is", "rollout_rs"):
            if _get(config, f"algorithm.rollout_correction.{knob}") is not None:
                raise ConfigError(
                    f"algorithm.adv_estimator={est} with algorithm.rollout_correction.{knob} "
                    "set: the recipe computes this estimator itself and does not apply verl's "
                    f"rollout correction; set algorithm.rollout_correction.{knob}=null, or use "
                    "branchgym_grpo (computed on verl's path, correction included)."
                )
    return settings


def _known_estimators() -> set[str]:
    from branchgym.algorithms.registry import ADVANTAGES

    return {_PREFIX + n for n in ADVANTAGES}
