"""branchgym envs in TRL's ``GRPOTrainer`` (``pip install 'branchgym[trl]'``; docs/integrations/trl.md).

Two ways in, both through TRL's own arguments:

- :class:`BranchgymRollout` is a ``rollout_func``: branchgym's rollout engine (flat or tree
  rollouts, docs/rollout.md) plays the episodes with the trainer's model as the generator and
  hands TRL exact token ids, the rollout's log-probs, ``env_mask`` (0 on observation tokens) and
  the env reward, which the :func:`env_reward` reward function passes on.
- :func:`environment_class` builds an ``environment_factory`` class for TRL's own tool loop
  (hermes-style tool calls rendered by the chat template): one method per env tool plus
  ``answer``, ``reset()`` and ``get_reward()``.

Nothing here imports TRL at module import; the trainer is only touched through the object TRL
passes to the rollout function.
"""

from branchgym._lazy import lazy_exports

_EXPORTS = {
    "BranchgymRollout": "branchgym.integrations.trl.rollout",
    "TrainerGenerator": "branchgym.integrations.trl.rollout",
    "env_reward": "branchgym.integrations.trl.rollout",
    "task_dataset": "branchgym.integrations.trl.rollout",
    "environment_class": "branchgym.integrations.trl.tools",
    "ToolEnvironment": "branchgym.integrations.trl.tools",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
