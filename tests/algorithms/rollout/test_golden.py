"""Regression: the trajectories every rollout path produces for a fixed seed stay the same.

The golden file ``data/golden_rollouts.json`` was written by the rollout code *before* the round
loop was unified (one engine for ``agents.loop`` and ``algorithms.rollout``) and before tool calls
ran concurrently; this test keeps the refactored engine on the same token ids, loss masks,
log-probs (to 1e-3), rewards and tree structure, for the direct flat/tree rollouts (what the
benchmarks call), the trainer's rollouts (two steps, so the second uses updated weights) and the
``branchgym eval`` path (an :class:`~branchgym.agents.policy_agent.PolicyAgent` through
:func:`~branchgym.envs.evaluate.evaluate`).

Regenerate only when a change of trajectories is intended:
``python3 tests/algorithms/rollout/test_golden.py --write``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from tinycache import ROLLOUT_TINY, sft_tiny_dir, tiny_dir  # noqa: E402

GOLDEN = Path(__file__).parent / "data" / "golden_rollouts.json"
ENV = "branchgym.algorithms.quickstart_task:make_lookup_env"
LOGPROB_ATOL = 1e-3


def _r(xs: list[float]) -> list[float]:
    return [round(float(x), 4) for x in xs]


def _traj(t: Any) -> dict[str, Any]:
    return {
        "prompt_ids": list(t.prompt_ids), "response_ids": list(t.response_ids), "loss_mask": list(t.loss_mask),
        "logprobs": _r(t.logprobs), "reward": round(float(t.reward), 6), "end_reason": t.end_reason,
        "terminated": bool(t.terminated), "truncated": bool(t.truncated),
        "tool_calls": [[c.segment, c.stop_index, c.tool, list(c.result_span)] for c in t.tool_calls],
        "segments": [[s.start, s.end, s.finish_reason, s.stop_string] for s in t.segments],
        "actions": [s.action for s in t.steps], "node_id": t.node_id, "parent": t.parent,
        "branch_point": t.branch_point,
    }


def _batch(b: Any) -> dict[str, Any]:
    return {
        "kind": b.kind, "group_ids": list(b.group_ids), "task_ids": list(b.task_ids),
        "parent_rows": list(b.parent_rows), "branch_points": list(b.branch_points),
        "counts": {k: int(b.counts.get(k, 0)) for k in ("generated_tokens", "tool_calls", "clones", "refills")},
        "rows": [_traj(t) for t in b.trajectories],
    }


def _lookup_ids(k: int) -> list[str]:
    from branchgym.algorithms.quickstart_task import lookup_tasks

    return [t.id for t in lookup_tasks("smoke")[:k]]


def case_flat() -> Any:
    from branchgym.agents.hf import HFPolicy
    from branchgym.agents.policy import SamplingParams
    from branchgym.algorithms.quickstart_task import make_lookup_env
    from branchgym.algorithms.rollout import flat_rollout

    policy = HFPolicy(sft_tiny_dir(), device="cpu", seed=7)
    params = SamplingParams(max_new_tokens=24, temperature=1.0)
    batch = flat_rollout(lambda: make_lookup_env("smoke"), policy, _lookup_ids(2), params, group_size=3,
                         max_response_tokens=200, call_limit=2)
    return _batch(batch)


def case_tree() -> Any:
    import numpy as np

    from branchgym.agents.hf import HFPolicy
    from branchgym.agents.policy import SamplingParams
    from branchgym.algorithms.config import BranchConfig
    from branchgym.algorithms.quickstart_task import make_lookup_env
    from branchgym.algorithms.rollout import tree_rollout

    policy = HFPolicy(sft_tiny_dir(), device="cpu", seed=3)
    params = SamplingParams(max_new_tokens=24, temperature=1.0, logprobs_topk=10)
    batch = tree_rollout(lambda: make_lookup_env("smoke"), policy, _lookup_ids(2), params,
                         branch=BranchConfig(n=6, initial=2, weight=0.5), rng=np.random.default_rng(5),
                         max_response_tokens=200, call_limit=3, entropy_source="topk")
    return _batch(batch)


def case_tree_base_model() -> Any:
    """The un-fine-tuned tiny model: length cuts and EOS mid-answer, few tool calls."""
    import numpy as np

    from branchgym.agents.hf import HFPolicy
    from branchgym.agents.policy import SamplingParams
    from branchgym.algorithms.config import BranchConfig
    from branchgym.algorithms.quickstart_task import make_lookup_env
    from branchgym.algorithms.rollout import tree_rollout

    policy = HFPolicy(tiny_dir(**ROLLOUT_TINY), device="cpu", seed=0)
    params = SamplingParams(max_new_tokens=6, temperature=1.0)
    batch = tree_rollout(lambda: make_lookup_env("smoke"), policy, _lookup_ids(2), params,
                         branch=BranchConfig(n=8, initial=4), rng=np.random.default_rng(0),
                         max_response_tokens=24, entropy_source="exact")
    return _batch(batch)


def _trainer_case(algo: str, extra: dict[str, Any], tmp: Path) -> Any:
    from branchgym.algorithms.train_config import preset
    from branchgym.algorithms.trainer import Trainer

    cfg = preset(algo, model=str(sft_tiny_dir()), out=str(tmp / algo), env=ENV, env_kwargs={"reward": "arpo_train"},
                 split="smoke", steps=2, prompts_per_step=2, group_size=4, max_new_tokens=24,
                 max_response_tokens=160, lr=1e-3, progress=False, threads=1, checkpoint_every=100,
                 tensorboard=False, **extra)
    trainer = Trainer(cfg, resume=False)
    seen: list[Any] = []
    rollout = trainer._rollout  # observe the batches the trainer's own call site produces

    def recording(task_ids: list[str]) -> Any:
        batch = rollout(task_ids)
        seen.append(_batch(batch))
        return batch

    trainer._rollout = recording  # type: ignore[method-assign]
    try:
        trainer.run()
    finally:
        trainer.close()
    return seen


def case_trainer_grpo(tmp: Path) -> Any:
    return _trainer_case("grpo", {}, tmp)


def case_trainer_aepo(tmp: Path) -> Any:
    tree = {"n": 4, "initial": 2, "z_extra": 1, "penalty": 0.05, "rule": "aepo_code"}
    return _trainer_case("aepo", {"branching": tree, "premonitor": True}, tmp)


def case_eval() -> Any:
    from branchgym.agents.hf import HFPolicy
    from branchgym.agents.policy import SamplingParams
    from branchgym.agents.policy_agent import PolicyAgent
    from branchgym.algorithms.quickstart_task import make_lookup_env
    from branchgym.envs.evaluate import evaluate

    policy = HFPolicy(sft_tiny_dir(), device="cpu", seed=11)
    env = make_lookup_env("smoke")
    params = SamplingParams(max_new_tokens=20, temperature=1.0, stop=tuple(env.protocol.stop_strings))
    try:
        report = evaluate(env, lambda: PolicyAgent(policy, params), episodes=3, n_samples=2, seed=4)
    finally:
        env.close()
    return [json.loads(e.to_json()) for e in report.episodes]


CASES = {
    "flat": case_flat, "tree": case_tree, "tree_base_model": case_tree_base_model,
    "trainer_grpo": case_trainer_grpo, "trainer_aepo": case_trainer_aepo, "eval": case_eval,
}


def _run(name: str, tmp: Path) -> Any:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one reduction order, so sampled tokens do not depend on the machine
    try:
        fn = CASES[name]
        return fn(tmp) if name.startswith("trainer") else fn()
    finally:
        torch.set_num_threads(threads)


def _compare(got: Any, want: Any, where: str) -> None:
    """Equal everywhere except log-probs, which match to LOGPROB_ATOL."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), f"{where}: keys {sorted(got)} != {sorted(want)}"
        for k in want:
            if k == "logprobs":
                assert len(got[k]) == len(want[k]), f"{where}.{k}: length"
                worst = max((abs(a - b) for a, b in zip(got[k], want[k])), default=0.0)
                assert worst <= LOGPROB_ATOL, f"{where}.{k}: differs by {worst}"
            else:
                _compare(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {len(got)} items != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            _compare(g, w, f"{where}[{i}]")
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_trajectories_match_golden(name: str, tmp_path: Path) -> None:
    want = json.loads(GOLDEN.read_text())[name]
    got = json.loads(json.dumps(_run(name, tmp_path)))  # tuples -> lists, as in the file
    _compare(got, want, name)


if __name__ == "__main__":
    import tempfile

    if "--write" not in sys.argv:
        sys.exit("usage: python3 tests/algorithms/rollout/test_golden.py --write  (rewrites the golden file)")
    out = {}
    with tempfile.TemporaryDirectory() as d:
        for case in CASES:
            out[case] = _run(case, Path(d))
            print(case, "done", file=sys.stderr)
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size} bytes)")
