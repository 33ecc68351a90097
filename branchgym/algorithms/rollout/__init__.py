"""Rollouts: ``flat_rollout`` (G independent trajectories per prompt) and ``tree_rollout``
(ARPO/AEPO branching by env cloning), both driven by the engine's one round loop
(:func:`branchgym.agents.loop.run_round`; docs/rollout.md).

Nothing heavy is imported here: names resolve on first use (``branchgym._lazy``).
"""

from branchgym._lazy import lazy_exports

_EXPORTS = {
    "RolloutBatch": "branchgym.algorithms.rollout.batch",
    "flat_rollout": "branchgym.algorithms.rollout.flat",
    "tree_rollout": "branchgym.algorithms.rollout.tree",
    "premonitor_initial": "branchgym.algorithms.rollout.tree",
    "PhaseTimer": "branchgym.agents.loop",
    "ToolExecutor": "branchgym.agents.loop",
    "run_round": "branchgym.agents.loop",
    "segment_entropy_of": "branchgym.agents.loop",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
