"""The rollout engine's two seams and its concurrent tool calls (docs/rollout.md).

- Seam (a): a generator written here as a plain class over the tiny transformers model (no
  branchgym base class) drives flat and tree rollouts, in its sync and its async form.
- Seam (b): env handles; a round's ``step`` calls run at the same time (shown by a barrier that
  only opens when all of them are inside ``step`` at once, and by the engine's recorded spans),
  their results are applied in a fixed order (same trajectories as one worker), and an exception
  in one ``step`` ends that trajectory only.
- With the Docker sandbox: a 5 s tool call in one trajectory overlaps every other call of its
  round, and a tool that raises leaves the other trajectories' results equal to a fresh replay.
"""

from __future__ import annotations

import threading
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from branchgym.agents.loop import LiveEpisode, ToolExecutor, run_round
from branchgym.agents.policy import AsyncTokenGenerator, Completion, Policy, SamplingParams, TokenGenerator
from branchgym.algorithms.config import BranchConfig
from branchgym.algorithms.quickstart_task import make_lookup_env
from branchgym.algorithms.rollout import flat_rollout, tree_rollout
from branchgym.errors import ConfigError, SandboxError

LOOKUP = lambda: make_lookup_env("smoke")  # noqa: E731


def _lookup_ids(k: int) -> list[str]:
    from branchgym.algorithms.quickstart_task import lookup_tasks

    return [t.id for t in lookup_tasks("smoke")[:k]]


# -- seam (a): a generator that is no branchgym class ----------------------------------------------


class PlainGenerator:
    """Token ids in, token ids out over a transformers causal LM, written from scratch: one
    sequence at a time, full forward per token (no cache), temperature sampling with its own
    ``torch.Generator``; exact log-probs and entropies of ``softmax(z / T)``."""

    def __init__(self, path: Any, seed: int = 0) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        self.rng = torch.Generator().manual_seed(seed)
        self.calls = 0

    @property
    def vocab_size(self) -> int:
        return len(self.tok.get_vocab())

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        return list(self.tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                 return_dict=False))

    def encode(self, text: str) -> list[int]:
        return list(self.tok.encode(text, add_special_tokens=False))

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode(list(ids), skip_special_tokens=False)

    def generate(self, prompts: list[list[int]], params: SamplingParams) -> list[Completion]:
        import torch

        self.calls += 1
        out = []
        for i, prompt in enumerate(prompts):
            ids, logps, ents = list(prompt), [], []
            new: list[int] = []
            finish, hit = "length", None
            for _ in range(params.max_new_tokens):
                with torch.no_grad():
                    z = self.model(input_ids=torch.tensor([ids])).logits[0, -1].float()
                logp = torch.log_softmax(z / params.logprob_temperature, -1)
                tok = int(torch.multinomial(logp.exp(), 1, generator=self.rng)) if not params.greedy else int(z.argmax())
                new.append(tok)
                ids.append(tok)
                logps.append(float(logp[tok]))
                ents.append(float(-(logp.exp() * logp).sum()))
                if tok == self.tok.eos_token_id:
                    finish = "eos"
                    break
                text = self.decode(new)
                hit = next((s for s in params.stop if text.endswith(s)), None)
                if hit:
                    finish = "stop"
                    break
            out.append(Completion(token_ids=new, logprobs=logps, entropies=ents, text=self.decode(new),
                                  finish_reason=finish, stop_string=hit, prompt_index=i))
        return out


class AsyncOnly:
    """The async form only: ``agenerate`` (as an integration's server client would have)."""

    def __init__(self, inner: PlainGenerator) -> None:
        self.inner = inner
        self.encode_chat, self.encode, self.decode = inner.encode_chat, inner.encode, inner.decode

    @property
    def vocab_size(self) -> int:
        return self.inner.vocab_size

    async def agenerate(self, prompts: list[list[int]], params: SamplingParams) -> list[Completion]:
        return self.inner.generate(prompts, params)


def _tokens(batch: Any) -> list[tuple[list[int], list[int]]]:
    return [(t.token_ids, t.loss_mask) for t in batch.trajectories]


