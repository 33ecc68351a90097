"""Rule metrics over answer strings: EM, substring accuracy, token F1
(docs/benchmarks.md#evaluating-a-model).

Two normalisations exist on purpose:

- evaluation (:func:`normalize_answer`): lower-case, strip, articles removed for QA, whitespace
  collapsed, **punctuation kept** (ARPO ``evaluation/src/metrics.py``);
- training (:func:`normalize_squad`): SQuAD's lower-case, punctuation removed, articles removed,
  whitespace collapsed (ARPO ``deep_research.py``, Search-R1).

Several golds: every metric takes the max over them; a gold string starting with ``[`` is a list
written as text and is split on commas (:func:`expand_golds`).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable

__all__ = [
    "normalize_answer",
    "normalize_squad",
    "expand_golds",
    "exact_match",
    "substring_acc",
    "token_f1",
    "squad_f1",
]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = frozenset(string.punctuation)


def normalize_answer(s: str, *, qa: bool = True) -> str:
    """Evaluation normalisation: lower, articles removed when ``qa``, whitespace collapsed.

    >>> normalize_answer("  The Eiffel  Tower. ")
    'eiffel tower.'
    """
    s = str(s).lower().strip()
    if qa:
        s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def normalize_squad(s: str) -> str:
    """Training (SQuAD) normalisation: lower, punctuation and articles removed, spaces collapsed.

    >>> normalize_squad("The Eiffel-Tower!")
    'eiffeltower'
    """
    s = "".join(ch for ch in str(s).lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", s).split())


def expand_golds(golds: str | Iterable[str]) -> list[str]:
    """Golds as a flat list; ``"[a, b]"`` (a list written as text) becomes ``["a", "b"]``.

    >>> expand_golds(["['Oslo', 'Christiania']", "Norway"])
    ['Oslo', 'Christiania', 'Norway']
    """
    items = [golds] if isinstance(golds, str) else list(golds)
    out: list[str] = []
    for g in items:
        g = str(g)
        if g.startswith("["):
            parts = [p.strip().strip("'\"").strip() for p in g.strip("[]").split(",")]
            out.extend(p for p in parts if p)
        else:
            out.append(g)
    return out


def exact_match(pred: str, golds: str | Iterable[str], *, qa: bool = True) -> float:
    """1.0 when the normalised prediction equals a normalised gold, else 0.0."""
    p = normalize_answer(pred, qa=qa)
    if not p:
        return 0.0
    return float(any(p == normalize_answer(g, qa=qa) for g in expand_golds(golds)))


def substring_acc(pred: str, golds: str | Iterable[str], *, qa: bool = True) -> float:
    """ARPO's ``acc``: 1.0 when a normalised gold is a substring of the normalised prediction."""
    p = normalize_answer(pred, qa=qa)
    if not p:
        return 0.0
    return float(any((g := normalize_answer(x, qa=qa)) and g in p for x in expand_golds(golds)))


def _f1(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    """Bag-of-tokens F1 = 2PR/(P+R), P = |common|/|pred|, R = |common|/|gold| (SQuAD v1.1)."""
    common = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if common == 0:
        return 0.0
    p, r = common / len(pred_tokens), common / len(gold_tokens)
    return 2 * p * r / (p + r)


def token_f1(pred: str, golds: str | Iterable[str], *, qa: bool = True) -> float:
    """Evaluation token F1 (punctuation kept), max over golds.

    >>> round(token_f1("the Eiffel tower", "Eiffel Tower, Paris"), 3)
    0.4
    """
    p = normalize_answer(pred, qa=qa).split()
    if not p:
        return 0.0
    return max((_f1(p, normalize_answer(g, qa=qa).split()) for g in expand_golds(golds)),
               default=0.0)


def squad_f1(pred: str, golds: str | Iterable[str]) -> float:
    """Training token F1 (SQuAD normalisation); ``yes``/``no``/``noanswer`` must match exactly."""
    p = normalize_squad(pred)
    best = 0.0
    for g in expand_golds(golds):
        gn = normalize_squad(g)
        if (p in ("yes", "no", "noanswer") or gn in ("yes", "no", "noanswer")) and p != gn:
            continue
        if p and gn:
            best = max(best, _f1(p.split(), gn.split()))
    return best
