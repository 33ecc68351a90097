"""Tree rollouts (docs/algorithms.md#arpo, #aepo): branch at high-entropy tool-call steps by
cloning the env.

Per prompt, N global trajectories start (AEPO: a pre-monitored m per prompt). Generation runs in
rounds: every active trajectory of every prompt generates one segment in one batched
``policy.generate`` call (stop strings, top-k logprobs); tool calls run through ``env.step`` and
their observation tokens are appended with loss mask 0. The
:class:`~branchgym.algorithms.expander.TreeExpander` then reads each segment's entropy H_seg and
decides the clones and refills (budget accounting, H_init/ΔH, AEPO's consecutive-branch
penalty all live there). A clone **clones the env** with :func:`branchgym.envs.clone` (the
python tool's sandbox session is forked: interpreter state and workspace files) and copies the
trajectory's tokens, masks and counters; it diverges at its next generation. Parent pointers
and branch points are kept on the trajectories and in the batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

import numpy as np

from branchgym.agents.loop import LiveEpisode, ToolExecutor, run_round
from branchgym.agents.policy import SamplingParams, generate_with
from branchgym.algorithms.config import BranchConfig
from branchgym.algorithms.rollout.batch import RolloutBatch
from branchgym.algorithms.rollout.flat import flat_rollout
from branchgym.algorithms.rollout.stepping import (
    EntropySource,
    EpisodeFactory,
    PhaseTimer,
    segment_entropy_of,
)
from branchgym.errors import ConfigError

__all__ = ["tree_rollout", "premonitor_initial"]


def _probe_entropies(
    episodes: Sequence[LiveEpisode], policy: Any, params: SamplingParams, tokens: int,
    source: EntropySource, timer: PhaseTimer, positions: int = 20,
) -> list[float]:
    """H_seg (first ≤ ``positions``) of ``tokens`` tokens sampled after each context; the tokens
    are discarded (the paper's "k tokens after the tool result", and AEPO's H_root probe)."""
    if not episodes:
        return []
    p = params.replace(max_new_tokens=tokens)
    t0 = time.perf_counter()
    comps = generate_with(policy, [e.context_ids for e in episodes], p)
    timer.add("generation", time.perf_counter() - t0)
    timer.count("probe_tokens", sum(len(c.token_ids) for c in comps))
    return [segment_entropy_of(c, policy.vocab_size, source, max_tokens=positions) for c in comps]


def premonitor_initial(
    make_env: Callable[[], Any],
    policy: Any,
    task_ids: Sequence[str],
    params: SamplingParams,
    *,
    n: int,
    beta: float = 0.5,
    m_rounding: str = "code_floor_plus_one",
    probe_tokens: int = 50,
    entropy_tokens: int = 20,
    max_response_tokens: int = 1024,
    call_limit: int | None = None,
    entropy_source: EntropySource = "exact",
    timer: PhaseTimer | None = None,
    tool_workers: int | None = None,
) -> list[int]:
    """AEPO entropy pre-monitoring (docs/algorithms.md#aepo): the number of global trajectories m
    per prompt.

    H_root is H_seg of a probe generation (≤``probe_tokens`` tokens, the first ``entropy_tokens``
    used); one full
    tool-using rollout per prompt (discarded) gives H_steps, the H_seg of each of its segments;
    ``m = pre_monitor_budget(n, H_root, H_steps)`` (⌊n·σ(β(H_root − mean H_steps))⌋ + 1 in the code).
    """
    from branchgym.agents.entropy import segment_entropy
    from branchgym.algorithms.branching import pre_monitor_budget

    timer = timer or PhaseTimer()
    t0 = time.perf_counter()
    start = EpisodeFactory(make_env, policy, max_response_tokens=max_response_tokens, timer=PhaseTimer())
    roots = [start(tid) for tid in task_ids]
    try:
        h_root = _probe_entropies(roots, policy, params, probe_tokens, entropy_source, timer, entropy_tokens)
    finally:
        for ep in roots:
            ep.handle.close()
    pre = flat_rollout(make_env, policy, task_ids, params, group_size=1, max_response_tokens=max_response_tokens,
                       call_limit=call_limit, entropy_source=entropy_source, tool_workers=tool_workers)
    out = []
    for b, traj in enumerate(pre.trajectories):
        steps = []
        for seg in traj.segments:
            if entropy_source == "topk" and seg.top_logprobs:
                steps.append(segment_entropy(seg.top_logprobs, policy.vocab_size, max_positions=entropy_tokens))
            else:
                steps.append(segment_entropy(traj.entropies[seg.start : seg.end], policy.vocab_size,
                                             max_positions=entropy_tokens))
        out.append(pre_monitor_budget(n, h_root[b], steps or h_root[b], beta=beta, m_rounding=m_rounding))  # type: ignore[arg-type]
    timer.add("premonitor", time.perf_counter() - t0)
    return out


def tree_rollout(
    make_env: Callable[[], Any],
    policy: Any,
    task_ids: Sequence[str],
    params: SamplingParams,
    *,
    branch: BranchConfig,
    rng: np.random.Generator,
    initial: int | Sequence[int] | None = None,
    max_response_tokens: int = 1024,
    call_limit: int | None = None,
    max_rounds: int = 64,
    entropy_source: EntropySource = "exact",
    entropy_tokens: int = 20,
    h_init_store: MutableMapping[int, float] | None = None,
    timer: PhaseTimer | None = None,
    tool_workers: int | None = None,
) -> RolloutBatch:
    """Grow one tree of ``branch.n`` trajectories per task; rows are prompt-major.

    Args:
        make_env: builds one env; each global trajectory gets a fresh one, each clone a
            :func:`branchgym.envs.clone` of its source's env.
        branch: the branch rule and budget (``ARPOConfig(...).branching`` / ``AEPOConfig``).
        rng: draws every branch decision's u (seeded → reproducible tree).
        initial: global trajectories per prompt (AEPO's pre-monitored m); default ``branch.initial``.
        entropy_source: ``"topk"`` (ARPO: top-k logprobs, needs ``params.logprobs_topk``) or
            ``"exact"`` (exact token entropies from the logits).
        entropy_tokens: positions of a segment H_seg reads (ARPO: 20), and k, the tokens of the
            paper's after-tool probe (``branch.entropy_probe="after_tool"``).
        h_init_store: the H_init dict kept across calls for ``h_init="code_stale_dict"``
        (docs/algorithms.md#arpo).
        tool_workers: tool calls run at once (default ``min(32, live trajectories)``; 1 runs
            them one after another). Clones are made on this thread, where the envs live.
    """
    from branchgym.algorithms.expander import SegmentReport, TreeExpander
    from branchgym.errors import SandboxError

    if not task_ids:
        raise ConfigError("tree_rollout needs at least one task id.")
    timer = timer or PhaseTimer()
    expander = TreeExpander(branch, len(task_ids), rng=rng, initial=initial, h_init_store=h_init_store)
    start = EpisodeFactory(make_env, policy, max_response_tokens=max_response_tokens, timer=timer)
    live: dict[int, LiveEpisode] = {}
    for node in expander.start():
        ep = start(task_ids[node.prompt])
        ep.trajectory.node_id = node.node_id
        live[node.node_id] = ep
    after_tool = branch.entropy_probe == "after_tool"
    tools = ToolExecutor(tool_workers)
    try:
        for _ in range(max_rounds):
            if expander.done:
                break
            active = expander.active
            eps = [live[j] for j in active]
            res = run_round(eps, policy, params, call_limit=call_limit, timer=timer,
                            entropy_source=entropy_source, tools=tools, entropy_tokens=entropy_tokens)
            probe: dict[int, float] = {}
            if after_tool:
                want = [j for i, j in enumerate(active) if res[i][2] and not live[j].done]
                hs = _probe_entropies([live[j] for j in want], policy, params, entropy_tokens, entropy_source, timer,
                                      entropy_tokens)
                probe = dict(zip(want, hs))
            reports = {
                j: SegmentReport(
                    entropy=res[i][1], finished=live[j].done,
                    num_tokens=len(live[j].trajectory.response_ids), probe_entropy=probe.get(j),
                )
                for i, j in enumerate(active)
            }
            result = expander.step(reports)
            for node in result.clones:
                t0 = time.perf_counter()
                try:
                    child = live[node.parent].fork()  # clones the env stack; sandbox session forked
                except SandboxError:  # the sandbox refused the fork (reason in the error): no branch here
                    expander.drop(node.node_id)
                    timer.count("clone_failures")
                    continue
                timer.add("clone", time.perf_counter() - t0)
                timer.count("clones")
                t = child.trajectory
                if t.branch_point != node.branch_point:  # internal invariant
                    raise AssertionError(f"branch point {t.branch_point} != expander's {node.branch_point}")
                t.node_id, t.parent = node.node_id, node.parent
                live[node.node_id] = child
            for node in result.refills:
                ep = start(task_ids[node.prompt])
                ep.trajectory.node_id = node.node_id
                live[node.node_id] = ep
                timer.count("refills")
        else:
            for j in expander.active:
                t = live[j].trajectory
                t.truncated, t.end_reason = True, "max_rounds"
    finally:
        tools.close()
        for ep in live.values():
            ep.handle.close()
    selection = expander.select()
    groups, parents, points = expander.tree_arrays(selection)
    rows = [live[j].trajectory for ids in selection for j in ids]
    return RolloutBatch(
        trajectories=rows,
        group_ids=groups,
        task_ids=[task_ids[g] for g in groups],
        parent_rows=parents,
        branch_points=points,
        kind="tree",
        seconds=dict(timer.seconds),
        counts=dict(timer.counts),
        tree_stats=expander.stats(),
        extra={"expander": expander, "tool_spans": list(timer.tool_spans)},
    )
