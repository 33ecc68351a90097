"""Round-by-round tree-expansion state machine for ARPO / AEPO rollouts.

Equations: docs/algorithms.md#arpo, #aepo. Given the same uniform draws the tree is the released
ARPO/AEPO loop's, node for node: prompts are visited in the order of their lowest active
trajectory, sources in creation order, one draw per clone slot (docs/algorithms.md#tree-replay).

A rollout loop drives it: it generates one segment for every active trajectory, executes the
tool calls, and reports per trajectory the segment entropy, whether it finished and its response
length; the expander answers which trajectories to clone (with parent and branch point) and
which new global trajectories to start. It owns the budget accounting (``count[b]`` never
exceeds n; at most ``z_extra`` clones per active source per round; one refill per round for a
prompt with no active trajectory), H_init / H_now bookkeeping, the consecutive-branch counter
and the final selection. It knows nothing about models, tokens or envs.

>>> import numpy as np
>>> from branchgym.algorithms.config import BranchConfig
>>> exp = TreeExpander(BranchConfig(n=3, initial=1), num_prompts=1, rng=np.random.default_rng(2))
>>> [node.node_id for node in exp.start()]
[0]
>>> res = exp.step({0: SegmentReport(entropy=0.3, finished=False, num_tokens=12)})
>>> [(c.parent, c.branch_point) for c in res.clones]
[(0, 12)]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from branchgym.algorithms.branching import (
    aepo_branch_probability,
    aepo_code_branch,
    arpo_branch_probability,
    arpo_code_branch,
    paper_branch,
    update_prompt_counters,
)
from branchgym.algorithms.config import BranchConfig
from branchgym.algorithms.tree import NodeKind, TreeNode
from branchgym.errors import ConfigError

__all__ = ["SegmentReport", "BranchDecision", "RoundResult", "TreeExpander"]


@dataclass(frozen=True)
class SegmentReport:
    """What the rollout loop observed for one active trajectory this round.

    ``entropy``: H_seg of the segment just generated (:func:`~branchgym.algorithms.branching.
    segment_entropy` over its first ≤20 positions). ``finished``: the trajectory ended this round
    (EOS/answer, call limit reached, response budget used up). ``num_tokens``: its response
    length now, tool result included — the branch point of a clone made this round.
    ``probe_entropy``: for ``entropy_probe="after_tool"`` (paper), H of the k tokens generated
    after the tool result; ``None`` when the segment did not end in a tool call (no decision then).
    """

    entropy: float
    finished: bool
    num_tokens: int
    probe_entropy: float | None = None


@dataclass(frozen=True)
class BranchDecision:
    """One branch opportunity: source node, ΔH, counter l, the draw u (or constant α), outcome.

    ``probability``: the chance this opportunity had of branching before u was drawn, the
    closed form of the rule (:func:`~branchgym.algorithms.branching.arpo_branch_probability`,
    :func:`~branchgym.algorithms.branching.aepo_branch_probability`; 0 or 1 for a constant α).
    Its mean is logged as ``rollout/branch_prob_mean`` next to the realised ``branch_rate``.
    """

    round: int
    source: int
    delta_h: float
    consecutive: int
    u: float
    branched: bool
    probability: float = math.nan


@dataclass(frozen=True)
class RoundResult:
    """The expander's answer for one round: clones to make, globals to start, who is active."""

    round: int
    clones: list[TreeNode]
    refills: list[TreeNode]
    finished: list[int]
    active: list[int]
    decisions: list[BranchDecision] = field(default_factory=list)


