"""Tree rollouts with generation here and envs + Docker sandboxes on a loopback ``branchgym serve``
equal the same rollouts in-process: token ids, loss masks, tree, rewards and tool results.

Two generators over the tiny model: the real model sampling (``HFPolicy``, exact entropies drive
the branch rule), and a scripted writer of stateful python (policy side only; the env, the sandbox
and every clone are real), so that each branch's tool results depend on the sandbox state it
inherited through ``clone()`` on the server.
"""

from __future__ import annotations

import random
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from branchgym.agents.policy import Completion, SamplingParams
from branchgym.algorithms.config import BranchConfig
from branchgym.algorithms.rollout import tree_rollout

pytestmark = [pytest.mark.openenv, pytest.mark.docker, pytest.mark.slow]


class StatefulPython:
    """Writes ``<python>`` cells that grow interpreter state and a workspace file with random
    constants, then an answer; random per-token entropies make the branch rule fire."""

    def __init__(self, tokenizer: Any, seed: int = 0, calls: int = 3) -> None:
        self.tok, self.rng, self.calls = tokenizer, random.Random(seed), calls
        self.base: int | None = None

    vocab_size = property(lambda self: len(self.tok.get_vocab()))

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        return list(self.tok.apply_chat_template(messages, add_generation_prompt=True,
                                                 tokenize=True, return_dict=False))

    def encode(self, text: str) -> list[int]:
        return list(self.tok.encode(text, add_special_tokens=False))

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode(list(ids), skip_special_tokens=False)

    def generate(self, prompts: list[list[int]], params: SamplingParams) -> list[Completion]:
        if self.base is None:  # "<result>" in the task prompt itself (the protocol's example)
            self.base = min(self.decode(p).count("<result>") for p in prompts)
        out = []
        for i, p in enumerate(prompts):
            k = self.rng.randrange(1, 1000)
            if self.decode(p).count("<result>") - self.base >= self.calls:
                text, stop = "<answer>\\boxed{0}</answer>", "</answer>"
            else:
                text = (f"<python>s = globals().get('s', 0) * 7 + {k}\n"
                        f"open('log.txt', 'a').write('{k},')\n"
                        f"print(s, open('log.txt').read())</python>")
                stop = "</python>"
            ids = self.encode(text)
            ents = [self.rng.uniform(0.0, 3.0) for _ in ids]
            out.append(Completion(ids, [-1.0] * len(ids), ents, text, "stop", stop, prompt_index=i))
        return out


def _view(batch: Any) -> dict[str, Any]:
    trajs = batch.trajectories
    return {
        "tokens": [(t.token_ids, t.loss_mask) for t in trajs],
        "rewards": list(batch.rewards),
        "tool_results": [[s.observation for s in t.steps] for t in trajs],
        "ends": [t.end_reason for t in trajs],
        "parents": list(batch.parent_rows),
        "branch_points": list(batch.branch_points),
        "tool_calls": batch.tool_calls,
    }


def _both(code_server: Any, make_policy: Any, **kw: Any) -> tuple[Any, Any]:
    from branchgym.integrations.openenv import RemoteEnvHandle

    def local() -> Any:
        return gym.make("CodeExec-Offline-v0", split="smoke", sandbox="docker")

    def remote() -> RemoteEnvHandle:
        return RemoteEnvHandle(code_server.url)

    env = local()
    tids = [t.id for t in env.unwrapped.tasks[:2]]
    env.close()
    out = []
    for make in (local, remote):
        out.append(tree_rollout(make, make_policy(), tids, rng=np.random.default_rng(3), **kw))
    return out[0], out[1]


def test_stateful_python_tree_remote_equals_in_process(code_server, tiny_model) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    here, there = _both(code_server, lambda: StatefulPython(tok, seed=5),
                        params=SamplingParams(max_new_tokens=64),
                        branch=BranchConfig(n=4, initial=2, weight=0.5), max_response_tokens=2048)
    assert there.counts.get("clones", 0) == here.counts.get("clones", 0) > 0
    assert _view(there) == _view(here)
    assert here.tool_calls > 4
    # a branch's results continue its parent's state: every python result has the running log
    results = [o for t in there.trajectories for o in (s.observation for s in t.steps) if "," in o]
    assert results and all("log" not in r and "Error" not in r for r in results)
    assert code_server.wait_stats(lambda s: s["sessions"] == 0)["sessions"] == 0


def test_tiny_model_tree_remote_equals_in_process(code_server, tiny_model) -> None:
    from branchgym.agents.hf import HFPolicy

    here, there = _both(code_server, lambda: HFPolicy(tiny_model, device="cpu", seed=0),
                        params=SamplingParams(max_new_tokens=12, temperature=1.0),
                        branch=BranchConfig(n=4, initial=2), max_response_tokens=36,
                        entropy_source="exact")
    assert len(there) == len(here) == 8 and there.counts.get("clones", 0) > 0
    assert _view(there) == _view(here)
    assert [t.logprobs for t in there.trajectories] == [t.logprobs for t in here.trajectories]
    assert code_server.wait_stats(lambda s: s["sessions"] == 0)["sessions"] == 0