def test_plain_generator_drives_flat_and_tree_rollouts(rollout_tiny) -> None:
    import torch

    from branchgym.agents.hf import HFPolicy
    from branchgym.algorithms.rollout.tensors import to_tensors

    gen = PlainGenerator(rollout_tiny, seed=1)
    assert isinstance(gen, TokenGenerator) and not isinstance(gen, Policy)
    params = SamplingParams(max_new_tokens=8, temperature=1.0)
    flat = flat_rollout(LOOKUP, gen, _lookup_ids(2), params, group_size=2, max_response_tokens=24)
    assert len(flat) == 4 and gen.calls == flat.counts["generate_calls"]
    assert flat.generated_tokens == sum(t.num_generated_tokens for t in flat.trajectories) > 0
    # exact ids: the trainable forward on the rollout's ids reproduces the generator's log-probs
    hf = HFPolicy(rollout_tiny, device="cpu")
    tt = to_tensors(flat, hf.pad_token_id)
    with torch.no_grad():
        logp, _ = hf.forward_logprobs(tt.input_ids, tt.attention_mask)
    for r, t in enumerate(flat.trajectories):
        assert gen.decode(t.token_ids) == t.transcript
        p = len(t.prompt_ids)
        pos = [p + i for i, m in enumerate(t.loss_mask) if m]
        want = torch.tensor([lp for lp, m in zip(t.logprobs, t.loss_mask) if m])
        assert torch.allclose(logp[r, pos], want, atol=1e-4)

    tree = tree_rollout(LOOKUP, gen, _lookup_ids(2), params, branch=BranchConfig(n=6, initial=3),
                        rng=np.random.default_rng(0), max_response_tokens=24, entropy_source="exact")
    assert len(tree) == 12 and tree.counts.get("clones", 0) > 0
    for row, t in enumerate(tree.trajectories):
        parent = tree.parent_rows[row]
        if parent >= 0:
            bp = tree.branch_points[row]
            assert t.response_ids[:bp] == tree.trajectories[parent].response_ids[:bp]


def test_async_only_generator_gives_the_same_trajectories(rollout_tiny) -> None:
    params = SamplingParams(max_new_tokens=8, temperature=1.0)
    sync = flat_rollout(LOOKUP, PlainGenerator(rollout_tiny, seed=4), _lookup_ids(1), params, group_size=3,
                        max_response_tokens=20)
    agen = AsyncOnly(PlainGenerator(rollout_tiny, seed=4))
    assert isinstance(agen, AsyncTokenGenerator) and not isinstance(agen, TokenGenerator)
    via_async = flat_rollout(LOOKUP, agen, _lookup_ids(1), params, group_size=3, max_response_tokens=20)
    assert _tokens(sync) == _tokens(via_async)


def test_policy_agenerate_equals_generate(hf) -> None:
    import asyncio

    params = SamplingParams(max_new_tokens=6, temperature=1.0, seed=3)
    prompts = [[5, 6, 7], [8, 9]]
    a = hf.generate(prompts, params)
    b = asyncio.run(hf.agenerate(prompts, params))
    assert [c.token_ids for c in a] == [c.token_ids for c in b]
    assert [c.logprobs for c in a] == [c.logprobs for c in b]


# -- seam (b): env handles and concurrent steps ---------------------------------------------------


class BarrierEnv:
    """A tool env whose ``step`` waits until ``parties`` steps are inside it at once.

    Run one after another, the first step would wait alone and the barrier would break; so a
    round whose steps all return proves that they ran at the same time. ``raise_on`` makes the
    step of an action containing it raise after the barrier (a broken tool).
    """

    class protocol:  # noqa: N801 - the attribute ToolEnv exposes
        stop_strings = ("</search>", "</answer>")

    def __init__(self, barrier: threading.Barrier, raise_on: str | None = None) -> None:
        self.barrier, self.raise_on = barrier, raise_on
        self.unwrapped = self
        self.actions: list[str] = []
        self.closed = False

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[str, dict]:
        return "q", {"messages": [{"role": "user", "content": "Find the code."}]}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        self.actions.append(action)
        self.barrier.wait()
        if self.raise_on and self.raise_on in action:
            raise SandboxError("the tool's backend died (test)")
        return f"<result>seen {len(self.actions)}</result>", 0.0, False, False, {"tool": "search"}

    def close(self) -> None:
        self.closed = True


