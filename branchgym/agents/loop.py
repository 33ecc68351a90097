"""The rollout engine's round loop: ``run_round``, ``LiveEpisode``, ``run_episodes``.

Every rollout in branchgym goes through :func:`run_round` (docs/rollout.md): the flat and tree
rollouts of the trainer and the benchmarks, ``branchgym eval`` with an LLM policy, and
:func:`run_episodes` here. A round

1. generates one segment for every live episode in **one** batched call to the generator (seam
   a, :class:`~branchgym.agents.policy.TokenGenerator`), with the protocol's stop strings;
2. appends the tokens as sampled (loss mask 1) and reads each segment's entropy;
3. runs the tool calls (``step`` of seam b, :class:`~branchgym.envs.handle.EnvHandle`) of all
   episodes whose segment ended **at the same time** on a bounded thread pool
   (:class:`ToolExecutor`), and applies their results in episode order, so the trajectories equal
   those of a sequential loop; an exception in one ``step`` ends that episode only
   (``end_reason == "env_error"``);
4. appends each observation's own token ids (loss mask 0; text is never re-tokenised). An
   observation that would leave no room in the response budget for another model token ends the
   episode instead (``end_reason == "response_budget"``, the observation kept in ``steps`` but
   not in the tokens), so a response never exceeds ``max_response_tokens`` (verl's and TRL's
   fixed response length).

Exact token ids throughout: the prompt comes from the chat template over
``info["messages"]``; decoded text is only ever sent to the env. A segment cut by the token limit
continues in the next round while the response budget lasts (what ARPO's rollout does), unless the
episode was started with ``each_call_is_a_turn`` (``branchgym eval``: every generation call is one
turn sent to the env, and an EOS does not end the episode).
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple

from branchgym.agents.entropy import ARPO_ENTROPY_TOKENS, arpo_segment_entropy, segment_entropy
from branchgym.agents.executor import DEFAULT_TOOL_WORKERS, PhaseTimer, ToolExecutor, ToolSpan
from branchgym.agents.policy import Completion, SamplingParams, generate_with
from branchgym.agents.trajectory import Segment, Step, ToolCall, Trajectory
from branchgym.envs.handle import EnvHandle, as_env_handle
from branchgym.errors import ConfigError

__all__ = [
    "LiveEpisode", "run_round", "run_episode", "run_episodes", "protocol_stop_strings", "PhaseTimer",
    "ToolExecutor", "ToolSpan", "SegmentResult", "segment_entropy_of", "EntropySource",
    "DEFAULT_TOOL_WORKERS",
]

EntropySource = Literal["topk", "exact"]

_node_ids = itertools.count(1)


def protocol_stop_strings(env: Any) -> tuple[str, ...]:
    """The stop strings of the env's tool-call protocol (empty if it declares none)."""
    if isinstance(env, EnvHandle):
        return tuple(env.stop_strings)
    proto = getattr(getattr(env, "unwrapped", env), "protocol", None)
    return tuple(getattr(proto, "stop_strings", ()) or ())


def _tool_name(stop: str | None) -> str:
    """``"</search>"`` -> ``"search"``; other stop strings are named as they are."""
    if stop and stop.startswith("</") and stop.endswith(">"):
        return stop[2:-1]
    return stop or ""


def segment_entropy_of(
    c: Completion, vocab_size: int, source: EntropySource, max_tokens: int = ARPO_ENTROPY_TOKENS
) -> float:
    """H_seg of a completion's first ≤``max_tokens`` positions, divided by ln|V| (docs/algorithms.md).

    ``topk``: ARPO's truncated top-k entropy (needs ``logprobs_topk`` > 0 in the sampling
    params); ``exact``: the same sum with the exact per-token entropies from the logits.
    """
    if source == "topk":
        if c.top_logprobs is None:
            raise ConfigError(
                "entropy_source='topk' needs top-k logprobs; set logprobs_topk=10 in the rollout "
                "sampling params (ARPO) or use entropy_source='exact'."
            )
        return arpo_segment_entropy(c.top_logprobs[:max_tokens], vocab_size)
    if source == "exact":
        return segment_entropy(c.entropies, vocab_size, max_positions=max_tokens)
    raise ConfigError(f"entropy_source={source!r}; use 'topk' or 'exact'.")


