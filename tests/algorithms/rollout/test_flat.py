"""Flat rollouts: G envs per prompt reset to the prompt's task, batched rounds, ARPO's call limit."""

from __future__ import annotations

import pytest

from branchgym.agents.policy import SamplingParams
from branchgym.algorithms.quickstart_task import make_lookup_env
from branchgym.algorithms.rollout import flat_rollout
from branchgym.errors import ConfigError

PARAMS = SamplingParams(max_new_tokens=64, temperature=1.0)
MAKE = lambda: make_lookup_env("smoke")  # noqa: E731


def _ids(k: int) -> list[str]:
    return [t.id for t in MAKE().unwrapped.tasks[:k]]


def test_rows_are_prompt_major_and_reset_to_their_task(code_policy_factory) -> None:
    policy = code_policy_factory(0, "search")
    tids = _ids(3)
    batch = flat_rollout(MAKE, policy, tids, PARAMS, group_size=4, max_response_tokens=2048)
    assert len(batch) == 12 and batch.kind == "flat"
    assert batch.group_ids == [g for g in range(3) for _ in range(4)]
    assert [t.info["task"]["id"] for t in batch.trajectories] == batch.task_ids == [i for i in tids for _ in range(4)]
    assert batch.parent_rows == [-1] * 12
    # every trajectory: 3 searches then an answer, all generated in 4 batched rounds
    assert all(t.num_tool_calls == 3 and t.terminated for t in batch.trajectories)
    assert policy.generate_calls == 4
    assert batch.tool_calls == 36
    assert batch.generated_tokens == sum(t.num_generated_tokens for t in batch.trajectories)


def test_call_limit_ends_the_trajectory_without_running_the_tool(code_policy_factory) -> None:
    batch = flat_rollout(MAKE, code_policy_factory(0, "search"), _ids(1), PARAMS, group_size=2,
                         max_response_tokens=2048, call_limit=1)
    for t in batch.trajectories:
        assert t.num_tool_calls == 1 and t.end_reason == "call_limit" and t.reward == 0.0
        assert t.loss_mask[-1] == 1  # ends on the refused call's tokens, no tool result appended


def test_real_tiny_model_rollout_keeps_exact_tokens(hf) -> None:
    """Rollout logprobs equal the trainable forward on the same ids (token-in/token-out)."""
    import torch

    from branchgym.algorithms.rollout.tensors import to_tensors

    batch = flat_rollout(MAKE, hf, _ids(2), SamplingParams(max_new_tokens=12, temperature=1.0), group_size=2,
                         max_response_tokens=40)
    tt = to_tensors(batch, hf.pad_token_id)
    with torch.no_grad():
        logp, _ = hf.forward_logprobs(tt.input_ids, tt.attention_mask)
    for r, t in enumerate(batch.trajectories):
        p = len(t.prompt_ids)
        model_pos = [p + i for i, m in enumerate(t.loss_mask) if m]
        assert tt.loss_mask[r].nonzero().flatten().tolist() == model_pos
        rollout = torch.tensor([lp for lp, m in zip(t.logprobs, t.loss_mask) if m])
        assert torch.allclose(logp[r, model_pos], rollout, atol=1e-4)
        steps = tt.step_ids[r, model_pos]
        assert (steps >= 0).all() and (tt.step_ids[r][tt.loss_mask[r] == 0] == -1).all()


def test_bad_arguments_are_clear_errors(hf) -> None:
    with pytest.raises(ConfigError, match="group_size"):
        flat_rollout(MAKE, hf, _ids(1), PARAMS, group_size=0)
    with pytest.raises(ConfigError, match="params.n"):
        flat_rollout(MAKE, hf, _ids(1), PARAMS.replace(n=2), group_size=1)


def test_tensor_rows_repoint_parents() -> None:
    """Dropping whole groups (DAPO dynamic sampling) keeps tree parents pointing at the right rows."""
    from branchgym.agents.trajectory import Trajectory
    from branchgym.algorithms.rollout.batch import RolloutBatch
    from branchgym.algorithms.rollout.tensors import to_tensors

    trajs = [Trajectory(prompt_ids=[1, 2], response_ids=[3] * n, loss_mask=[1] * n, logprobs=[0.0] * n,
                        entropies=[0.0] * n) for n in (3, 4, 2, 5)]
    batch = RolloutBatch(trajs, group_ids=[0, 0, 1, 1], task_ids=["a", "a", "b", "b"],
                         parent_rows=[-1, 0, -1, 2], branch_points=[0, 2, 0, 1])
    tt = to_tensors(batch, pad_id=0)
    assert tt.branch_points.tolist() == [0, 4, 0, 3]  # prompt length added for clones
    sub = tt.rows([2, 3])
    assert sub.parent_ids.tolist() == [-1, 0] and sub.branch_points.tolist() == [0, 3]
    assert sub.input_ids.shape == (2, 7)
    orphan = tt.rows([1])
    assert orphan.parent_ids.tolist() == [-1] and orphan.branch_points.tolist() == [0]


def test_concat_batches_keeps_groups_and_parents_apart() -> None:
    from branchgym.agents.trajectory import Trajectory
    from branchgym.algorithms.rollout.batch import RolloutBatch, concat_batches

    def traj(n: int) -> Trajectory:
        return Trajectory(prompt_ids=[1], response_ids=[3] * n, loss_mask=[1] * n, logprobs=[0.0] * n,
                          entropies=[0.0] * n)

    a = RolloutBatch([traj(1), traj(2)], group_ids=[0, 0], task_ids=["a", "a"], parent_rows=[-1, 0],
                     branch_points=[0, 1], kind="tree", seconds={"generation": 1.0}, counts={"tool_calls": 2})
    b = RolloutBatch([traj(3), traj(4), traj(5)], group_ids=[0, 1, 1], task_ids=["b", "c", "c"],
                     parent_rows=[-1, -1, 1], branch_points=[0, 0, 2], kind="tree",
                     seconds={"generation": 0.5, "tools": 0.25}, counts={"tool_calls": 3})
    m = concat_batches([a, b])
    assert m.group_ids == [0, 0, 1, 2, 2] and m.task_ids == ["a", "a", "b", "c", "c"]
    assert m.parent_rows == [-1, 0, -1, -1, 3] and m.branch_points == [0, 1, 0, 0, 2]
    assert m.seconds == {"generation": 1.5, "tools": 0.25} and m.tool_calls == 5
    assert [len(t.response_ids) for t in m.trajectories] == [1, 2, 3, 4, 5]
    assert concat_batches([a]) is a
    with pytest.raises(ValueError, match="at least one"):
        concat_batches([])