class CountingSearches:
    """A scripted generator (the policy side only) that writes ``<search>k</search>`` calls."""

    def __init__(self, tokenizer: Any, words: list[str]) -> None:
        self.tok, self.words = tokenizer, words

    vocab_size = property(lambda self: len(self.tok.get_vocab()))
    encode_chat = PlainGenerator.encode_chat
    encode = PlainGenerator.encode
    decode = PlainGenerator.decode

    def generate(self, prompts: list[list[int]], params: SamplingParams) -> list[Completion]:
        out = []
        for i, _ in enumerate(prompts):
            ids = self.encode(f"<search>{self.words[i]}</search>")
            out.append(Completion(ids, [-1.0] * len(ids), None, self.decode(ids), "stop", "</search>",
                                  prompt_index=i))
        return out


def test_steps_of_a_round_run_at_the_same_time_and_a_raise_ends_one_trajectory(rollout_tiny) -> None:
    from transformers import AutoTokenizer

    n = 5
    barrier = threading.Barrier(n, timeout=30)
    envs = [BarrierEnv(barrier, raise_on="boom") for _ in range(n)]
    gen = CountingSearches(AutoTokenizer.from_pretrained(rollout_tiny), ["a", "b", "boom", "c", "d"])
    eps = [LiveEpisode.start(e, gen, max_response_tokens=500) for e in envs]
    for i, ep in enumerate(eps):
        ep.trajectory.node_id = i
    from branchgym.agents.loop import PhaseTimer

    timer = PhaseTimer()
    with ToolExecutor() as tools:
        res = run_round(eps, gen, SamplingParams(max_new_tokens=16), timer=timer, tools=tools)
    assert not barrier.broken  # all five steps were inside step() together
    failed = eps[2].trajectory
    assert failed.end_reason == "env_error" and "backend died" in failed.info["env_error"]
    assert envs[2].closed and not res[2].tool_called
    for i in (0, 1, 3, 4):
        t = eps[i].trajectory
        assert not t.done and t.num_tool_calls == 1 and res[i].tool_called
        assert gen.decode(t.response_ids[t.tool_calls[0].result_span[0]:]) == "<result>seen 1</result>"
    spans = sorted(timer.tool_spans, key=lambda s: s.node_id)
    assert [s.node_id for s in spans] == list(range(n)) and spans[2].error
    assert max(s.start for s in spans) < min(s.end for s in spans)  # every interval overlaps every other
    assert timer.counts["tool_errors"] == 1 and timer.counts["tool_calls"] == 4


def test_one_worker_runs_steps_one_after_another(rollout_tiny) -> None:
    from transformers import AutoTokenizer

    barrier = threading.Barrier(1)  # a party of one: never waits
    envs = [BarrierEnv(barrier) for _ in range(3)]
    gen = CountingSearches(AutoTokenizer.from_pretrained(rollout_tiny), ["a", "b", "c"])
    eps = [LiveEpisode.start(e, gen, max_response_tokens=500) for e in envs]
    from branchgym.agents.loop import PhaseTimer

    timer = PhaseTimer()
    run_round(eps, gen, SamplingParams(max_new_tokens=16), timer=timer, tools=ToolExecutor(1))
    spans = timer.tool_spans
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:]))  # sequential: no overlap
    with pytest.raises(ConfigError, match="tool_workers"):
        ToolExecutor(0)


class CountingHandle:
    """An :class:`EnvHandle` written from scratch over a lookup env (start/step/clone/close)."""

    clones = 0

    def __init__(self, env: Any = None) -> None:
        self.env_ = env if env is not None else LOOKUP()
        self.stop_strings = tuple(self.env_.protocol.stop_strings)

    def start(self, seed: int | None = None, options: dict | None = None) -> tuple[str, dict]:
        return self.env_.reset(seed=seed, options=options)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        return self.env_.step(action)

    def clone(self) -> CountingHandle:
        from branchgym.envs.clone import clone

        CountingHandle.clones += 1
        return CountingHandle(clone(self.env_))

    def close(self) -> None:
        self.env_.close()


