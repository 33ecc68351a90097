"""The token-in/token-out agent loop with the real tiny model (HF backend) and a toy env."""

from __future__ import annotations

import pytest
from toy_tool_env import ToyToolEnv

from branchgym.agents.loop import LiveEpisode, run_episode, run_episodes, run_round
from branchgym.agents.policy import SamplingParams
from branchgym.errors import ConfigError

PARAMS = SamplingParams(max_new_tokens=48, temperature=1.0, logprobs_topk=10)


@pytest.fixture(scope="module")
def trajectories(hf_policy):
    envs = [ToyToolEnv(max_turns=4) for _ in range(8)]
    trajs = run_episodes(envs, hf_policy, PARAMS.replace(seed=11), max_response_tokens=400)
    return envs, trajs


def test_token_ids_decode_to_the_env_transcript(hf_policy, trajectories):
    envs, trajs = trajectories
    for env, t in zip(envs, trajs, strict=False):
        assert hf_policy.decode(t.token_ids) == t.transcript
        # the text the env received is exactly the model's segments (EOS token excluded)
        assert [s.action for s in t.steps] == env.actions
        # every observation was appended verbatim, as its own tokenisation (never re-tokenised)
        obs_steps = [s for s in t.steps if s.obs_span[1] > s.obs_span[0]]
        for s in obs_steps:
            a, b = s.obs_span
            assert t.response_ids[a:b] == hf_policy.encode(s.observation)
            assert hf_policy.decode(t.response_ids[a:b]) == s.observation
            assert t.loss_mask[a:b] == [0] * (b - a)
        assert [s.observation for s in obs_steps] == env.observations[: len(obs_steps)]
        assert t.prompt_ids == hf_policy.encode_chat(env.reset()[1]["messages"])


def test_fresh_forward_reproduces_rollout_logprobs_at_every_mask1_position(hf_policy, trajectories):
    _, trajs = trajectories
    lp, ent = hf_policy.sequence_logprobs([t.token_ids for t in trajs])
    checked = 0
    for t, lrow, erow in zip(trajs, lp, ent, strict=False):
        mask = t.full_loss_mask
        for i, m in enumerate(mask):
            if m:
                j = i - len(t.prompt_ids)
                assert abs(lrow[i] - t.logprobs[j]) < 1e-4, (i, lrow[i], t.logprobs[j])
                assert abs(erow[i] - t.entropies[j]) < 1e-4
                checked += 1
    assert checked == sum(t.num_generated_tokens for t in trajs) > 0


def test_episodes_have_tool_calls_segments_and_outcomes(hf_policy, trajectories):
    _, trajs = trajectories
    assert any(t.num_tool_calls >= 1 for t in trajs)  # the pretrained tiny model calls tools
    for t in trajs:
        assert t.done and t.end_reason
        assert len(t.response_ids) == len(t.loss_mask) == len(t.logprobs) == len(t.entropies)
        for seg in t.segments:
            assert all(t.loss_mask[seg.start : seg.end])
            assert 0 < len(seg.top_logprobs) <= 20
            assert seg.entropy is not None and seg.entropy > 0
        for call in t.tool_calls:
            seg = t.segments[call.segment]
            assert seg.finish_reason == "stop" and call.tool in ("search", "python")
            assert hf_policy.decode([t.response_ids[call.stop_index]]).endswith(f"</{call.tool}>")
            assert call.result_span[0] == call.stop_index + 1
        if t.end_reason == "terminated":
            assert t.segments[-1].stop_string == "</answer>" and t.terminated


def test_segments_stop_at_protocol_tags(hf_policy, trajectories):
    _, trajs = trajectories
    stops = [s for t in trajs for s in t.segments if s.finish_reason == "stop"]
    assert stops
    assert {s.stop_string for s in stops} <= {"</search>", "</python>", "</answer>"}


def test_run_episode_is_reproducible_with_a_seed(hf_policy):
    a = run_episode(ToyToolEnv(), hf_policy, PARAMS.replace(seed=5), max_response_tokens=200)
    b = run_episode(ToyToolEnv(), hf_policy, PARAMS.replace(seed=5), max_response_tokens=200)
    assert a.token_ids == b.token_ids and a.loss_mask == b.loss_mask
    assert len(a.response_ids) <= 200


def test_an_observation_that_leaves_no_room_ends_the_episode_within_the_budget(hf_policy):
    # A tool result longer than what is left of the response budget is not appended: the episode
    # ends there ("response_budget"), so no response is longer than max_response_tokens (the fixed
    # response length of verl and TRL). The observation stays in the trajectory's steps.
    ended_by_observation = 0
    for budget in range(24, 96, 8):
        envs = [ToyToolEnv(max_turns=6) for _ in range(4)]
        trajs = run_episodes(envs, hf_policy, PARAMS.replace(seed=budget), max_response_tokens=budget)
        for env, t in zip(envs, trajs):
            assert len(t.response_ids) <= budget
            last = t.steps[-1] if t.steps else None
            if last is not None and last.observation and last.obs_span[0] == last.obs_span[1]:
                # not appended: it did not fit (or the model had ended its turn with EOS anyway)
                assert t.truncated and t.end_reason in ("response_budget", "eos_without_answer")
                assert len(hf_policy.encode(last.observation)) >= budget - last.obs_span[0]
                assert last.obs_span[0] == len(t.response_ids) and t.loss_mask[-1] == 1
                ended_by_observation += t.end_reason == "response_budget"
    assert ended_by_observation > 0


