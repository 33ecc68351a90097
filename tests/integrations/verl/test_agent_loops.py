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


def test_flat_loop_sampling_the_model(make_loop, server_factory) -> None:
    """Pure sampling by the tiny model: whatever the finish (EOS, length, a stop string), the
    output keeps every sampled token and its log-prob, within rollout.response_length."""
    server = server_factory(seed=1)
    loop = make_loop("branchgym", server, max_new_tokens=16, max_response_tokens=48)
    tid = _task_ids(lambda: make_lookup_env("smoke"))[0]
    out = _run(loop, _row(LOOKUP, tid, {"split": "smoke"}, nest=False))
    assert out.extra_fields["branchgym_error"] is None, out.extra_fields["branchgym_error"]
    assert 0 < len(out.response_ids) <= 48 + 64  # budget, plus at most one observation, then cut
    assert [t for t, m in zip(out.response_ids, out.response_mask) if m] == [t for ids in server.returned for t in ids]
    _check_logprobs(server, out)


def _replay_tokens(make, task_id, out, tokenizer) -> None:
    """Step a fresh env with the output's actions (its mask-1 runs, decoded): each observation's
    tokens equal the output's mask-0 run at that place."""
    model, obs = _runs(out.response_mask, 1), _runs(out.response_mask, 0)
    env = make()
    try:
        env.reset(options={"task_id": task_id})
        for i, span in enumerate(model):
            action = tokenizer.decode(out.response_ids[slice(*span)], skip_special_tokens=False)
            got, _, term, trunc, _ = env.step(action)
            if i < len(obs):
                want = out.response_ids[slice(*obs[i])]
                assert tokenizer.encode(got, add_special_tokens=False) == want, f"row {out.extra_fields['branchgym_row']}"
            else:
                assert term or trunc
    finally:
        env.close()


@pytest.mark.docker
@pytest.mark.slow
def test_tree_loop_clones_equal_fresh_replay_docker(make_loop, server_factory, tokenizer) -> None:
    """One session grows a tree by cloning a CodeExec env whose python tool runs in Docker (the
    sandbox is forked); every row's results equal a fresh env replaying that row's actions."""
    kw = {"split": "smoke", "sandbox": "docker"}
    make = lambda: gym.make("CodeExec-Offline-v0", **kw)  # noqa: E731
    tid = _task_ids(make)[0]
    server = server_factory(script=CodeScript(calls=3, seed=0))
    loop = make_loop("branchgym_tree", server, branch={"n": 5, "initial": 2, "weight": 0.5}, seed=3)
    outs = _run(loop, _row("CodeExec-Offline-v0", tid, kw, agent="branchgym_tree"))
    assert isinstance(outs, list) and len(outs) == 5
    assert len({o.extra_fields["branchgym_tree_id"] for o in outs}) == 1
    assert all(o.extra_fields["reward_extra_info"] == {} for o in outs)  # verl's v1 worker reads it
    assert [o.extra_fields["branchgym_row"] for o in outs] == list(range(5))
    clones = [o for o in outs if o.extra_fields["branchgym_parent_row"] >= 0]
    assert clones, "the tree branched"
    after_tool = 0
    for o in clones:
        parent, bp = outs[o.extra_fields["branchgym_parent_row"]], o.extra_fields["branchgym_branch_point"]
        assert o.response_ids[:bp] == parent.response_ids[:bp] and o.response_mask[:bp] == parent.response_mask[:bp]
        after_tool += any(end <= bp for _, end in _runs(o.response_mask, 0))
    assert after_tool, "some branch left its parent after a tool result (its sandbox state was forked)"
    results = set()
    for o in outs:
        assert o.extra_fields["branchgym_error"] is None, o.extra_fields["branchgym_error"]
        assert o.extra_fields["branchgym_tool_calls"] >= 1
        _check_logprobs(server, o)
        _replay_tokens(make, tid, o, tokenizer)
        results.update(tuple(o.response_ids[slice(*s)]) for s in _runs(o.response_mask, 0))
    # the code prints state accumulated over calls: distinct branches print distinct results
    assert len(results) > len(clones) + 2


@pytest.mark.parametrize("row, needle", [
    (_row("NoSuchEnv-v0", "t-1"), "unknown env id 'NoSuchEnv-v0'"),
    (_row(LOOKUP, "no-such-task", {"split": "smoke"}), "'no-such-task' is not in split 'smoke'"),
    (_row(LOOKUP, "lookup-smoke-0000", {"split": "smoke", "protocol": "nope"}), "unknown tool-call protocol 'nope'"),
    (_row(LOOKUP, "lookup-smoke-0000", "{not json"), "is not valid JSON"),
    ({"extra_info": {"env_id": LOOKUP, "task_id": "lookup-smoke-0000", "env_kwargs": '{"split": "smoke"}',
                     "split": "train"}}, "the row says split='train' but its env_kwargs say split='smoke'"),
    ({"raw_prompt": [{"role": "user", "content": "hi"}], "extra_info": {}}, "the row has no env_id"),
    (_row("tiny_server:make_raising_env", "lookup-smoke-0000", {"split": "smoke"}), "RuntimeError: search backend is down"),
])
@pytest.mark.parametrize("agent", ["branchgym", "branchgym_tree"])
def test_bad_input_is_a_zero_weight_error_row(make_loop, server_factory, row, needle, agent) -> None:
    server = server_factory(script=lambda context: "<search>item 7</search>")  # every segment calls the tool
    loop = make_loop(agent, server, max_new_tokens=8, max_response_tokens=32, branch={"n": 2, "initial": 1})
    got = _run(loop, row)
    outs = got if agent == "branchgym_tree" else [got]
    assert isinstance(got, list) == (agent == "branchgym_tree")
    for out in outs:
        err = out.extra_fields["branchgym_error"]
        assert err is not None and needle in err, err
        assert sum(out.response_mask) == 0 and out.reward_score == 0.0
        assert len(out.response_ids) == len(out.response_mask) == len(out.response_logprobs) >= 1
    # the loop class goes on serving good samples
    good = _run(make_loop(agent, server_factory(), max_new_tokens=8, max_response_tokens=32,
                          branch={"n": 2, "initial": 1}),
                _row(LOOKUP, "lookup-smoke-0000", {"split": "smoke"}))
    for out in good if isinstance(good, list) else [good]:
        assert out.extra_fields["branchgym_error"] is None


