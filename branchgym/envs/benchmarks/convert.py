"""Row -> :class:`~branchgym.envs.types.Task` converters, one per source schema.

Each converter takes one row (a dict, as ``datasets`` or our file readers yield it) and its
position, and returns a ``Task`` or ``None`` when the row is filtered out (e.g. a GAIA question
with an attached file). Field names follow each source's published schema;
where a well-known re-packaging renames fields (ARPO's ``evaluation/data`` files, WebThinker's
flattened WebWalkerQA), both spellings are accepted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from branchgym.envs.benchmarks.decrypt import browsecomp_decrypt, xbench_decrypt
from branchgym.envs.types import Task

__all__ = ["CONVERTERS", "field", "gsm8k_final_answer"]

Converter = Callable[[dict[str, Any], int, str], "Task | None"]


def _key(name: str) -> str:
    return re.sub(r"[\s_]+", "", name).lower()


def field(row: dict[str, Any], *names: str, default: Any = None) -> Any:
    """The first present field among ``names``; names match ignoring case, spaces, underscores."""
    index = {_key(k): k for k in row}
    for name in names:
        k = index.get(_key(name))
        if k is not None and row[k] is not None:
            return row[k]
    return default


def _require(row: dict[str, Any], bench: str, *names: str) -> Any:
    value = field(row, *names)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(
            f"{bench} row has no {names[0]!r} field (looked for {list(names)}); columns are "
            f"{sorted(row)}. Is this file really a {bench} file?"
        )
    return value


def _answers(value: Any) -> tuple[str, ...]:
    """Gold answers from a string, a number, a list, or a JSON-encoded list."""
    if isinstance(value, str) and value.strip().startswith("[") and value.strip().endswith("]"):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and parsed:
            value = parsed
    if isinstance(value, (list, tuple)):
        out = tuple(str(v).strip() for v in value if str(v).strip())
    else:
        out = (str(value).strip(),) if str(value).strip() else ()
    if not out:
        raise ValueError(f"empty gold answer {value!r}")
    return out


def _level(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def gaia(row: dict[str, Any], i: int, split: str) -> Task | None:
    """GAIA: ``task_id, Question, Level, Final answer, file_name``; text-only keeps no-file rows."""
    if str(field(row, "file_name", default="") or "").strip():
        return None  # has an attachment: not in the text-only subset
    return Task(
        id=str(_require(row, "GAIA", "task_id", "id")),
        question=str(_require(row, "GAIA", "Question")),
        answers=_answers(_require(row, "GAIA", "Final answer", "answer")),
        family="gaia", split=split, level=_level(field(row, "Level")),
        metadata={"annotator_metadata": field(row, "Annotator Metadata", default=None)},
    )


def hle(row: dict[str, Any], i: int, split: str) -> Task | None:
    """HLE: ``id, question, image, answer, answer_type, category``; text-only drops images."""
    if str(field(row, "image", default="") or "").strip():
        return None
    return Task(
        id=str(_require(row, "HLE", "id")),
        question=str(_require(row, "HLE", "question")),
        answers=_answers(_require(row, "HLE", "answer")),
        family="hle", split=split,
        metadata={"hle_answer_type": field(row, "answer_type"),
                  "category": field(row, "category"), "raw_subject": field(row, "raw_subject")},
    )


def webwalkerqa(row: dict[str, Any], i: int, split: str) -> Task | None:
    """WebWalkerQA: ``Question, Answer, Root_Url, Info{...}`` (or WebThinker's flat copy)."""
    info = field(row, "Info", default={}) or {}
    if isinstance(info, str):
        info = json.loads(info)
    root = str(field(row, "Root_Url", "root_url", default="") or "")
    question = str(_require(row, "WebWalkerQA", "Question"))
    if root:
        question = f"{question}\n(Start from the website {root})"
    return Task(
        id=str(field(row, "id", default=f"webwalkerqa-{i:05d}")),
        question=question,
        answers=_answers(_require(row, "WebWalkerQA", "Answer")),
        family="webwalkerqa", split=split,
        metadata={
            "root_url": root,
            "hop": field(info, "Hop", default=field(row, "type")),
            "domain": field(info, "Domain", default=field(row, "domain")),
            "language": field(info, "Language", default=field(row, "lang")),
            "difficulty": field(info, "Difficulty_Level", default=field(row, "difficulty_level")),
            "source_website": field(info, "Source_Website", default=field(row, "source_website")),
            "golden_path": field(info, "Golden_Path", default=field(row, "golden_path")),
        },
    )


def xbench(row: dict[str, Any], i: int, split: str) -> Task | None:
    """xbench-DeepSearch: ``id, prompt, answer, canary``, prompt/answer XOR-encrypted."""
    canary = str(_require(row, "xbench", "canary"))
    return Task(
        id=f"xbench-{field(row, 'id', default=i)}",
        question=xbench_decrypt(str(_require(row, "xbench", "prompt")), canary),
        answers=_answers(xbench_decrypt(str(_require(row, "xbench", "answer")), canary)),
        family="xbench-deepsearch", split=split, metadata={"language": "zh"},
    )


def browsecomp(row: dict[str, Any], i: int, split: str) -> Task | None:
    """BrowseComp: ``problem, answer, canary``, problem/answer encrypted with SHA-256(canary)."""
    canary = str(_require(row, "BrowseComp", "canary"))
    return Task(
        id=f"browsecomp-{i:05d}",
        question=browsecomp_decrypt(str(_require(row, "BrowseComp", "problem")), canary),
        answers=_answers(browsecomp_decrypt(str(_require(row, "BrowseComp", "answer")), canary)),
        family="browsecomp", split=split,
        metadata={"problem_topic": field(row, "problem_topic")},
    )


def frames(row: dict[str, Any], i: int, split: str) -> Task | None:
    """FRAMES: ``Prompt, Answer, wiki_links, reasoning_types``."""
    return Task(
        id=f"frames-{field(row, 'Unnamed: 0', 'index', default=i)}",
        question=str(_require(row, "FRAMES", "Prompt")),
        answers=_answers(_require(row, "FRAMES", "Answer")),
        family="frames", split=split,
        metadata={"wiki_links": field(row, "wiki_links"),
                  "reasoning_types": field(row, "reasoning_types")},
    )


def simpleqa(row: dict[str, Any], i: int, split: str) -> Task | None:
    """SimpleQA: ``metadata, problem, answer``."""
    meta = field(row, "metadata")
    return Task(
        id=f"simpleqa-{i:05d}",
        question=str(_require(row, "SimpleQA", "problem", "question")),
        answers=_answers(_require(row, "SimpleQA", "answer")),
        family="simpleqa", split=split, metadata={"source_metadata": meta},
    )


def flashrag(name: str) -> Converter:
    """FlashRAG's common QA schema: ``id, question, golden_answers[], metadata``."""

    def convert(row: dict[str, Any], i: int, split: str) -> Task | None:
        return Task(
            id=str(field(row, "id", default=f"{name}-{i:05d}")),
            question=str(_require(row, name, "question")),
            answers=_answers(_require(row, name, "golden_answers", "answer")),
            family=name, split=split,
            metadata={"source_metadata": field(row, "metadata")},
        )

    return convert


def math_problem(name: str) -> Converter:
    """AIME / MATH-500: ``problem`` (or ``question``) and ``answer``."""

    def convert(row: dict[str, Any], i: int, split: str) -> Task | None:
        return Task(
            id=f"{name}-{field(row, 'unique_id', 'id', default=i)}",
            question=str(_require(row, name, "problem", "question")),
            answers=_answers(_require(row, name, "answer")),
            answer_type="math", family=name, split=split,
            level=_level(field(row, "level")),
            metadata={"subject": field(row, "subject"), "url": field(row, "url")},
        )

    return convert


_GSM8K_FINAL = re.compile(r"####\s*(-?[0-9][0-9.,]*)")


def gsm8k_final_answer(solution: str) -> str:
    """The number after ``####`` in a GSM8K solution, commas removed.

    >>> gsm8k_final_answer("... so 1,200 + 34 = 1,234.\\n#### 1,234")
    '1234'
    """
    match = _GSM8K_FINAL.search(solution)
    if not match:
        raise ValueError(f"GSM8K answer has no '#### N' final line: {solution[-80:]!r}")
    return match.group(1).replace(",", "").rstrip(".")


def gsm8k(row: dict[str, Any], i: int, split: str) -> Task | None:
    """GSM8K: ``question, answer`` where the answer ends with ``#### N``."""
    return Task(
        id=f"gsm8k-{i:05d}",
        question=str(_require(row, "GSM8K", "question")),
        answers=(gsm8k_final_answer(str(_require(row, "GSM8K", "answer"))),),
        answer_type="math", family="gsm8k", split=split,
    )


CONVERTERS: dict[str, Converter] = {
    "gaia": gaia,
    "hle": hle,
    "webwalkerqa": webwalkerqa,
    "xbench-deepsearch": xbench,
    "frames": frames,
    "browsecomp": browsecomp,
    "simpleqa": simpleqa,
    "hotpotqa": flashrag("hotpotqa"),
    "2wiki": flashrag("2wiki"),
    "musique": flashrag("musique"),
    "bamboogle": flashrag("bamboogle"),
    "aime24": math_problem("aime24"),
    "aime25": math_problem("aime25"),
    "math500": math_problem("math500"),
    "gsm8k": gsm8k,
}
