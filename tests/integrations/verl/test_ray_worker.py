"""verl's own ``AgentLoopWorker``, as a Ray actor on a local CPU cluster, runs the ``branchgym``
loop end to end: a batch of dataset rows in, verl's padded ``DataProto`` out."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import open_dict
from tiny_server import TinyServerManager

LOOKUP = "branchgym.algorithms.quickstart_task:make_lookup_env"


@pytest.mark.slow
def test_verl_agent_loop_worker_runs_branchgym_on_ray(ray_cluster, verl_config, tiny_dir) -> None:
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker
    from verl.protocol import DataProto

    ray = ray_cluster
    config = verl_config.copy()
    with open_dict(config):  # what `+branchgym.max_new_tokens=16` does on verl's command line
        config.branchgym = {"max_new_tokens": 16, "max_response_tokens": 64}
    server = TinyServerManager(tiny_dir, script=lambda context: None if "<result>" in context else "<search>item 7</search>")
    worker = ray.remote(AgentLoopWorker).remote(config, server, None, None)
    rows = [{"env_id": LOOKUP, "task_id": "lookup-smoke-0000", "env_kwargs": {"split": "smoke"}},
            {"env_id": "NoSuchEnv-v0", "task_id": "t", "env_kwargs": {}}]
    prompts = np.empty(2, dtype=object)
    prompts[:] = [[{"role": "user", "content": "hi"}]] * 2
    batch = DataProto.from_dict(tensors={}, non_tensors={
        "raw_prompt": prompts, "agent_name": np.array(["branchgym"] * 2, dtype=object),
        "extra_info": np.array(rows, dtype=object), "index": np.arange(2)}, meta_info={"global_steps": 1})
    out = ray.get(worker.generate_sequences.remote(batch), timeout=300)

    b, nt = out.batch, out.non_tensor_batch
    assert b["responses"].shape == (2, 384)
    assert nt["branchgym_error"][0] is None
    assert "unknown env id 'NoSuchEnv-v0'" in nt["branchgym_error"][1]
    assert b["response_mask"][1].sum() == 0 and b["rm_scores"][1].sum() == 0
    assert nt["branchgym_tool_calls"][0] == 1 and b["response_mask"][0].sum() > 0
    # verl's tensors hold the rollout's exact ids and log-probs: re-forward row 0 without padding
    from branchgym.agents.hf import HFPolicy

    policy = HFPolicy(tiny_dir, device="cpu")
    keep = b["attention_mask"][0].bool()
    ids = b["input_ids"][0][keep]
    with torch.no_grad():
        logp, _ = policy.forward_logprobs(ids[None], with_entropy=False)
    p = int(b["attention_mask"][0][: b["prompts"].shape[1]].sum())
    mask = b["response_mask"][0][: len(ids) - p].bool()
    got = b["rollout_log_probs"][0][: len(ids) - p][mask]
    assert torch.allclose(logp[0, p:][mask], got, atol=1e-4)
    assert float(b["rm_scores"][0].sum()) == pytest.approx(nt["branchgym_reward"][0])