class TreeExpander:
    """Drive a tree rollout for ``num_prompts`` prompts under a :class:`BranchConfig`.

    ``initial``: global trajectories per prompt — an int for all, or one per prompt (AEPO's
    pre-monitored m); default ``config.initial``. ``rng`` draws every u ~ U[0,1) (one draw per
    branch opportunity, in creation order), so a seeded generator makes the tree reproducible.
    ``h_init_store``: only for ``h_init="code_stale_dict"``: the dict that outlives one call in
    the released code (keyed by creation index, never cleared); pass the same dict to successive
    expanders to reproduce the released code (docs/algorithms.md#arpo).

    Use: ``start()`` once, then ``step(reports)`` while ``not done``, then ``select()``.
    """

    def __init__(
        self,
        config: BranchConfig,
        num_prompts: int,
        *,
        rng: np.random.Generator,
        initial: int | Sequence[int] | None = None,
        h_init_store: MutableMapping[int, float] | None = None,
    ) -> None:
        if num_prompts < 1:
            raise ConfigError(f"num_prompts must be ≥ 1, got {num_prompts!r}.")
        if not isinstance(rng, np.random.Generator):
            raise ConfigError(
                f"rng must be a numpy Generator, got {type(rng).__name__}; "
                "use np.random.default_rng(seed)."
            )
        init = config.initial if initial is None else initial
        per_prompt = (
            [int(init)] * num_prompts
            if isinstance(init, int | np.integer)
            else [int(m) for m in init]
        )
        if len(per_prompt) != num_prompts or any(not 1 <= m <= config.n for m in per_prompt):
            raise ConfigError(
                f"initial must be an int or {num_prompts} ints, each in [1, n={config.n}]; "
                f"got {init!r}."
            )
        self.config = config
        self.num_prompts = num_prompts
        self.rng = rng
        self.initial = per_prompt
        self.nodes: list[TreeNode] = []
        self.count = [0] * num_prompts
        self.round = 0
        self._active: list[int] = []
        self._started = False
        self.h_now: dict[int, float] = {}
        self.h_init: MutableMapping[int, float] = h_init_store if h_init_store is not None else {}
        self._stale = config.h_init == "code_stale_dict"
        self.prompt_counter = [0] * num_prompts  # l_b (per_prompt_round)
        self.path_counter: dict[int, int] = {}  # l per node (per_path)
        self.length: dict[int, int] = {}  # last reported response length per node
        self.decisions: list[BranchDecision] = []
        self.dropped: set[int] = set()  # clones whose env could not be cloned (see drop())

    # -- creation ---------------------------------------------------------------------------
    def _new(self, prompt: int, parent: int | None, branch_point: int, kind: NodeKind) -> TreeNode:
        if self.count[prompt] >= self.config.n:  # internal invariant, never user input
            raise AssertionError(f"budget exceeded for prompt {prompt}")
        depth = 0 if parent is None else self.nodes[parent].depth + 1
        if self.config.penalty_counter == "per_path":
            consecutive = 0 if parent is None else self.path_counter.get(parent, 0)
        else:
            consecutive = self.prompt_counter[prompt]
        node = TreeNode(
            len(self.nodes), prompt, parent, branch_point, depth, consecutive, self.round, kind
        )
        self.nodes.append(node)
        self.count[prompt] += 1
        self.path_counter[node.node_id] = consecutive
        self.length[node.node_id] = branch_point
        if parent is not None and not self._stale and parent in self.h_init:
            self.h_init[node.node_id] = self.h_init[
                parent
            ]  # per trajectory: the clone shares the prefix
        return node

    def start(self) -> list[TreeNode]:
        """Create the initial global trajectories, prompt-major, and return them."""
        if self._started:
            raise ConfigError(
                "TreeExpander.start() was already called; make a new expander per batch."
            )
        self._started = True
        created = [
            self._new(b, None, 0, "global")
            for b in range(self.num_prompts)
            for _ in range(self.initial[b])
        ]
        self._active = [n.node_id for n in created]
        return created

    @property
    def active(self) -> list[int]:
        """Active node ids in creation order."""
        return list(self._active)

    @property
    def done(self) -> bool:
        return self._started and not self._active

    # -- one round --------------------------------------------------------------------------
    def _measure(self, node: int, report: SegmentReport) -> float | None:
        """Record H_now / H_init for ``node``; return ΔH, or None if there is no decision."""
        if self.config.entropy_probe == "after_tool":
            if node not in self.h_init:  # first segment of the trajectory: its first k tokens
                self.h_init[node] = float(report.entropy)
            if report.probe_entropy is None:
                return None
            self.h_now[node] = float(report.probe_entropy)
        else:
            self.h_now[node] = float(report.entropy)
            if node not in self.h_init:
                self.h_init[node] = float(report.entropy)
        return self.h_now[node] - self.h_init[node]

    def _decide(self, source: int, delta_h: float, consecutive: int) -> tuple[float, bool, float]:
        """(u, branched, closed-form probability) of one opportunity; one draw of ``rng``."""
        c = self.config
        if c.rule == "paper":
            u = float(self.rng.random()) if c.alpha == "uniform" else float(c.alpha)
            branched = paper_branch(
                u, delta_h, consecutive, tau=c.tau, weight=c.weight, penalty=c.penalty
            )
            if c.alpha != "uniform":
                return u, branched, float(branched)
            # (α + wΔH)·f > τ with α ~ U[0,1) has AEPO's closed form (λ = 0: 1 − τ + wΔH)
            return u, branched, aepo_branch_probability(
                delta_h, consecutive, tau=c.tau, weight=c.weight, penalty=c.penalty
            )
        u = float(self.rng.random())
        if c.rule == "arpo_code":
            return (
                u,
                arpo_code_branch(u, delta_h, tau=c.tau, weight=c.weight),
                arpo_branch_probability(delta_h, tau=c.tau, weight=c.weight),
            )
        return (
            u,
            aepo_code_branch(u, delta_h, consecutive, tau=c.tau, weight=c.weight, penalty=c.penalty),
            aepo_branch_probability(
                delta_h, consecutive, tau=c.tau, weight=c.weight, penalty=c.penalty
            ),
        )

    def step(self, reports: Mapping[int, SegmentReport]) -> RoundResult:
        """Apply one generation round: ``reports`` has one entry per active node id."""
        if not self._started:
            raise ConfigError("call TreeExpander.start() before step().")
        if set(reports) != set(self._active):
            missing = sorted(set(self._active) - set(reports))
            extra = sorted(set(reports) - set(self._active))
            raise ConfigError(
                f"round {self.round + 1}: reports must cover exactly the active nodes "
                f"{self._active}; "
                f"missing {missing}, not active {extra}."
            )
        for node in self._active:  # validate everything before changing any state
            report = reports[node]
            if report.num_tokens < self.length[node]:
                raise ConfigError(
                    f"node {node}: num_tokens={report.num_tokens} is below its previous length "
                    f"{self.length[node]}; report the whole response length so far."
                )
            values = (report.entropy, report.probe_entropy)
            if any(v is not None and not math.isfinite(v) for v in values):
                raise ConfigError(
                    f"node {node}: entropy={report.entropy!r}, probe_entropy="
                    f"{report.probe_entropy!r} must be finite numbers (segment_entropy of the "
                    "segment's top-k logprobs)."
                )
        self.round += 1
        c = self.config
        delta: dict[int, float | None] = {}
        for node in self._active:
            self.length[node] = int(reports[node].num_tokens)
            delta[node] = self._measure(node, reports[node])
        finished = [j for j in self._active if reports[j].finished]
        survivors = [j for j in self._active if not reports[j].finished]
        by_prompt: dict[int, list[int]] = {}
        for j in survivors:  # creation order is kept within each prompt
            by_prompt.setdefault(self.nodes[j].prompt, []).append(j)

        clones: list[TreeNode] = []
        decisions: list[BranchDecision] = []
        received = [False] * self.num_prompts
        # Prompts in the order of their lowest active trajectory (``by_prompt`` was filled
        # walking the ascending active list), as the released loop visits them: the draws
        # then go to the same sources in the same order.
        for b in by_prompt:
            remaining = c.n - self.count[b]
            if remaining <= 0 or c.z_extra == 0:
                continue
            created_b = 0
            for src in by_prompt.get(b, []):
                d_h = delta[src]
                if d_h is None:
                    continue
                if created_b >= remaining:
                    break
                l_src = (
                    self.path_counter[src]
                    if c.penalty_counter == "per_path"
                    else self.prompt_counter[b]
                )
                branched_any = False
                for _ in range(min(c.z_extra, remaining - created_b)):
                    u, branch, prob = self._decide(src, d_h, l_src)
                    decisions.append(BranchDecision(self.round, src, d_h, l_src, u, branch, prob))
                    if not branch:
                        continue
                    if c.penalty_counter == "per_path" and not branched_any:
                        self.path_counter[src] = l_src + 1
                    branched_any = True
                    clones.append(self._new(b, src, self.length[src], "clone"))
                    created_b += 1
                    received[b] = True
                if c.penalty_counter == "per_path" and not branched_any:
                    self.path_counter[src] = 0

        refills: list[TreeNode] = []
        if c.refill:
            for b in range(self.num_prompts):
                has_active = b in by_prompt or received[b]
                if not has_active and self.count[b] < c.n:
                    refills.append(self._new(b, None, 0, "refill"))
                    received[b] = True
        if c.penalty_counter == "per_prompt_round":
            self.prompt_counter = update_prompt_counters(self.prompt_counter, received)

        self._active = sorted(
            survivors + [n.node_id for n in clones] + [n.node_id for n in refills]
        )
        self.decisions.extend(decisions)
        return RoundResult(self.round, clones, refills, finished, self.active, decisions)

    def drop(self, node_id: int) -> None:
        """Cancel a clone that could not be made (e.g. the sandbox refused to fork): no branch
        here. It leaves the active set and gives its budget back; ``select`` skips it."""
        node = self.nodes[node_id]
        if node.kind != "clone" or node_id in self.dropped:
            raise ConfigError(f"drop({node_id}): only a clone can be dropped, once; it is a "
                              f"{node.kind}{' already dropped' if node_id in self.dropped else ''}")
        if node_id in self._active:
            self._active.remove(node_id)
        self.count[node.prompt] -= 1
        self.dropped.add(node_id)

    # -- results ----------------------------------------------------------------------------
    def select(self) -> list[list[int]]:
        """Per prompt, the first n node ids in creation order; if fewer, the last is repeated."""
        out: list[list[int]] = []
        for b in range(self.num_prompts):
            ids = [n.node_id for n in self.nodes
                   if n.prompt == b and n.node_id not in self.dropped][: self.config.n]
            out.append(ids + [ids[-1]] * (self.config.n - len(ids)))
        return out

    def tree_arrays(
        self, selection: Sequence[Sequence[int]] | None = None
    ) -> tuple[list[int], list[int], list[int]]:
        """Flatten a selection into rows: (group id, parent row or −1, branch point) per row.

        The result feeds ``AdvantageInputs.group_ids / parent_ids / branch_points`` for hard
        attribution. A repeated (padding) row points at its first copy with its full length as
        branch point, so it shares every token with it.
        """
        selection = self.select() if selection is None else selection
        groups: list[int] = []
        parents: list[int] = []
        points: list[int] = []
        for b, ids in enumerate(selection):
            row_of: dict[int, int] = {}
            for node_id in ids:
                row = len(groups)
                node = self.nodes[node_id]
                groups.append(b)
                if node_id in row_of:  # padding duplicate
                    parents.append(row_of[node_id])
                    points.append(self.length[node_id])
                    continue
                row_of[node_id] = row
                if node.parent is None:
                    parents.append(-1)
                    points.append(0)
                else:
                    parents.append(row_of[node.parent])
                    points.append(node.branch_point)
        return groups, parents, points

    def stats(self) -> dict[str, float]:
        """Counts for metrics: trajectories, clones, refills, decisions, branch rate, max depth."""
        clones = sum(n.kind == "clone" for n in self.nodes) - len(self.dropped)
        return {
            "rollout/clone_failures": float(len(self.dropped)),
            "rollout/trajectories": float(len(self.nodes) - len(self.dropped)),
            "rollout/clones": float(clones),
            "rollout/refills": float(sum(n.kind == "refill" for n in self.nodes)),
            "rollout/branch_decisions": float(len(self.decisions)),
            "rollout/branch_rate": clones / len(self.decisions) if self.decisions else 0.0,
            "rollout/branch_prob_mean": (
                sum(d.probability for d in self.decisions) / len(self.decisions)
                if self.decisions
                else 0.0
            ),
            "rollout/max_depth": float(max((n.depth for n in self.nodes
                                            if n.node_id not in self.dropped), default=0)),
            "rollout/rounds": float(self.round),
        }
