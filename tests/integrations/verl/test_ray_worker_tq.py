"""verl's v1 ``AgentLoopWorkerTQ`` (the worker of verl's v1 trainer, which takes a list of outputs
per session) runs the ``branchgym_tree`` loop as a Ray actor on the local CPU cluster: every leaf
of the tree lands in TransferQueue, and the recipe trainer's advantage step on those rows gives
branchgym's GRPO over all leaves with each leaf's own env reward."""

from __future__ import annotations

import time

import pytest
import torch
from omegaconf import open_dict
from tiny_server import LookupScript, TinyServerManager, recipe_trainer

LOOKUP = "branchgym.algorithms.quickstart_task:make_lookup_env"
LEAVES = 6


def _run_tree_sample(ray, tq, config, tiny_dir) -> dict:
    """One prompt through the v1 worker; returns TransferQueue's tags of partition 'train'."""
    from tensordict import NonTensorData, NonTensorStack, TensorDict
    from verl.trainer.ppo.v1.agent_loop_tq import AgentLoopWorkerTQ

    server = TinyServerManager(tiny_dir, script=LookupScript(p_right=0.5, seed=1))
    worker = AgentLoopWorkerTQ.remote(config, server, None, None)
    row = {"env_id": LOOKUP, "task_id": "lookup-smoke-0000", "env_kwargs": {"split": "smoke"}}
    batch = TensorDict({
        "uid": NonTensorStack(NonTensorData("p0")),
        "index": torch.tensor([0]),
        "global_steps": NonTensorData(1),
        "agent_name": NonTensorStack(NonTensorData("branchgym_tree")),
        "raw_prompt": NonTensorStack(NonTensorData([{"role": "user", "content": "hi"}])),
        "extra_info": NonTensorStack(NonTensorData(row)),
    }, batch_size=[1])
    ray.get(worker.generate_sequences.remote(batch), timeout=300)  # returns at once: fire and forget
    deadline = time.time() + 300
    while time.time() < deadline:
        tags = tq.kv_list(partition_id="train")["train"]
        if tags.get("p0", {}).get("status") in ("finished", "failure"):
            return tags
        time.sleep(0.2)
    raise AssertionError(f"the v1 worker did not finish the sample in 300 s: {tags}")


@pytest.mark.slow
def test_v1_worker_runs_the_tree_loop_into_transfer_queue(
    ray_cluster, transfer_queue, verl_config, tiny_dir
) -> None:
    from transfer_queue import KVBatchMeta

    from branchgym.algorithms.advantages import grpo
    from branchgym.algorithms.inputs import AdvantageInputs

    tq = transfer_queue
    config = verl_config.copy()
    with open_dict(config):  # what `+branchgym.branch.n=6 ...` does on verl's command line
        config.actor_rollout_ref.rollout.n = 1
        config.branchgym = {"max_new_tokens": 16, "max_response_tokens": 64, "seed": 3,
                            "branch": {"n": LEAVES, "initial": 2, "weight": 0.5}}
    tags = _run_tree_sample(ray_cluster, tq, config, tiny_dir)
    assert tags["p0"]["status"] == "finished"
    keys = [f"p0_0_{i}" for i in range(LEAVES)]  # {uid}_{session}_{index}: one key per leaf
    assert sorted(k for k in tags if k.startswith("p0_")) == keys
    rows = tq.kv_batch_get(keys=keys, partition_id="train")
    extra = list(rows["extra_fields"])
    responses, masks = list(rows["responses"].unbind()), list(rows["response_mask"].unbind())

    assert len({e["branchgym_tree_id"] for e in extra}) == 1
    assert [e["branchgym_row"] for e in extra] == list(range(LEAVES))
    assert all(e["branchgym_error"] is None and e["branchgym_tool_calls"] == 1 for e in extra)
    clones = [i for i, e in enumerate(extra) if e["branchgym_parent_row"] >= 0]
    assert clones, "the tree branched"
    for i in clones:  # a clone repeats its parent up to the branch point: after the search result
        parent, bp = extra[i]["branchgym_parent_row"], extra[i]["branchgym_branch_point"]
        assert torch.equal(responses[i][:bp], responses[parent][:bp])
        assert torch.equal(masks[i][:bp], masks[parent][:bp]) and 0 in masks[i][:bp].tolist()
    env_rewards = torch.tensor([e["branchgym_reward"] for e in extra])
    assert set(env_rewards.tolist()) == {0.0, 1.0}, "the coin gave the leaves different rewards"
    # verl's v1 worker copies the session's last reward onto every output (agent_loop_tq.py)
    scores = torch.stack([s.sum() for s in rows["rm_scores"].unbind()])
    assert torch.all(scores == env_rewards[-1])

    # the recipe's advantage step on the stored rows: each leaf's own reward, GRPO over the tree.
    # The actor's old log-probs come first in a real step (here: the rollout's, as in bypass mode).
    from verl.utils.tensordict_utils import list_of_dict_to_tensordict

    old = [{"old_log_probs": lp.clone()} for lp in rows["rollout_log_probs"].unbind()]
    tq.kv_batch_put(keys=keys, partition_id="train", fields=list_of_dict_to_tensordict(old),
                    tags=[tags[k] for k in keys])
    metrics: dict = {}
    meta = KVBatchMeta(partition_id="train", keys=keys, tags=[tags[k] for k in keys])
    recipe_trainer("branchgym_grpo")._compute_advantage(meta, metrics)
    got = tq.kv_batch_get(keys=keys, partition_id="train", select_fields=["advantages", "rm_scores"])
    n = max(len(m) for m in masks)
    mask = torch.zeros(LEAVES, n)
    for i, m in enumerate(masks):
        mask[i, : len(m)] = m.float()
    want = grpo(AdvantageInputs(env_rewards, torch.zeros(LEAVES, dtype=torch.long), mask))
    for i, m in enumerate(masks):
        assert float(got["rm_scores"][i].sum()) == env_rewards[i]
        torch.testing.assert_close(got["advantages"][i] * m, want[i, : len(m)] * m)
