"""``math_equal``: Hendrycks-MATH string equivalence plus numeric tolerance.

:func:`is_equiv` compares two answers after :func:`strip_string`, the MATH reference
normalisation (Hendrycks et al., "Measuring Mathematical Problem Solving With the MATH Dataset",
NeurIPS 2021; ARPO ``evaluation/src/math_equivalence.py``): drop ``\\left``, ``\\right``,
``\\!``, ``\\$``, ``\\%``, degree marks and spaces; ``tfrac``/``dfrac`` -> ``frac``; units after
``\\text{ `` removed; ``0.5`` -> ``\\frac{1}{2}``; ``a/b`` -> ``\\frac{a}{b}`` for integers;
``\\frac12`` -> ``\\frac{1}{2}``; ``\\sqrt2`` -> ``\\sqrt{2}``; a ``x = `` prefix of at most two
characters removed. When the normalisation itself fails (the reference raises on odd input),
the raw strings are compared.

:func:`math_equal` adds, for ``answer_type="number"``, a numeric comparison with relative
tolerance, reading ``1,234``, ``$5``, ``12%``, ``3/4`` and ``\\frac{3}{4}``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from branchgym.envs.scoring.metrics import expand_golds

__all__ = ["strip_string", "is_equiv", "parse_number", "math_equal"]


class _Unnormalisable(ValueError):
    """The MATH normalisation does not apply; compare raw strings."""


def _fix_fracs(s: str) -> str:
    """``\\frac12`` -> ``\\frac{1}{2}``; ``\\frac1{2}`` -> ``\\frac{1}{2}``."""
    head, *rest = s.split("\\frac")
    out = [head]
    for part in rest:
        out.append("\\frac")
        if part.startswith("{"):
            out.append(part)
            continue
        if len(part) < 2:
            return s  # the reference gives up and returns the input unchanged
        a, b, tail = part[0], part[1], part[2:]
        out.append("{" + a + "}" + (b + tail if b == "{" else "{" + b + "}" + tail))
    return "".join(out)


def _fix_a_slash_b(s: str) -> str:
    """``3/4`` -> ``\\frac{3}{4}`` when both sides are plain integers."""
    parts = s.split("/")
    if len(parts) != 2:
        return s
    try:
        a, b = int(parts[0]), int(parts[1])
    except ValueError:
        return s
    if s != f"{a}/{b}":
        return s
    return "\\frac{" + str(a) + "}{" + str(b) + "}"


def _remove_right_units(s: str) -> str:
    """``5 \\text{ cm}`` -> ``5 `` (units follow ``\\text{ `` with a space)."""
    if "\\text{ " not in s:
        return s
    parts = s.split("\\text{ ")
    if len(parts) != 2:
        raise _Unnormalisable(s)
    return parts[0]


def _fix_sqrt(s: str) -> str:
    """``\\sqrt2`` -> ``\\sqrt{2}``."""
    if "\\sqrt" not in s:
        return s
    head, *rest = s.split("\\sqrt")
    out = [head]
    for part in rest:
        if not part:
            raise _Unnormalisable(s)
        out.append("\\sqrt" + part if part[0] == "{" else "\\sqrt{" + part[0] + "}" + part[1:])
    return "".join(out)


def strip_string(s: str) -> str:
    """The MATH reference normalisation (see the module docstring). Raises on odd input."""
    for old, new in (("\n", ""), ("\\!", ""), ("\\\\", "\\"), ("tfrac", "frac"),
                     ("dfrac", "frac"), ("\\left", ""), ("\\right", ""), ("^{\\circ}", ""),
                     ("^\\circ", ""), ("\\$", "")):
        s = s.replace(old, new)
    s = _remove_right_units(s)
    s = s.replace("\\%", "").replace(" .", " 0.").replace("{.", "{0.")
    if not s:
        return s
    if s[0] == ".":
        s = "0" + s
    sides = s.split("=")
    if len(sides) == 2 and len(sides[0]) <= 2:  # "x = 5" -> "5", "k=3" -> "3"
        s = sides[1]
    s = _fix_sqrt(s).replace(" ", "")
    s = _fix_fracs(s)
    if s == "0.5":
        s = "\\frac{1}{2}"
    return _fix_a_slash_b(s)


def is_equiv(a: object, b: object) -> bool:
    """Hendrycks ``is_equiv``: equal after :func:`strip_string`; raw equality if that fails.

    Non-string input (e.g. a list of golds, as ARPO's judge passes it) fails normalisation and
    is compared raw, so it never equals a string prediction.

    >>> is_equiv("\\\\dfrac{1}{2}", "0.5"), is_equiv("x = 3", "3"), is_equiv("3", "4")
    (True, True, False)
    """
    if a is None and b is None:
        return True
    if a is None or b is None:
        return False
    try:
        if not isinstance(a, str) or not isinstance(b, str):
            raise _Unnormalisable(repr((a, b)))
        return strip_string(a) == strip_string(b)
    except (_Unnormalisable, IndexError, ValueError):
        return a == b


_FRAC_RE = re.compile(r"^\\frac\{(-?\d+(?:\.\d+)?)\}\{(-?\d+(?:\.\d+)?)\}$")
_NUM_RE = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")


def parse_number(s: str) -> float | None:
    """A number from text (``1,234``, ``$5``, ``12%``, ``-3/4``, ``\\frac{3}{4}``) or None."""
    t = str(s).strip().replace("\\$", "").replace("$", "").replace("\\%", "").replace("%", "")
    t = t.replace("\\,", "").replace(",", "").replace(" ", "").replace("dfrac", "frac")
    t = t.replace("tfrac", "frac")
    if t.startswith("\\text{") and t.endswith("}"):
        t = t[6:-1]
    m = _FRAC_RE.match(t)
    if m:
        den = float(m.group(2))
        return float(m.group(1)) / den if den else None
    if t.count("/") == 1:
        a, b = t.split("/")
        if _NUM_RE.match(a) and _NUM_RE.match(b) and float(b) != 0:
            return float(a) / float(b)
        return None
    if _NUM_RE.match(t):
        v = float(t)
        return v if math.isfinite(v) else None
    return None


def math_equal(pred: str, golds: str | Iterable[str], answer_type: str = "math",
               *, rel_tol: float = 1e-4, abs_tol: float = 1e-8) -> float:
    """1.0 if ``pred`` equals any gold by :func:`is_equiv`, or - for ``answer_type="number"``
    - numerically within ``max(abs_tol, rel_tol * |gold|)``; else 0.0.

    >>> math_equal("1,234", "1234", "number"), math_equal("1,234", "1234", "math")
    (1.0, 0.0)
    """
    if not str(pred).strip():
        return 0.0
    for g in expand_golds(golds):
        if is_equiv(pred, g):
            return 1.0
        if answer_type == "number":
            p, q = parse_number(pred), parse_number(g)
            if p is not None and q is not None and abs(p - q) <= max(abs_tol, rel_tol * abs(q)):
                return 1.0
    return 0.0