def test_fork_continues_independently_from_a_copied_prefix(hf_policy):
    ep = LiveEpisode.start(ToyToolEnv(), hf_policy, max_response_tokens=300)
    run_round([ep], hf_policy, PARAMS.replace(seed=1), close_finished=False)
    prefix = list(ep.trajectory.response_ids)
    child = ep.fork()
    assert child.trajectory.response_ids == prefix and child.env is not ep.env
    assert child.trajectory.parent == ep.trajectory.node_id
    assert child.trajectory.branch_point == len(prefix)
    run_round([ep, child], hf_policy, PARAMS.replace(seed=2), close_finished=False)
    assert ep.trajectory.response_ids[: len(prefix)] == prefix
    assert child.trajectory.response_ids[: len(prefix)] == prefix
    assert child.env.actions[: len(ep.env.actions) - 1] == ep.env.actions[:-1] or ep.done


def test_loop_rejects_bad_arguments(hf_policy):
    with pytest.raises(ConfigError, match="one completion per episode"):
        run_episode(ToyToolEnv(), hf_policy, PARAMS.replace(n=2))
    with pytest.raises(ConfigError, match="seeds"):
        run_episodes([ToyToolEnv()], hf_policy, PARAMS, seeds=[1, 2])
    with pytest.raises(ConfigError, match="max_response_tokens"):
        run_episode(ToyToolEnv(), hf_policy, PARAMS, max_response_tokens=0)


def test_real_tool_env_episodes_keep_exact_tokens(hf_policy):
    """The env-core ToolEnv (python tool, local sandbox): same invariants as with the toy env."""
    import warnings

    from branchgym.envs.core import ToolEnv
    from branchgym.envs.types import Task

    task = Task("q1", "What is 6*7? Use python.", ("42",), answer_type="number")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the local sandbox warns that it is not isolation
        envs = [ToolEnv([task], tools=("python",), sandbox="local", max_turns=3) for _ in range(2)]
        try:
            trajs = run_episodes(envs, hf_policy, PARAMS.replace(seed=21), max_response_tokens=300)
            child_ok = None
            ep = LiveEpisode.start(envs[0], hf_policy, max_response_tokens=200)
            run_round([ep], hf_policy, PARAMS.replace(seed=3), close_finished=False)
            if not ep.done:
                child = ep.fork()  # clones the ToolEnv (sandbox session forked)
                assert child.env is not ep.env
                assert child.env.unwrapped.messages == ep.env.unwrapped.messages
                child_ok = child.trajectory.token_ids == ep.trajectory.token_ids
                child.env.close()
        finally:
            for e in envs:
                e.close()
    assert child_ok in (None, True)
    assert envs[0].unwrapped.protocol.stop_strings == (
        "</search>",
        "</python>",
        "</browse>",
        "</answer>",
    )
    lp, _ = hf_policy.sequence_logprobs([t.token_ids for t in trajs])
    for t, row in zip(trajs, lp, strict=False):
        assert t.done and t.steps
        assert hf_policy.decode(t.token_ids) == t.transcript
        sent = [m["content"] for m in t.info["messages"] if m["role"] == "assistant"]
        assert [s.action for s in t.steps] == sent  # what the env recorded is what we generated
        p = len(t.prompt_ids)
        for i, m in enumerate(t.full_loss_mask):
            if m:
                assert abs(row[i] - t.logprobs[i - p]) < 1e-4


def test_a_round_never_ends_a_segment_at_another_episodes_stop_string(hf_policy):
    # Episodes of different protocols in one round: each generate call carries only the stop
    # strings of the episodes it generates for (one call per protocol).
    class Recording:
        def __init__(self, policy):
            self.policy, self.stops = policy, []

        def __getattr__(self, name):
            return getattr(self.policy, name)

        def generate(self, prompts, params):
            self.stops.append(params.stop)
            return self.policy.generate(prompts, params)

    gen = Recording(hf_policy)
    a = LiveEpisode.start(ToyToolEnv(), gen, extra_stop=("ALPHA",), max_response_tokens=300)
    b = LiveEpisode.start(ToyToolEnv(), gen, extra_stop=("BETA",), max_response_tokens=300)
    run_round([a, b], gen, PARAMS.replace(seed=4), close_finished=False)
    assert len(gen.stops) == 2
    assert all(not ("ALPHA" in s and "BETA" in s) for s in gen.stops), gen.stops
