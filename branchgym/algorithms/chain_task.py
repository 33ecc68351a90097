"""The quickstart's two-call task: follow a link with a first search, then look the target up.

A task asks for the code behind an item (``"Item #482 links to another item. What is that
item's code? ..."``). The first ``<search>482</search>`` returns ``"item #482 link=731."``; only
then does the agent know which item to search second, ``<search>731</search>``, whose page
``"item #731 code=455."`` holds the answer for ``\\boxed{455}``. One call cannot solve it (the
first page holds no code, and the question does not name the second item), so the reward of an
episode depends on what the agent did with the first result: credit has to flow across two tool
turns, and a tree rollout that branches at the second call compares continuations of the same
first step.

Built like the one-call lookup task (:mod:`branchgym.algorithms.quickstart_task`): offline BM25
over one page per key, random keys and codes (nothing to memorise), train / validation / test /
smoke splits whose keys (first *and* second hop) are disjoint, an :class:`~branchgym.envs.ToolEnv`
with the arpo protocol and an F1 reward, and gold paths that ``OracleAgent`` follows (SFT data).
Each page's key is both its title and its text, so searching a key ranks that key's own page
above the page that merely links to it.

Factory: :func:`make_chain_env`, i.e. ``--env branchgym.algorithms.chain_task:make_chain_env``
with ``branchgym train``, or ``branchgym quickstart --set task=chain``.
"""

from __future__ import annotations

import random
from functools import lru_cache
from typing import Any

from branchgym.envs.types import GoldStep, Task
from branchgym.errors import ConfigError

__all__ = ["chain_tasks", "chain_corpus", "make_chain_env", "CHAIN_SPLITS", "CHAIN_SYSTEM_PROMPT"]

CHAIN_SYSTEM_PROMPT = (
    "Search the item with <search>number</search>; its page links to a second item: search "
    "that number too, then answer with <answer>\\boxed{code}</answer>."
)

CHAIN_SPLITS: dict[str, int] = {"train": 256, "test": 100, "validation": 64, "smoke": 10}
"""Tasks per split. Each task uses two keys out of 100..999, all distinct across every split."""


@lru_cache(maxsize=8)
def _chains(seed: int) -> dict[str, list[tuple[int, int, int]]]:
    """Per split: (first key, linked key, code) triples."""
    rng = random.Random(f"chain-{seed}")
    keys = rng.sample(range(100, 1000), 2 * sum(CHAIN_SPLITS.values()))
    out: dict[str, list[tuple[int, int, int]]] = {}
    i = 0
    for split, n in CHAIN_SPLITS.items():
        out[split] = [(keys[i + 2 * j], keys[i + 2 * j + 1], rng.randrange(100, 1000)) for j in range(n)]
        i += 2 * n
    return out


def _check_split(split: str) -> None:
    if split not in CHAIN_SPLITS:
        raise ConfigError(f"chain split {split!r} is not one of {list(CHAIN_SPLITS)}.")


def chain_tasks(split: str = "train", seed: int = 0) -> list[Task]:
    """The split's tasks (deterministic in ``seed``); ``split`` in :data:`CHAIN_SPLITS`."""
    _check_split(split)
    return [
        Task(
            id=f"chain-{split}-{i:04d}",
            question=f"Item #{first} links to another item. What is that item's code? Search both.",
            answers=(str(code),),
            answer_type="string",
            family="chain",
            split=split,
            level=2,
            gold_path=(GoldStep("search", str(first), expect=f"link={linked}"),
                       GoldStep("search", str(linked), expect=f"code={code}")),
        )
        for i, (first, linked, code) in enumerate(_chains(seed)[split])
    ]


def chain_corpus(seed: int = 0) -> list[dict[str, str]]:
    """Two pages per task of every split: the first key's link page and the linked key's code page."""
    docs = []
    for split in CHAIN_SPLITS:
        for first, linked, code in _chains(seed)[split]:
            docs.append({"title": f"item {first}", "text": f"item #{first} link={linked}.",
                         "url": f"https://items.example/{first}"})
            docs.append({"title": f"item {linked}", "text": f"item #{linked} code={code}.",
                         "url": f"https://items.example/{linked}"})
    return docs


@lru_cache(maxsize=8)
def _backend(seed: int) -> Any:
    from branchgym.envs.tools.search import BM25Backend

    return BM25Backend(chain_corpus(seed))


@lru_cache(maxsize=32)
def _cached_tasks(split: str, seed: int) -> list[Task]:
    return chain_tasks(split, seed)


def make_chain_env(split: str = "train", seed: int = 0, top_k: int = 1, max_turns: int = 5, **kwargs: Any) -> Any:
    """A ``ToolEnv`` over the two-call chain tasks: search tool (``top_k`` hits), F1 reward."""
    from branchgym.envs.core import ToolEnv

    _check_split(split)
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
    env.system_prompt = CHAIN_SYSTEM_PROMPT  # short, as in the lookup task: ~110-token episodes
    return env
