"""The quickstart's learning problem: look a code up with the search tool and copy it.

A task asks for the code of an item (``"What is the code of item #482? ..."``); the only way to
know it is a ``<search>482</search>`` call, whose BM25 result over a small offline corpus
(``"item #482 code=739 ..."``, plus distractor pages) holds it; the answer must copy it into
``\\boxed{}``. Keys and codes are random, so a model cannot memorise answers: held-out tasks
have keys never seen in training. Numbers are written after ``#`` / ``=`` so that the number in
the question, the query, the result and the answer is the same pre-token (byte-level BPE splits
``" 4821"`` and ``"4821"`` differently), which makes copying learnable by a tiny model.

The env is an ordinary :class:`~branchgym.envs.ToolEnv` (arpo protocol, search tool, F1
reward) built by :func:`make_lookup_env`, usable as ``--env
branchgym.algorithms.quickstart_task:make_lookup_env`` with ``branchgym train``.
"""

from __future__ import annotations

import random
from functools import lru_cache
from typing import Any

from branchgym.envs.types import GoldStep, Task
from branchgym.errors import ConfigError

__all__ = ["lookup_tasks", "lookup_corpus", "make_lookup_env", "LOOKUP_SPLITS", "SYSTEM_PROMPT"]

SYSTEM_PROMPT = (
    "Look the item up with <search>number</search>, then answer with "
    "<answer>\\boxed{code}</answer>."
)

LOOKUP_SPLITS: dict[str, int] = {"train": 700, "test": 100, "smoke": 10, "validation": 64}
"""Tasks per split; keys are disjoint across splits. ``validation`` (drawn last, from its own
RNG, so adding it left the other splits unchanged) decides when the quickstart's SFT stops."""


@lru_cache(maxsize=8)
def _items(seed: int) -> dict[str, list[tuple[int, int]]]:
    rng = random.Random(f"lookup-{seed}")
    first = {s: n for s, n in LOOKUP_SPLITS.items() if s != "validation"}
    keys = rng.sample(range(100, 1000), sum(first.values()))
    codes = [rng.randrange(100, 1000) for _ in keys]
    out: dict[str, list[tuple[int, int]]] = {}
    i = 0
    for split, n in first.items():
        out[split] = list(zip(keys[i : i + n], codes[i : i + n]))
        i += n
    vrng = random.Random(f"lookup-{seed}-validation")
    free = sorted(set(range(100, 1000)) - set(keys))
    vkeys = vrng.sample(free, LOOKUP_SPLITS["validation"])
    out["validation"] = [(k, vrng.randrange(100, 1000)) for k in vkeys]
    return out


def lookup_tasks(split: str = "train", seed: int = 0) -> list[Task]:
    """The split's tasks (deterministic in ``seed``); ``split`` in :data:`LOOKUP_SPLITS`."""
    if split not in LOOKUP_SPLITS:
        raise ConfigError(f"lookup split {split!r} is not one of {list(LOOKUP_SPLITS)}.")
    return [
        Task(
            id=f"lookup-{split}-{i:04d}",
            question=f"What is the code of item #{key}? Search for it.",
            answers=(str(code),),
            answer_type="string",
            family="lookup",
            split=split,
            level=1,
            gold_path=(GoldStep("search", str(key), expect=f"={code}"),),
        )
        for i, (key, code) in enumerate(_items(seed)[split])
    ]


def lookup_corpus(seed: int = 0) -> list[dict[str, str]]:
    """One page per item of every split (the search index)."""
    return [
        {"title": f"item {key}", "text": f"item #{key} code={code}.", "url": f"https://items.example/{key}"}
        for split in LOOKUP_SPLITS for key, code in _items(seed)[split]
    ]


@lru_cache(maxsize=8)
def _backend(seed: int) -> Any:
    from branchgym.envs.tools.search import BM25Backend

    return BM25Backend(lookup_corpus(seed))


class _Source:
    """A minimal task source over the lookup splits (``TaskSource`` protocol)."""

    def __init__(self, seed: int) -> None:
        self.name = "lookup"
        self.seed = seed
        self.splits = tuple(LOOKUP_SPLITS)

    def tasks(self, split: str) -> list[Task]:
        return _cached_tasks(split, self.seed)


@lru_cache(maxsize=32)
def _cached_tasks(split: str, seed: int) -> list[Task]:
    return lookup_tasks(split, seed)


def make_lookup_env(split: str = "train", seed: int = 0, top_k: int = 1, max_turns: int = 4, **kwargs: Any) -> Any:
    """A ``ToolEnv`` over the lookup tasks: search tool (``top_k`` hits), F1 reward."""
    from branchgym.envs.core import ToolEnv

    if split not in LOOKUP_SPLITS:
        raise ConfigError(f"lookup split {split!r} is not one of {list(LOOKUP_SPLITS)}.")
    env = ToolEnv(
        _cached_tasks(split, seed),
        tools=("search",),
        split=split,
        max_turns=max_turns,
        search_backend=_backend(seed),
        tool_kwargs={"search": {"top_k": top_k, "snippet_chars": 60}},
        reward=kwargs.pop("reward", "f1"),
        **kwargs,
    )
    # A short system prompt keeps episodes ~80 tokens, so a tiny model trains in minutes on CPU;
    # the arpo protocol's own prompt (~380 tokens) would dominate every forward pass.
    env.system_prompt = SYSTEM_PROMPT
    return env
