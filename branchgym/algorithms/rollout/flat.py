"""Flat rollouts (GRPO and relatives, docs/algorithms.md): G independent trajectories per prompt.

Each of the ``G × len(task_ids)`` trajectories has its own env reset to its prompt's task with
``options={"task_id": ...}``; every round (:func:`branchgym.agents.loop.run_round`) generates one
segment for all live trajectories in one batched ``generate`` call, then runs their tool calls
concurrently (docs/rollout.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from branchgym.agents.loop import EntropySource, PhaseTimer, ToolExecutor, run_round
from branchgym.agents.policy import SamplingParams
from branchgym.algorithms.rollout.batch import RolloutBatch
from branchgym.algorithms.rollout.stepping import EpisodeFactory
from branchgym.errors import ConfigError

__all__ = ["flat_rollout"]


def flat_rollout(
    make_env: Callable[[], Any],
    policy: Any,
    task_ids: Sequence[str],
    params: SamplingParams,
    *,
    group_size: int,
    max_response_tokens: int = 1024,
    call_limit: int | None = None,
    max_rounds: int = 64,
    entropy_source: EntropySource = "exact",
    tool_workers: int | None = None,
) -> RolloutBatch:
    """Play ``group_size`` episodes of every task; rows are prompt-major.

    Args:
        make_env: builds one env (e.g. ``lambda: gym.make("WebSearch-Offline-v0")``) or
            :class:`~branchgym.envs.handle.EnvHandle`.
        policy: the generator (a :class:`~branchgym.agents.policy.TokenGenerator`).
        task_ids: one prompt per id (the env's split must contain them).
        params: sampling params (``n`` must be 1; stop strings come from the env's protocol).
        group_size: G.
        max_response_tokens: response budget per trajectory (model + tool tokens).
        call_limit: ARPO's per-trajectory tool-call limit (None: only the env's own limits).
        max_rounds: safety cap on generation rounds.
        tool_workers: tool calls run at once (default ``min(32, live trajectories)``; 1 runs
            them one after another).
    """
    if group_size < 1:
        raise ConfigError(f"group_size={group_size!r} must be ≥ 1 (GRPO uses 16).")
    if not task_ids:
        raise ConfigError("flat_rollout needs at least one task id.")
    timer = PhaseTimer()
    start = EpisodeFactory(make_env, policy, max_response_tokens=max_response_tokens, timer=timer)
    episodes = [start(tid) for tid in task_ids for _ in range(group_size)]
    for row, ep in enumerate(episodes):
        ep.trajectory.node_id = row
    tools = ToolExecutor(tool_workers)
    try:
        for _ in range(max_rounds):
            if all(e.done for e in episodes):
                break
            run_round(episodes, policy, params, call_limit=call_limit, timer=timer, entropy_source=entropy_source,
                      tools=tools)
    finally:
        tools.close()
        for e in episodes:
            if not e.done:
                e.trajectory.truncated, e.trajectory.end_reason = True, "max_rounds"
                e.handle.close()
    groups = [b for b in range(len(task_ids)) for _ in range(group_size)]
    return RolloutBatch(
        trajectories=[e.trajectory for e in episodes],
        group_ids=groups,
        task_ids=[task_ids[b] for b in groups],
        parent_rows=[-1] * len(episodes),
        branch_points=[0] * len(episodes),
        kind="flat",
        seconds=dict(timer.seconds),
        counts=dict(timer.counts),
        extra={"tool_spans": list(timer.tool_spans)},
    )
