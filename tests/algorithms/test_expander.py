"""TreeExpander driven by scripted segments: budgets, counts, creation order, refill, selection,
counters, H_init modes, determinism, and branch frequency against the closed form (V6)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable

import numpy as np
import pytest

from branchgym.algorithms.branching import aepo_branch_probability, arpo_branch_probability
from branchgym.algorithms.config import BranchConfig
from branchgym.algorithms.expander import SegmentReport, TreeExpander
from branchgym.errors import ConfigError

Script = Callable[[TreeExpander, int, int], SegmentReport]


def drive(exp: TreeExpander, script: Script, max_rounds: int = 200) -> list:
    """Run the expander to completion; check the invariants after every round."""
    exp.start()
    results = []
    lengths: dict[int, int] = {}
    while not exp.done:
        assert exp.round < max_rounds
        before = list(exp.active)
        reports = {}
        for node in before:
            rep = script(exp, node, exp.round + 1)
            lengths[node] = rep.num_tokens
            reports[node] = rep
        res = exp.step(reports)
        results.append(res)
        # budget: never more than n per prompt, at most z_extra clones per source per round
        assert all(c <= exp.config.n for c in exp.count)
        per_src = defaultdict(int)
        for clone in res.clones:
            per_src[clone.parent] += 1
            assert clone.parent in before and not reports[clone.parent].finished
            assert clone.branch_point == reports[clone.parent].num_tokens
            assert exp.nodes[clone.parent].prompt == clone.prompt
            assert clone.depth == exp.nodes[clone.parent].depth + 1
        assert all(v <= exp.config.z_extra for v in per_src.values())
        # refills only for prompts with no active trajectory, at most one per prompt per round
        refill_prompts = [r.prompt for r in res.refills]
        assert len(refill_prompts) == len(set(refill_prompts))
        for b in refill_prompts:
            assert not any(exp.nodes[j].prompt == b for j in before if not reports[j].finished)
        ids = [n.node_id for n in exp.nodes]
        assert ids == list(range(len(ids)))  # creation order
    return results


def growing(finish_after: int, seg: int = 5) -> Script:
    """Each trajectory makes tool calls for ``finish_after`` rounds after creation, then ends."""

    def script(exp: TreeExpander, node: int, rnd: int) -> SegmentReport:
        n = exp.nodes[node]
        age = rnd - n.round
        return SegmentReport(
            entropy=0.1 * (node % 7),
            finished=age >= finish_after,
            num_tokens=n.branch_point + seg * age,
        )

    return script


@pytest.mark.parametrize("rule", ["arpo_code", "aepo_code"])
def test_budget_filled_exactly_and_counts(rule: str) -> None:
    cfg = BranchConfig(
        n=8, initial=3, z_extra=1, rule=rule, penalty=0.05 if rule == "aepo_code" else 0.0
    )
    exp = TreeExpander(cfg, num_prompts=4, rng=np.random.default_rng(0))
    drive(exp, growing(3))
    assert exp.count == [8] * 4
    sel = exp.select()
    assert all(len(ids) == 8 and ids == sorted(ids) and len(set(ids)) == 8 for ids in sel)
    kinds = {k: sum(n.kind == k for n in exp.nodes) for k in ("global", "clone", "refill")}
    assert kinds["global"] == 12 and kinds["clone"] + kinds["refill"] == 20
    stats = exp.stats()
    assert stats["rollout/trajectories"] == 32 and stats["rollout/clones"] == kinds["clone"]


def test_z_extra_three_and_no_branching_when_zero() -> None:
    exp = TreeExpander(
        BranchConfig(n=16, initial=2, z_extra=3), num_prompts=2, rng=np.random.default_rng(3)
    )
    results = drive(exp, growing(4))
    assert (
        max(
            (
                sum(c.parent == p for c in r.clones)
                for r in results
                for p in {c.parent for c in r.clones}
            ),
            default=0,
        )
        <= 3
    )
    assert exp.count == [16, 16]
    flat = TreeExpander(
        BranchConfig(n=4, initial=2, z_extra=0), num_prompts=1, rng=np.random.default_rng(0)
    )
    drive(flat, growing(2))
    assert [n.kind for n in flat.nodes] == ["global", "global", "refill", "refill"]
    assert not flat.decisions


def test_refill_one_global_per_round_when_nothing_is_active() -> None:
    exp = TreeExpander(BranchConfig(n=4, initial=1), num_prompts=1, rng=np.random.default_rng(0))
    results = drive(exp, growing(1))  # every trajectory finishes in its first round: no sources
    assert [n.kind for n in exp.nodes] == ["global", "refill", "refill", "refill"]
    assert [len(r.refills) for r in results] == [1, 1, 1, 0]


def test_determinism_with_a_seed() -> None:
    def tree(seed: int) -> list[tuple]:
        exp = TreeExpander(
            BranchConfig(n=10, initial=4), num_prompts=3, rng=np.random.default_rng(seed)
        )
        drive(exp, growing(4))
        return [(n.node_id, n.prompt, n.parent, n.branch_point, n.round) for n in exp.nodes]

    assert tree(7) == tree(7)
    assert tree(7) != tree(8)


def test_selection_pads_with_the_last_trajectory_and_tree_arrays() -> None:
    exp = TreeExpander(BranchConfig(n=5, initial=2), num_prompts=2, rng=np.random.default_rng(2))
    exp.start()  # stop before any round: 2 of 5 per prompt
    exp.step(
        {
            0: SegmentReport(0.2, True, 7),
            1: SegmentReport(0.2, True, 9),
            2: SegmentReport(0.2, True, 3),
            3: SegmentReport(0.2, True, 4),
        }
    )
    sel = exp.select()
    assert sel == [[0, 1, 4, 4, 4], [2, 3, 5, 5, 5]]  # refills 4 and 5, then padding
    groups, parents, points = exp.tree_arrays(sel)
    assert groups == [0] * 5 + [1] * 5
    assert parents[:4] == [-1, -1, -1, 2] and parents[4] == 2  # duplicates point at the first copy
    assert points[3] == exp.length[4]


def test_per_prompt_round_counter_and_penalty_used() -> None:
    cfg = BranchConfig(n=30, initial=1, z_extra=1, rule="aepo_code", penalty=0.05)
    exp = TreeExpander(cfg, num_prompts=2, rng=np.random.default_rng(11))
    results = drive(exp, growing(6))
    assert any(d.consecutive > 0 for r in results for d in r.decisions)
    # replay the counter rule from the round results
    counters = [0, 0]
    for res in results:
        for d in res.decisions:
            assert d.consecutive == counters[exp.nodes[d.source].prompt]
        received = [any(n.prompt == b for n in res.clones + res.refills) for b in range(2)]
        if any(received):
            counters = [c + 1 if r else 0 for c, r in zip(counters, received, strict=False)]


def test_per_path_counter_increments_on_branch_and_resets() -> None:
    cfg = BranchConfig(
        n=50,
        initial=1,
        z_extra=1,
        rule="paper",
        alpha=0.9,
        penalty=0.05,
        penalty_counter="per_path",
    )
    exp = TreeExpander(cfg, num_prompts=1, rng=np.random.default_rng(0))
    exp.start()
    # alpha 0.9, ΔH 0: 0.9 (1 - 0.05 l) > 0.5 iff l <= 8: node 0 branches 9 times, fails at l = 9,
    # and the failure resets its counter
    for rnd in range(1, 12):
        exp.step({j: SegmentReport(0.3, j != 0, 10 * rnd) for j in exp.active})
    decisions = [d for d in exp.decisions if d.source == 0]
    assert [d.consecutive for d in decisions] == list(range(10)) + [0]
    assert [d.branched for d in decisions] == [True] * 9 + [False, True]
    first_clone = next(n for n in exp.nodes if n.parent == 0)
    assert first_clone.consecutive == 1  # the clone inherits the incremented path counter


def test_h_init_modes() -> None:
    # per_trajectory: a clone inherits its parent's H_init; code_stale_dict: a fresh key per node.
    for mode, expected_clone_dh in (("per_trajectory", 0.5), ("code_stale_dict", 0.0)):
        cfg = BranchConfig(n=3, initial=1, rule="paper", alpha=1.0, tau=0.5, h_init=mode)
        exp = TreeExpander(cfg, num_prompts=1, rng=np.random.default_rng(0))
        exp.start()
        exp.step({0: SegmentReport(0.2, False, 5)})  # H_init[0] = 0.2, branches (alpha 1 > tau)
        exp.step({0: SegmentReport(0.2, True, 9), 1: SegmentReport(0.7, False, 12)})
        d = [x for x in exp.decisions if x.source == 1][0]
        assert d.delta_h == pytest.approx(expected_clone_dh)
    # the released code's dict outlives a call: the next batch's node 0 sees a stale H_init
    store: dict[int, float] = {}
    cfg = BranchConfig(n=2, initial=1, h_init="code_stale_dict")
    first = TreeExpander(cfg, num_prompts=1, rng=np.random.default_rng(0), h_init_store=store)
    first.start()
    first.step({0: SegmentReport(1.0, True, 4)})
    second = TreeExpander(cfg, num_prompts=1, rng=np.random.default_rng(0), h_init_store=store)
    second.start()
    second.step({0: SegmentReport(3.0, False, 4)})
    assert second.decisions[0].delta_h == pytest.approx(2.0)


def test_after_tool_probe_entropy() -> None:
    cfg = BranchConfig(
        n=3, initial=1, entropy_probe="after_tool", rule="paper", alpha=0.5, tau=0.5, weight=1.0
    )
    exp = TreeExpander(cfg, num_prompts=1, rng=np.random.default_rng(0))
    exp.start()
    res = exp.step({0: SegmentReport(0.4, False, 6, probe_entropy=0.5)})  # ΔH = 0.1 -> 0.6 > 0.5
    assert len(res.clones) == 1 and res.decisions[0].delta_h == pytest.approx(0.1)
    res = exp.step(
        {0: SegmentReport(0.9, False, 9), 1: SegmentReport(0.4, False, 8, probe_entropy=0.3)}
    )
    assert [d.source for d in res.decisions] == [1]  # no probe -> no decision for node 0
    assert res.decisions[0].delta_h == pytest.approx(-0.1)  # the clone inherited H_init 0.4


def test_initial_per_prompt_from_pre_monitoring() -> None:
    exp = TreeExpander(
        BranchConfig(n=6, initial=2), num_prompts=3, rng=np.random.default_rng(0), initial=[1, 6, 3]
    )
    created = exp.start()
    assert [n.prompt for n in created] == [0] + [1] * 6 + [2] * 3
    drive_exp = TreeExpander(
        BranchConfig(n=6, initial=2), num_prompts=3, rng=np.random.default_rng(0), initial=[1, 6, 3]
    )
    drive(drive_exp, growing(3))
    assert drive_exp.count == [6, 6, 6]
    assert not any(n.prompt == 1 and n.kind != "global" for n in drive_exp.nodes)


def test_errors_name_the_problem() -> None:
    cfg = BranchConfig(n=4, initial=2)
    with pytest.raises(ConfigError, match="Generator"):
        TreeExpander(cfg, 1, rng=np.random.RandomState(0))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="initial"):
        TreeExpander(cfg, 2, rng=np.random.default_rng(0), initial=[1, 9])
    exp = TreeExpander(cfg, 1, rng=np.random.default_rng(0))
    with pytest.raises(ConfigError, match="start"):
        exp.step({})
    exp.start()
    with pytest.raises(ConfigError, match="missing"):
        exp.step({0: SegmentReport(0.1, False, 3)})
    with pytest.raises(ConfigError, match="num_tokens"):
        exp.step({0: SegmentReport(0.1, False, 3), 1: SegmentReport(0.1, False, -1)})
    with pytest.raises(ConfigError, match="finite"):
        exp.step({0: SegmentReport(float("nan"), False, 3), 1: SegmentReport(0.1, False, 3)})
    # a rejected round changes nothing: the same round can be replayed with good reports
    assert exp.round == 0 and exp.length == {0: 0, 1: 0} and not exp.h_init
    res = exp.step({0: SegmentReport(0.1, False, 3), 1: SegmentReport(0.1, False, 4)})
    assert res.round == 1
    with pytest.raises(ConfigError, match="already"):
        exp.start()


@pytest.mark.parametrize(
    ("rule", "dh"), [("arpo_code", 0.5), ("arpo_code", -1.0), ("aepo_code", 1.0)]
)
def test_branch_frequency_matches_closed_form(rule: str, dh: float) -> None:
    """V6 through the state machine: ΔH fixed by the probe; frequency per counter value l."""
    cfg = BranchConfig(
        n=6,
        initial=1,
        z_extra=1,
        rule=rule,
        penalty=0.05 if rule == "aepo_code" else 0.0,
        entropy_probe="after_tool",
    )
    exp = TreeExpander(cfg, num_prompts=3000, rng=np.random.default_rng(2024))
    exp.start()
    for rnd in range(1, 4):
        exp.step(
            {j: SegmentReport(1.0, rnd == 3, 10 * rnd, probe_entropy=1.0 + dh) for j in exp.active}
        )
    by_l: dict[int, list[bool]] = defaultdict(list)
    for d in exp.decisions:
        assert d.delta_h == pytest.approx(dh)
        by_l[d.consecutive].append(d.branched)
    for count, outcomes in by_l.items():
        if len(outcomes) < 500:
            continue
        p = (
            arpo_branch_probability(dh)
            if rule == "arpo_code"
            else aepo_branch_probability(dh, count)
        )
        assert np.mean(outcomes) == pytest.approx(p, abs=4 * math.sqrt(0.25 / len(outcomes)) + 1e-9)


def _released_loop_replay(cfg: BranchConfig, num_prompts: int, report, draws) -> list[tuple[int, int | None, int]]:
    """The released ARPO/AEPO rollout loop's bookkeeping, restated on plain lists.

    Trajectories are numbered in creation order; the active list stays in ascending order; the
    per-prompt branching pass groups the surviving trajectories by prompt **in the order the
    prompts first appear in that list** (a dict filled while walking it), so a prompt is visited
    by its lowest active trajectory; prompts with no active trajectory get one new global each.
    Returns (prompt, parent, branch point) per created trajectory.
    """
    nodes: list[tuple[int, int | None, int]] = []
    count = [0] * num_prompts
    for b in range(num_prompts):
        for _ in range(cfg.initial):
            nodes.append((b, None, 0))
            count[b] += 1
    active = list(range(len(nodes)))
    h_init: dict[int, float] = {}
    consecutive = [0] * num_prompts
    rnd = 0
    while active:
        rnd += 1
        h_now, length, survivors = {}, {}, []
        for j in active:
            rep = report(rnd, j)
            h_now[j], length[j] = rep.entropy, rep.num_tokens
            h_init.setdefault(j, rep.entropy)
            if not rep.finished:
                survivors.append(j)
        by_prompt: dict[int, list[int]] = {}
        for j in survivors:
            by_prompt.setdefault(nodes[j][0], []).append(j)
        got = [False] * num_prompts
        new: list[tuple[int, int | None, int]] = []
        for b, sources in by_prompt.items():
            remaining = cfg.n - count[b]
            if remaining <= 0:
                continue
            made = 0
            for src in sources:
                tries = min(cfg.z_extra, remaining - made)
                if tries <= 0:
                    break
                for _ in range(tries):
                    u, dh = next(draws), h_now[src] - h_init[src]
                    if cfg.rule == "arpo_code":
                        take = min(1.0, max(0.0, u - cfg.weight * dh)) <= cfg.tau
                    else:
                        factor = max(0.0, 1.0 - cfg.penalty * consecutive[b])
                        take = min(1.0, max(0.0, (u + cfg.weight * dh) * factor)) >= cfg.tau
                    if take:
                        new.append((b, src, length[src]))
                        count[b] += 1
                        made += 1
                        got[b] = True
                if made >= remaining:
                    break
        for b in range(num_prompts):
            if b not in by_prompt and count[b] < cfg.n:
                new.append((b, None, 0))
                count[b] += 1
                got[b] = True
        if any(got):
            consecutive = [c + 1 if g else 0 for c, g in zip(consecutive, got)]
        first = len(nodes)
        nodes.extend(new)
        active = survivors + list(range(first, len(nodes)))
    return nodes


@pytest.mark.parametrize("rule", ["arpo_code", "aepo_code"])
@pytest.mark.parametrize("seed", range(12))
def test_tree_replays_the_released_loop_draw_for_draw(rule: str, seed: int) -> None:
    """Same uniform draws, same segments → the same tree as the released code's loop, node for
    node; prompts are visited by their lowest active trajectory, not by prompt index."""
    cfg = BranchConfig(n=6, initial=2, z_extra=2, tau=0.5, weight=0.3, rule=rule,
                       penalty=0.05 if rule == "aepo_code" else 0.0, h_init="code_stale_dict")

    def report(rnd: int, node: int) -> SegmentReport:
        g = np.random.default_rng([seed, rnd, node])
        return SegmentReport(entropy=float(g.random()), finished=bool(g.random() < 0.35), num_tokens=10 * rnd)

    draws = np.random.default_rng(seed + 100).random(10_000)
    expected = _released_loop_replay(cfg, 3, report, iter(draws.tolist()))
    exp = TreeExpander(cfg, 3, rng=np.random.default_rng(seed + 100), h_init_store={})
    drive(exp, lambda e, node, rnd: report(rnd, node))
    assert [(n.prompt, n.parent, n.branch_point) for n in exp.nodes] == expected


def test_prompts_are_visited_by_their_lowest_active_trajectory() -> None:
    """Prompt 0's first trajectories end while its clones live on: prompt 1 (lowest active id 2)
    draws first in round 2, as in the released code."""
    cfg = BranchConfig(n=8, initial=2, z_extra=1, tau=1.0)  # tau = 1: every decision branches

    def script(exp: TreeExpander, node: int, rnd: int) -> SegmentReport:
        return SegmentReport(entropy=0.0, finished=rnd == 2 and node in (0, 1), num_tokens=10 * rnd)

    exp = TreeExpander(cfg, 2, rng=np.random.default_rng(0))
    exp.start()
    exp.step({j: script(exp, j, 1) for j in exp.active})  # clones 4, 5 (prompt 0) and 6, 7
    res = exp.step({j: script(exp, j, 2) for j in exp.active})
    assert [d.source for d in res.decisions] == [2, 3, 6, 7, 4, 5]
    assert [(c.prompt, c.parent) for c in res.clones] == [(1, 2), (1, 3), (1, 6), (1, 7), (0, 4), (0, 5)]
    assert [c.node_id for c in res.clones] == [8, 9, 10, 11, 12, 13]


@pytest.mark.parametrize("rule, alpha", [("arpo_code", "uniform"), ("aepo_code", "uniform"), ("paper", "uniform"),
                                         ("paper", 0.6)])
def test_each_decision_records_the_closed_form_probability_it_was_drawn_under(rule: str, alpha) -> None:
    """The closed forms are what the expander reports per decision; the realised branch rate
    agrees with their mean (the closed form of a draw is the probability the draw branches)."""
    cfg = BranchConfig(n=6, initial=1, z_extra=1, rule=rule, alpha=alpha, entropy_probe="after_tool",
                       penalty=0.0 if rule == "arpo_code" else 0.05)
    exp = TreeExpander(cfg, num_prompts=2000, rng=np.random.default_rng(7))
    exp.start()
    for rnd in range(1, 4):
        exp.step({j: SegmentReport(1.0, rnd == 3, 10 * rnd, probe_entropy=1.4) for j in exp.active})
    for d in exp.decisions:
        if rule == "arpo_code":
            assert d.probability == arpo_branch_probability(d.delta_h)
        elif alpha == "uniform":
            assert d.probability == aepo_branch_probability(d.delta_h, d.consecutive, penalty=0.05)
        else:
            assert d.probability == float(d.branched)
    stats = exp.stats()
    n = len(exp.decisions)
    assert stats["rollout/branch_prob_mean"] == pytest.approx(np.mean([d.probability for d in exp.decisions]))
    assert stats["rollout/branch_rate"] == pytest.approx(stats["rollout/branch_prob_mean"], abs=4 * math.sqrt(0.25 / n))
