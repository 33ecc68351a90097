"""A tree rollout survives code that makes every fork of its sandbox fail."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np

from branchgym.algorithms.config import BranchConfig
from branchgym.algorithms.rollout import tree_rollout
from branchgym.agents.policy import SamplingParams

# After this line the worker cannot receive a fork's connection: every clone of this env fails.
SABOTAGE = "import resource\nresource.setrlimit(resource.RLIMIT_NOFILE, (3, 3))\n"


class _Sabotaging:
    """The scripted code policy, whose python calls first lower the fd limit to 3."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def generate(self, prompts, params):
        out = []
        for c in self.inner.generate(prompts, params):
            if c.stop_string == "</python>":
                text = c.text.replace("<python>", "<python>" + SABOTAGE, 1)
                ids = self.inner.encode(text)
                c = dataclasses.replace(c, token_ids=ids, text=text, logprobs=[-1.0] * len(ids),
                                        entropies=[self.inner.rng.uniform(0.0, 3.0) for _ in ids])
            out.append(c)
        return out


def test_failed_clones_become_no_branch_and_are_counted(code_policy_factory) -> None:
    make = lambda: gym.make("CodeExec-Offline-v0", split="smoke", sandbox="local")  # noqa: E731
    env = make()
    tids = [env.unwrapped.tasks[0].id]
    env.close()
    cfg = BranchConfig(n=5, initial=2, weight=0.5)
    batch = tree_rollout(make, _Sabotaging(code_policy_factory(0)), tids,
                         SamplingParams(max_new_tokens=64, temperature=1.0), branch=cfg,
                         rng=np.random.default_rng(3), max_response_tokens=2048,
                         entropy_source="exact")
    assert batch.tree_stats["rollout/clone_failures"] >= 1
    assert batch.counts.get("clone_failures", 0) == batch.tree_stats["rollout/clone_failures"]
    assert batch.tree_stats["rollout/clones"] == batch.counts.get("clones", 0) == 0
    assert len(batch) == cfg.n  # rows padded from the trajectories that exist
    assert all(t.parent is None for t in batch.trajectories)
    assert all(t.steps for t in batch.trajectories)  # the episodes went on after the failures
