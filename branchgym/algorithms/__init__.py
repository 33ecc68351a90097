"""RL algorithms: advantages, policy losses, KL, aggregation, branching rules, tree expansion,
configs (docs/algorithms.md). Rollout drivers and the trainer come on top of these.

Nothing heavy is imported here: names resolve on first use (``branchgym._lazy``).
"""

from branchgym._lazy import lazy_exports

_R = "branchgym.algorithms.registry"
_C = "branchgym.algorithms.config"
_EXPORTS = {
    "ADVANTAGES": _R,
    "POLICY_LOSSES": _R,
    "KL_ESTIMATORS": _R,
    "AGGREGATIONS": _R,
    "AdvantageInputs": "branchgym.algorithms.inputs",
    "LossInputs": "branchgym.algorithms.inputs",
    "Needs": "branchgym.algorithms.inputs",
    "declare": "branchgym.algorithms.inputs",
    "agg_loss": "branchgym.algorithms.aggregation",
    "kl_estimate": "branchgym.algorithms.kl",
    "group_relative_advantages": "branchgym.algorithms.advantages",
    "entropy_aware_advantage": "branchgym.algorithms.advantages",
    "token_entropy": "branchgym.algorithms.entropy",
    "entropy_zscore": "branchgym.algorithms.entropy",
    "high_entropy_mask": "branchgym.algorithms.entropy",
    "overlong_penalty": "branchgym.algorithms.dapo",
    "dynamic_sampling_keep": "branchgym.algorithms.dapo",
    "segment_entropy": "branchgym.algorithms.branching",
    "arpo_branch_probability": "branchgym.algorithms.branching",
    "aepo_branch_probability": "branchgym.algorithms.branching",
    "pre_monitor_budget": "branchgym.algorithms.branching",
    "TreeNode": "branchgym.algorithms.tree",
    "hard_attribution": "branchgym.algorithms.tree",
    "TreeExpander": "branchgym.algorithms.expander",
    "SegmentReport": "branchgym.algorithms.expander",
    "RoundResult": "branchgym.algorithms.expander",
    # rollout drivers (branchgym.algorithms.rollout, built on the TreeExpander)
    "RolloutBatch": "branchgym.algorithms.rollout.batch",
    "flat_rollout": "branchgym.algorithms.rollout.flat",
    "tree_rollout": "branchgym.algorithms.rollout.tree",
    # trainer, SFT warm start, quickstart (algorithms part 2)
    "TrainConfig": "branchgym.algorithms.train_config",
    "load_train_config": "branchgym.algorithms.train_config",
    "Trainer": "branchgym.algorithms.trainer",
    "train": "branchgym.algorithms.trainer",
    "SFTConfig": "branchgym.algorithms.sft",
    "sft_train": "branchgym.algorithms.sft",
    "oracle_examples": "branchgym.algorithms.sft",
    "QuickstartConfig": "branchgym.algorithms.quickstart",
    "run_quickstart": "branchgym.algorithms.quickstart",
    "BranchConfig": _C,
    "GRPOConfig": _C,
    "ARPOConfig": _C,
    "AEPOConfig": _C,
    "EMPGConfig": _C,
    "EntropyMaskConfig": _C,
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