class LiveEpisode:
    """An env (behind its :class:`EnvHandle`) being played, with its :class:`Trajectory` so far."""

    def __init__(
        self, handle: EnvHandle, trajectory: Trajectory, stop: tuple[str, ...],
        max_response_tokens: int | None, *, each_call_is_a_turn: bool = False,
    ) -> None:
        self.handle = handle
        self.trajectory = trajectory
        self.stop = stop
        self.max_response_tokens = max_response_tokens
        self.each_call_is_a_turn = each_call_is_a_turn
        self._open_segment = False  # the last segment was cut by length and continues
        self.env_exception: BaseException | None = None  # what step() raised (end "env_error")

    @classmethod
    def start(
        cls,
        env: Any,
        generator: Any,
        *,
        seed: int | None = None,
        options: dict[str, Any] | None = None,
        extra_stop: Sequence[str] = (),
        max_response_tokens: int | None = 4096,
        each_call_is_a_turn: bool = False,
    ) -> LiveEpisode:
        """Start an episode on ``env`` (a gym env or an :class:`EnvHandle`); the prompt ids come
        from ``info["messages"]`` and the chat template. ``max_response_tokens=None``: no budget."""
        if max_response_tokens is not None and max_response_tokens < 1:
            raise ConfigError(f"max_response_tokens must be >= 1 (or None), got {max_response_tokens!r}")
        handle = as_env_handle(env)
        obs, info = handle.start(seed=seed, options=options)
        messages = info.get("messages")
        if not messages:
            # An env without chat messages: treat the observation as the user turn.
            messages = [{"role": "user", "content": obs}]
        prompt_ids = generator.encode_chat(messages)
        traj = Trajectory(prompt_ids=prompt_ids, prompt_text=generator.decode(prompt_ids), info=dict(info))
        stop = tuple(dict.fromkeys((*handle.stop_strings, *extra_stop)))
        return cls(handle, traj, stop, max_response_tokens, each_call_is_a_turn=each_call_is_a_turn)

    @property
    def env(self) -> Any:
        """The env behind the handle (the handle itself when it wraps none, e.g. a remote one)."""
        return getattr(self.handle, "env", self.handle)

    @property
    def done(self) -> bool:
        return self.trajectory.done

    @property
    def budget_left(self) -> int:
        if self.max_response_tokens is None:
            return sys.maxsize
        return self.max_response_tokens - len(self.trajectory.response_ids)

    @property
    def context_ids(self) -> list[int]:
        return self.trajectory.token_ids

    def fork(self) -> LiveEpisode:
        """An independent continuation: cloned env handle (sandbox forked) and copied trajectory."""
        child = LiveEpisode(
            self.handle.clone(), self.trajectory.fork(next(_node_ids)), self.stop,
            self.max_response_tokens, each_call_is_a_turn=self.each_call_is_a_turn,
        )
        child._open_segment = self._open_segment
        return child

    # -- one round ---------------------------------------------------------------------------

    def record(self, c: Completion, generator: Any) -> bool:
        """Append a completion; returns True when the segment is finished and goes to the env."""
        t = self.trajectory
        start = len(t.response_ids)
        text = generator.decode(c.token_ids)  # eos included, so decode(token_ids) == transcript
        t.append_model(c.token_ids, c.logprobs, c.entropies, text)
        if self._open_segment:
            seg = t.segments[-1]
            seg.end = len(t.response_ids)
        else:
            seg = Segment(start=start, end=len(t.response_ids))
            t.segments.append(seg)
        if c.top_logprobs is not None and len(seg.top_logprobs) < ARPO_ENTROPY_TOKENS:
            seg.top_logprobs.extend(c.top_logprobs[: ARPO_ENTROPY_TOKENS - len(seg.top_logprobs)])
            seg.entropy = arpo_segment_entropy(seg.top_logprobs, generator.vocab_size)
        seg.finish_reason, seg.stop_string = c.finish_reason, c.stop_string
        if c.finish_reason == "length":
            if self.budget_left <= 0:
                self._open_segment = False
                t.truncated, t.end_reason = True, "response_budget"
                return False
            self._open_segment = not self.each_call_is_a_turn
            return self.each_call_is_a_turn
        self._open_segment = False
        return True

    def action_text(self, generator: Any) -> str:
        """The text of the finished segment, as sent to the env (a final EOS token left out)."""
        t = self.trajectory
        seg = t.segments[-1]
        ids = t.response_ids[seg.start : seg.end]
        if seg.finish_reason == "eos":
            ids = ids[:-1]
        return generator.decode(ids)

    def apply_step(self, action: str, result: Any, generator: Any) -> None:
        """Record what ``step(action)`` returned and append the observation's ids (mask 0)."""
        obs, reward, terminated, truncated, info = result
        t = self.trajectory
        seg_i = len(t.segments) - 1
        seg = t.segments[seg_i]
        t.reward += float(reward)
        t.info = dict(info)
        span = (len(t.response_ids), len(t.response_ids))
        overflow = False  # the observation leaves no room for a reply: the budget ends here
        if not (terminated or truncated) and obs:
            ids = generator.encode(obs)
            if len(ids) >= self.budget_left:
                overflow = True  # not appended: the response stays within max_response_tokens
            else:
                span = t.append_env(ids, obs)
        t.steps.append(Step(seg_i, action, obs, span, float(reward), bool(terminated), bool(truncated),
                            bool(info.get("invalid_action", False))))
        # A tool call is a stop that the env executed and answered (not an answer, not refused).
        if seg.finish_reason == "stop" and not (terminated or truncated or info.get("invalid_action")):
            tool = info.get("tool") or _tool_name(seg.stop_string)  # hermes: the function name
            t.tool_calls.append(ToolCall(seg_i, seg.end - 1, str(tool), span))
        if terminated or truncated:
            t.terminated, t.truncated = bool(terminated), bool(truncated)
            t.end_reason = "terminated" if terminated else "env_truncated"
        elif seg.finish_reason == "eos" and not self.each_call_is_a_turn:
            # The model ended its turn without finishing the task: nothing more will come.
            t.truncated, t.end_reason = True, "eos_without_answer"
        elif overflow or self.budget_left <= 0:
            t.truncated, t.end_reason = True, "response_budget"

    def fail_step(self, action: str, error: BaseException) -> None:
        """``step(action)`` raised: end the trajectory and keep the error (``info["env_error"]``)."""
        t = self.trajectory
        text = f"{type(error).__name__}: {error}"
        n = len(t.response_ids)
        t.steps.append(Step(len(t.segments) - 1, action, text, (n, n), 0.0, False, True))
        t.info = {**t.info, "env_error": text}
        t.truncated, t.end_reason = True, "env_error"
        self.env_exception = error  # the object itself, for callers that re-raise it (eval)