def test_custom_env_handles_drive_a_tree_like_the_gym_env(code_policy_factory) -> None:
    from branchgym.envs.handle import EnvHandle

    assert isinstance(CountingHandle(), EnvHandle)
    tids = _lookup_ids(2)
    kw = dict(branch=BranchConfig(n=6, initial=2, weight=0.5), max_response_tokens=2048)
    via_handle = tree_rollout(CountingHandle, code_policy_factory(3, "search"), tids, SamplingParams(),
                              rng=np.random.default_rng(4), **kw)
    via_env = tree_rollout(LOOKUP, code_policy_factory(3, "search"), tids, SamplingParams(),
                           rng=np.random.default_rng(4), **kw)
    assert CountingHandle.clones == via_handle.counts["clones"] > 0
    assert _tokens(via_handle) == _tokens(via_env) and via_handle.rewards == via_env.rewards


class SlowCloseEnv(BarrierEnv):
    """Answers end the episode at once; ``close`` waits until ``parties`` closes are inside it."""

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        self.actions.append(action)
        return "", 1.0, True, False, {}

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.barrier.wait()


class Answers(CountingSearches):
    def generate(self, prompts: list[list[int]], params: SamplingParams) -> list[Completion]:
        ids = self.encode("<answer>7</answer>")
        return [Completion(ids, [-1.0] * len(ids), None, self.decode(ids), "stop", "</answer>", prompt_index=i)
                for i in range(len(prompts))]


def test_finished_episodes_are_closed_at_the_same_time(rollout_tiny) -> None:
    from transformers import AutoTokenizer

    gen = Answers(AutoTokenizer.from_pretrained(rollout_tiny), [])
    barrier = threading.Barrier(4, timeout=30)
    envs = [SlowCloseEnv(barrier) for _ in range(4)]
    eps = [LiveEpisode.start(e, gen, max_response_tokens=100) for e in envs]
    run_round(eps, gen, SamplingParams(max_new_tokens=16))
    assert all(e.closed for e in envs) and not barrier.broken
    assert all(ep.trajectory.end_reason == "terminated" and ep.trajectory.reward == 1.0 for ep in eps)
    # one worker closes one after another: the first close waits alone and the barrier breaks
    lone = threading.Barrier(2, timeout=1)
    envs = [SlowCloseEnv(lone) for _ in range(2)]
    eps = [LiveEpisode.start(e, gen, max_response_tokens=100) for e in envs]
    with pytest.raises(threading.BrokenBarrierError):
        run_round(eps, gen, SamplingParams(max_new_tokens=16), tools=ToolExecutor(1))


def _codeexec(backend: str, **kw: Any):
    return lambda: gym.make("CodeExec-Offline-v0", split="smoke", sandbox=backend, **kw)


def test_concurrent_tools_give_the_same_trajectories_as_one_worker(code_policy_factory) -> None:
    """Local sandbox, stateful python calls: results are applied in a fixed order."""
    make = _codeexec("local")
    env = make()
    tids = [t.id for t in env.unwrapped.tasks[:2]]
    env.close()
    params = SamplingParams(max_new_tokens=64)
    one = tree_rollout(make, code_policy_factory(5), tids, params, branch=BranchConfig(n=4, initial=2, weight=0.5),
                       rng=np.random.default_rng(1), max_response_tokens=2048, tool_workers=1)
    many = tree_rollout(make, code_policy_factory(5), tids, params, branch=BranchConfig(n=4, initial=2, weight=0.5),
                        rng=np.random.default_rng(1), max_response_tokens=2048)
    assert _tokens(one) == _tokens(many) and one.parent_rows == many.parent_rows
    assert [[s.observation for s in t.steps] for t in one.trajectories] == [
        [s.observation for s in t.steps] for t in many.trajectories]
    assert one.tool_calls == many.tool_calls > 4


# -- the Docker sandbox: a slow tool and a broken tool in one tree --------------------------------