def test_topk_entropy_needs_a_replica_that_returns_top_logprobs(make_loop, server_factory) -> None:
    """entropy='topk' over verl's stock replica output (sampled log-prob only): a clear error."""
    loop = make_loop("branchgym", server_factory(), entropy="topk", max_new_tokens=8, max_response_tokens=32)
    out = _run(loop, _row(LOOKUP, "lookup-smoke-0000", {"split": "smoke"}))
    assert "entropy='topk' but the rollout replica returned no extra_fields['top_logprobs']" in out.extra_fields[
        "branchgym_error"]
    assert out.extra_fields["branchgym_entropy_kind"] == "topk"


def test_a_row_of_branchgym_verl_data_plays(make_loop, server_factory) -> None:
    """A row as ``branchgym verl-data`` writes it (env_kwargs as JSON text, split in extra_info)."""
    from branchgym.integrations.verl.data import build_rows

    [row] = build_rows(LOOKUP, split="smoke", agent="branchgym", limit=1)
    server = server_factory(script=FirstCallScript("<search>item 7</search>"))
    out = _run(make_loop("branchgym", server, max_new_tokens=8, max_response_tokens=32),
               {"raw_prompt": row["prompt"], "extra_info": row["extra_info"], "data_source": row["data_source"]})
    assert out.extra_fields["branchgym_error"] is None, out.extra_fields["branchgym_error"]
    assert out.extra_fields["branchgym_task_id"] == row["extra_info"]["task_id"]
    assert out.extra_fields["branchgym_tool_calls"] == 1


def test_topk_entropy_from_a_replica_that_returns_top_logprobs(make_loop, server_factory) -> None:
    """entropy='topk' with a replica that returns top-k log-probs: the tokens' entropies are ARPO's
    truncated top-k entropies of the model's own distribution; the tree branches on them."""
    from branchgym.agents.entropy import topk_position_entropy

    server = server_factory(script=FirstCallScript("<search>item 7</search>"), topk_replica=True)
    loop = make_loop("branchgym", server, entropy="topk", topk=5, max_new_tokens=8, max_response_tokens=32)
    out = _run(loop, _row(LOOKUP, "lookup-smoke-0000", {"split": "smoke"}))
    ef = out.extra_fields
    assert ef["branchgym_error"] is None, ef["branchgym_error"]
    assert ef["branchgym_entropy_kind"] == "topk" and server.requests[0]["extra_args"] == {"top_logprobs": 5}
    first = server.returned[0]
    top = server.top_logprobs(out.prompt_ids, first, 5)
    want = sum(topk_position_entropy(pos) for pos in top) / len(top)
    assert ef["branchgym_segment_entropy"][0] == pytest.approx(want)
    tree = _run(make_loop("branchgym_tree", server_factory(topk_replica=True), entropy="topk", topk=5,
                          max_new_tokens=8, max_response_tokens=32, branch={"n": 3, "initial": 2}),
                _row(LOOKUP, "lookup-smoke-0000", {"split": "smoke"}, agent="branchgym_tree"))
    assert len(tree) == 3 and all(o.extra_fields["branchgym_error"] is None for o in tree)


def test_env_steps_run_off_the_event_loop(make_loop, server_factory) -> None:
    """While a sample's env step blocks (a slow tool), the worker's event loop keeps running:
    a heartbeat coroutine ticks inside the step's time span."""
    import time

    import tiny_server

    tiny_server.STEP_SPANS.clear()
    ticks: list[float] = []
    server = server_factory(script=FirstCallScript("<search>item 7</search>"))
    loop = make_loop("branchgym", server, max_new_tokens=4, max_response_tokens=24)

    async def go():
        done = asyncio.Event()

        async def heartbeat():
            while not done.is_set():
                ticks.append(time.perf_counter())
                await asyncio.sleep(0.005)

        beat = asyncio.create_task(heartbeat())
        out = await loop.run(dict(SAMPLING), **_row("tiny_server:make_slow_env", "lookup-smoke-0000",
                                                    {"split": "smoke", "seconds": 0.3}))
        done.set()
        await beat
        return out

    out = asyncio.run(go())
    assert out.extra_fields["branchgym_error"] is None and out.extra_fields["branchgym_tool_calls"] == 1
    [(start, end)] = tiny_server.STEP_SPANS
    assert any(start < t < end for t in ticks), "the event loop was blocked during the env step"