def _map_calls(tools: ToolExecutor | None, calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` together on ``tools``, or on a default-sized executor made for them."""
    if tools is not None:
        return tools.map(calls)
    with ToolExecutor() as pool:
        return pool.map(calls)


class SegmentResult(NamedTuple):
    """What one round did for one episode: the completion, its H_seg (None when not asked) and
    whether the segment ended in a tool call that the env executed."""

    completion: Completion
    entropy: float | None
    tool_called: bool


def _clip_completion(c: Completion, budget: int, generator: Any) -> Completion:
    """Cut a completion to ``budget`` tokens (the episode's response budget) as a 'length' stop."""
    if len(c.token_ids) <= budget:
        return c
    ids = c.token_ids[:budget]
    return Completion(
        token_ids=ids, logprobs=c.logprobs[:budget], entropies=c.entropies[:budget],
        text=generator.decode(ids), finish_reason="length", stop_string=None,
        top_logprobs=None if c.top_logprobs is None else c.top_logprobs[:budget],
        entropy_kind=c.entropy_kind, prompt_index=c.prompt_index, meta=c.meta,
    )


def _close_all(eps: Sequence[LiveEpisode], timer: PhaseTimer, tools: ToolExecutor | None) -> None:
    """Release finished episodes' envs (their sandbox sessions) at once, on the tool executor; the
    trajectories stay. A broken env (``env_error``) may fail to close as well: that is ignored."""
    if not eps:
        return

    def close(ep: LiveEpisode) -> BaseException | None:
        try:
            ep.handle.close()
        except Exception as exc:
            return exc
        return None

    t0 = time.perf_counter()
    calls = [lambda ep=ep: close(ep) for ep in eps]
    errors = _map_calls(tools, calls)
    timer.add("close", time.perf_counter() - t0)
    for ep, err in zip(eps, errors):
        if err is not None and ep.trajectory.end_reason != "env_error":
            raise err


def _timed_step(handle: EnvHandle, action: str) -> tuple[Any, float, float]:
    t0 = time.perf_counter()
    try:
        result: Any = handle.step(action)
    except Exception as exc:  # this trajectory's failure, not the round's
        result = exc
    return result, t0, time.perf_counter()


def run_round(
    episodes: Sequence[LiveEpisode],
    generator: Any,
    params: SamplingParams,
    *,
    call_limit: int | None = None,
    timer: PhaseTimer | None = None,
    entropy_source: EntropySource | None = None,
    tools: ToolExecutor | None = None,
    close_finished: bool = True,
    entropy_tokens: int = ARPO_ENTROPY_TOKENS,
) -> dict[int, SegmentResult]:
    """One round: one segment for every live episode, then all their tool calls at once.

    Args:
        episodes: the episodes; finished ones are skipped.
        generator: a :class:`~branchgym.agents.policy.TokenGenerator` (or the async form).
        params: sampling params (``n`` must be 1); their stop strings join each episode's.
        call_limit: ARPO's per-trajectory tool-call limit: a call over it ends the trajectory
            without running the tool (``end_reason == "call_limit"``), as the released code
            appends EOS.
        timer: accumulates seconds, counters and tool-call spans.
        entropy_source: compute each segment's H_seg from ``"topk"`` logprobs or ``"exact"``
            entropies (tree rollouts read it); None skips it.
        tools: the executor for the tool calls (default: a fresh one with default size).
        close_finished: close the env handle of an episode as soon as it ends.
        entropy_tokens: H_seg reads the first ≤ this many positions of a segment (ARPO: 20).

    Returns:
        Per index into ``episodes`` (live ones only), a :class:`SegmentResult`.
    """
    if params.n != 1:
        raise ConfigError(
            f"the engine samples one completion per episode (params.n={params.n}); run more "
            "episodes (a larger group) or fork a LiveEpisode for more"
        )
    timer = timer if timer is not None else PhaseTimer()
    live = [i for i, e in enumerate(episodes) if not e.done]
    if not live:
        return {}
    timer.rounds += 1
    # One call per set of stop strings (one for the whole round when the episodes share a
    # protocol, as in a rollout), so no episode's segment ends at another protocol's stop string;
    # per-episode budgets are applied by cutting afterwards.
    groups: dict[tuple[str, ...], list[int]] = {}
    for i in live:
        groups.setdefault(episodes[i].stop, []).append(i)
    by_index: dict[int, Completion] = {}
    for ep_stop, idx in groups.items():
        stop = tuple(dict.fromkeys((*params.stop, *ep_stop)))
        max_new = max(1, min(params.max_new_tokens, max(episodes[i].budget_left for i in idx)))
        p = params.replace(max_new_tokens=max_new, stop=stop)
        t0 = time.perf_counter()
        got = generate_with(generator, [episodes[i].context_ids for i in idx], p)
        timer.add("generation", time.perf_counter() - t0)
        timer.count("generate_calls")
        if len(got) != len(idx):
            raise ConfigError(f"{type(generator).__name__}.generate returned {len(got)} completions for "
                              f"{len(idx)} prompts; a token generator returns one per prompt when n=1")
        by_index.update(zip(idx, got))
    completions = [by_index[i] for i in live]
    out: dict[int, SegmentResult] = {}
    to_step: list[int] = []
    ended: list[LiveEpisode] = []  # finished without a step; closed with the stepped ones
    for i, c in zip(live, completions):
        ep = episodes[i]
        c = _clip_completion(c, ep.budget_left, generator)
        timer.count("generated_tokens", len(c.token_ids))
        h = None if entropy_source is None else segment_entropy_of(
            c, generator.vocab_size, entropy_source, max_tokens=entropy_tokens
        )
        out[i] = SegmentResult(c, h, False)
        if not ep.record(c, generator):
            if ep.done:  # response budget used up
                ended.append(ep)
            continue
        seg = ep.trajectory.segments[-1]
        if seg.finish_reason == "stop" and call_limit is not None and ep.trajectory.num_tool_calls >= call_limit:
            # Over ARPO's call_limit: the released code appends EOS and ends the trajectory
            # without running the tool (no answer, so the reward stays 0).
            t = ep.trajectory
            t.truncated, t.end_reason = True, "call_limit"
            ended.append(ep)
            continue
        to_step.append(i)
    _step_all([episodes[i] for i in to_step], to_step, out, generator, timer, tools)
    if close_finished:
        _close_all(ended + [episodes[i] for i in to_step if episodes[i].done], timer, tools)
    return out


def _step_all(
    eps: list[LiveEpisode], idx: list[int], out: dict[int, SegmentResult], generator: Any,
    timer: PhaseTimer, tools: ToolExecutor | None,
) -> None:
    """Run every episode's ``step`` concurrently, then apply the results in episode order."""
    if not eps:
        return
    actions = [ep.action_text(generator) for ep in eps]  # tokenizers stay on this thread
    calls = [lambda h=ep.handle, a=a: _timed_step(h, a) for ep, a in zip(eps, actions)]
    t0 = time.perf_counter()
    results = _map_calls(tools, calls)
    timer.add("tools", time.perf_counter() - t0)
    for i, ep, action, (result, start, end) in zip(idx, eps, actions, results):
        error = None
        calls_before = ep.trajectory.num_tool_calls
        if isinstance(result, BaseException):
            ep.fail_step(action, result)
            error = ep.trajectory.info["env_error"]
            timer.count("tool_errors")
        else:
            ep.apply_step(action, result, generator)
        timer.tool_spans.append(ToolSpan(ep.trajectory.node_id, timer.rounds, start, end, error))
        called = ep.trajectory.num_tool_calls > calls_before
        if called:
            timer.count("tool_calls")
        out[i] = out[i]._replace(tool_called=called)


def run_episodes(
    envs: Sequence[Any],
    generator: Any,
    params: SamplingParams,
    *,
    seeds: Sequence[int | None] | None = None,
    options: Sequence[dict[str, Any] | None] | None = None,
    max_response_tokens: int | None = 4096,
    max_rounds: int = 1000,
    tool_workers: int | None = None,
) -> list[Trajectory]:
    """Play one episode in each env (gym envs or env handles), all in the same rounds.

    The envs are the caller's: they are not closed. ``tool_workers`` bounds the tool calls run
    at once (default :data:`DEFAULT_TOOL_WORKERS`).
    """
    n = len(envs)
    if seeds is not None and len(seeds) != n:
        raise ConfigError(f"got {len(seeds)} seeds for {n} envs; give one per env (or None)")
    if options is not None and len(options) != n:
        raise ConfigError(f"got {len(options)} options for {n} envs; give one per env (or None)")
    episodes = [
        LiveEpisode.start(
            env, generator, seed=None if seeds is None else seeds[i],
            options=None if options is None else options[i], extra_stop=params.stop,
            max_response_tokens=max_response_tokens,
        )
        for i, env in enumerate(envs)
    ]
    with ToolExecutor(tool_workers) as tools:
        for _ in range(max_rounds):
            if all(e.done for e in episodes):
                break
            run_round(episodes, generator, params, tools=tools, close_finished=False)
    for e in episodes:
        if not e.done:
            e.trajectory.truncated, e.trajectory.end_reason = True, "max_rounds"
    return [e.trajectory for e in episodes]


def run_episode(env: Any, generator: Any, params: SamplingParams, *, seed: int | None = None, **kw: Any) -> Trajectory:
    """Play one episode; see :func:`run_episodes` for the keyword arguments."""
    return run_episodes([env], generator, params, seeds=[seed], **kw)[0]