class SlowAndBrokenScript:
    """Scripted generator (policy side only; env, sandbox and clones are real). In the first round
    trajectory 0 runs a python call that sleeps 5 s, trajectory 1 calls a search tool that raises,
    the others run stateful python; later rounds run stateful python, then answer."""

    def __init__(self, tokenizer: Any, seed: int = 0) -> None:
        import random

        self.tok, self.rng = tokenizer, random.Random(seed)
        self.base: int | None = None  # "<result>" in the task prompt itself (the protocol's example)

    vocab_size = property(lambda self: len(self.tok.get_vocab()))
    encode_chat = PlainGenerator.encode_chat
    encode = PlainGenerator.encode
    decode = PlainGenerator.decode

    def generate(self, prompts: list[list[int]], params: SamplingParams) -> list[Completion]:
        out = []
        if self.base is None:
            self.base = min(self.decode(p).count("<result>") for p in prompts)
        for i, p in enumerate(prompts):
            seen = self.decode(p).count("<result>") - self.base
            k = self.rng.randrange(1, 1000)
            step = f"s = globals().get('s', 0) * 7 + {k}\nprint(s)"
            if seen >= 2:
                text, stop = "<answer>\\boxed{0}</answer>", "</answer>"
            elif seen == 0 and i == 0:
                text, stop = f"<python>import time\ntime.sleep(5)\n{step}</python>", "</python>"
            elif seen == 0 and i == 1:
                text, stop = "<search>boom</search>", "</search>"
            else:
                text, stop = f"<python>{step}</python>", "</python>"
            ids = self.encode(text)
            ents = [self.rng.uniform(0.0, 3.0) for _ in ids]
            out.append(Completion(ids, [-1.0] * len(ids), ents, text, "stop", stop, prompt_index=i))
        return out


def _broken_search() -> Any:
    """A search tool whose backend fails: ``call`` raises (an infrastructure error, not output)."""
    from branchgym.envs.tools.base import Tool

    class BrokenSearch(Tool):
        name, main_arg = "search", "query"
        description = "search (its backend is down)"

        def call(self, argument: str) -> Any:
            raise SandboxError(f"search backend unreachable for {argument!r} (test)")

    return BrokenSearch()


@pytest.mark.docker
def test_docker_tree_slow_tool_overlaps_the_round_and_broken_tool_ends_one_trajectory(rollout_tiny) -> None:
    from transformers import AutoTokenizer

    make = _codeexec("docker", tools=("python", _broken_search()))
    env = make()
    tid = env.unwrapped.tasks[0].id
    env.close()
    gen = SlowAndBrokenScript(AutoTokenizer.from_pretrained(rollout_tiny))
    batch = tree_rollout(make, gen, [tid], SamplingParams(max_new_tokens=64),
                         branch=BranchConfig(n=6, initial=4, weight=0.5), rng=np.random.default_rng(2),
                         max_response_tokens=2048, entropy_source="exact")
    distinct = list({id(t): t for t in batch.trajectories}.values())
    slow = [t for t in distinct if t.parent is None and "sleep" in t.steps[0].action]
    broken = [t for t in distinct if t.end_reason == "env_error"]
    assert len(slow) == 1 and len(broken) == 1 and broken[0].parent is None
    assert "search backend unreachable" in broken[0].info["env_error"]
    assert batch.metrics()["rollout/tool_errors"] == 1.0
    # The round of the 5 s call: every other call of that round ran during it (overlapping spans).
    spans = batch.extra["tool_spans"]
    s5 = next(s for s in spans if s.node_id == slow[0].node_id and s.round == 1)
    others = [s for s in spans if s.round == 1 and s is not s5]
    assert len(others) == 3
    for s in others:
        assert s.start < s5.end and s5.start < s.end, (s, s5)
    # The others' results are intact: each equals a fresh replay of its actions.
    assert batch.counts.get("clones", 0) >= 1
    for t in distinct:
        if t is broken[0]:
            continue
        assert t.end_reason == "terminated" and t.num_tool_calls == 2
        fresh = make()
        try:
            fresh.reset(options={"task_id": tid})
            assert [s.observation for s in t.steps] == [fresh.step(s.action)[0] for s in t.steps]
        finally:
            fresh.close()
