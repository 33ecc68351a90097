"""docs/algorithms.md is the reference the code cites: every ``module:function`` it names
imports, every anchor of it cited in the repository exists, and nothing cites
design documents that are not in the repository."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "algorithms.md"
UNSHIPPED = re.compile(r"\b(ALGORITHMS|DESIGN|BENCHMARKS|PEERS|STYLE)\.md\b|\b[Ii]ssue #?\d+")
REF = re.compile(r"`(branchgym(?:\.\w+)+):(\w+(?:\.\w+)*)`")
CITE = re.compile(r"docs/algorithms\.md#([\w-]+)")
TEXT = {".py", ".md", ".txt", ".toml", ".yaml", ".yml", ".cfg", ".sh", ".json"}


def _files(*roots: str) -> list[Path]:
    out: list[Path] = []
    for r in roots:
        p = ROOT / r
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            out += [f for f in sorted(p.rglob("*")) if f.is_file() and f.suffix in TEXT and "__pycache__" not in f.parts]
    return out


def test_no_citation_of_documents_users_do_not_have() -> None:
    hits = [
        f"{f.relative_to(ROOT)}:{i}: {line.strip()[:100]}"
        for f in _files("branchgym", "docs", "README.md", "bench", "tests")
        if f != Path(__file__).resolve()
        for i, line in enumerate(f.read_text(errors="replace").splitlines(), 1)
        if UNSHIPPED.search(line)
    ]
    assert not hits, "cite docs/*.md or the paper, or say it in words, instead:\n" + "\n".join(hits)


def _refs() -> list[tuple[str, str]]:
    return sorted(set(REF.findall(DOC.read_text())))


def test_the_page_names_functions() -> None:
    assert len(_refs()) > 60


@pytest.mark.parametrize("module, attr", _refs())
def test_every_named_function_exists(module: str, attr: str) -> None:
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    assert obj is not None


def test_every_cited_anchor_exists() -> None:
    anchors = set(re.findall(r'<a id="([\w-]+)"></a>', DOC.read_text()))
    cited = {
        (str(f.relative_to(ROOT)), a)
        for f in _files("branchgym", "docs", "README.md", "bench", "tests")
        for a in CITE.findall(f.read_text(errors="replace"))
    }
    assert cited, "the code cites docs/algorithms.md"
    missing = sorted((f, a) for f, a in cited if a not in anchors)
    assert not missing, f"anchors not in docs/algorithms.md: {missing}"
