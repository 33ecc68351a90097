"""The ``branchgym`` and ``branchgym_tree`` agent loops, instantiated as verl's worker does and
driven by a server client over the real tiny model: token-in/token-out invariants, tree clones
that equal a fresh replay (Docker sandbox), and bad input as zero-weight error rows."""

from __future__ import annotations

import asyncio

import gymnasium as gym
import pytest
import torch
from tiny_server import CodeScript, FirstCallScript

from branchgym.algorithms.quickstart_task import make_lookup_env

SAMPLING = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "logprobs": True}
LOOKUP = "branchgym.algorithms.quickstart_task:make_lookup_env"


def _row(env_id, task_id, env_kwargs=None, agent="branchgym", nest=True):
    fields = {"env_id": env_id, "task_id": task_id, "env_kwargs": env_kwargs or {}}
    row = {"agent_name": agent, "raw_prompt": [{"role": "user", "content": "hi"}], "index": 0}
    if nest:
        row["extra_info"] = fields
    else:
        row.update(fields)
    return row


def _run(loop, row, sampling=SAMPLING):
    row = {k: v for k, v in row.items() if k != "agent_name"}
    return asyncio.run(loop.run(dict(sampling), **row))


def _task_ids(make, k=1):
    env = make()
    try:
        return [t.id for t in env.unwrapped.tasks[:k]]
    finally:
        env.close()


def _check_logprobs(server, out) -> None:
    """Re-forward the output's ids with the same model: the mask-1 positions' log-probs equal
    the rollout's; mask-0 positions carry 0."""
    ids = out.prompt_ids + out.response_ids
    with torch.no_grad():
        logp, _ = server.policy.forward_logprobs(torch.tensor([ids]), with_entropy=False)
    p = len(out.prompt_ids)
    pos = [p + i for i, m in enumerate(out.response_mask) if m]
    want = torch.tensor([lp for lp, m in zip(out.response_logprobs, out.response_mask) if m])
    assert pos, "the model generated tokens"
    assert torch.allclose(logp[0, pos], want, atol=1e-4)
    assert all(lp == 0.0 for lp, m in zip(out.response_logprobs, out.response_mask) if not m)


def _runs(mask, value):
    """Maximal [start, end) spans of ``mask == value``."""
    spans, start = [], None
    for i, m in enumerate([*mask, None]):
        if m == value and start is None:
            start = i
        elif m != value and start is not None:
            spans.append((start, i))
            start = None
    return spans


def test_flat_loop_exact_ids_masks_and_logprobs(make_loop, server_factory, tokenizer) -> None:
    """A scripted search call (scored by the model), then the model samples: the response is the
    server's tokens (mask 1) and the env's observation tokens (mask 0), nothing else."""
    server = server_factory(script=FirstCallScript("<search>item 7</search>"))
    loop = make_loop("branchgym", server, max_new_tokens=24)
    tid = _task_ids(lambda: make_lookup_env("smoke"))[0]
    out = _run(loop, _row(LOOKUP, tid, {"split": "smoke"}))
    ef = out.extra_fields
    assert ef["branchgym_error"] is None, ef["branchgym_error"]
    assert ef["branchgym_tool_calls"] == 1 and ef["branchgym_entropy_kind"] == "sampled_surprisal"
    assert len(out.response_ids) == len(out.response_mask) == len(out.response_logprobs)
    # the model's tokens, in order, are exactly what the server returned
    model = [t for t, m in zip(out.response_ids, out.response_mask) if m]
    assert model == [t for ids in server.returned for t in ids]
    # the first mask-0 span is the search result, tokenised once
    obs_spans = _runs(out.response_mask, 0)
    assert obs_spans and tokenizer.decode(out.response_ids[slice(*obs_spans[0])]).lstrip().startswith("<result>")
    _check_logprobs(server, out)
    assert out.reward_score == ef["branchgym_reward"]
    # stop strings and log-probs were asked of the replica, within the response budget
    req = server.requests[0]
    assert req["logprobs"] is True and "</search>" in req["stop"] and req["include_stop_str_in_output"]
    assert req["max_tokens"] <= 24
    # the estimate of the segment entropy is -mean log p of the segment's tokens
    seg0 = out.response_logprobs[: obs_spans[0][0]]
    assert ef["branchgym_segment_entropy"][0] == pytest.approx(-sum(seg0) / len(seg0))
