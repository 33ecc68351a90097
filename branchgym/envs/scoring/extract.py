"""Answer extraction from a model's output, as ARPO's evaluation does
(docs/benchmarks.md#evaluating-a-model).

1. the text between the last ``<answer>`` and the last ``</answer>``;
2. inside it the last ``\\boxed{...}`` (or ``\\fbox{...}``), brace-matched, unwrapped, with a
   wrapping ``\\text{...}`` removed; no box -> the whole answer span;
3. no ``<answer>`` block -> the last box anywhere in the output;
4. (a separate step, :func:`last_lines`) still empty -> the last 5 non-empty lines.
"""

from __future__ import annotations

__all__ = [
    "last_boxed_only_string",
    "remove_boxed",
    "unwrap_text",
    "answer_span",
    "extract_answer",
    "last_lines",
    "extract_prediction",
]

_BOX_MACROS = ("\\boxed", "\\fbox")


def last_boxed_only_string(text: str) -> str | None:
    """The last ``\\boxed{...}`` / ``\\fbox{...}`` / ``\\boxed x`` in ``text``, or None.

    Braces are matched, so ``\\boxed{\\frac{1}{2}}`` is returned whole. An unclosed box gives
    None (MATH reference semantics).

    >>> last_boxed_only_string(r"a \\boxed{1} b \\boxed{\\frac{1}{2}} c")
    '\\\\boxed{\\\\frac{1}{2}}'
    """
    idx = text.rfind("\\boxed")
    if idx < 0:
        idx = text.rfind("\\fbox")
        if idx < 0:
            return None
    if text.startswith("\\boxed ", idx):  # "\boxed 5": up to the next $ (MATH convention)
        return "\\boxed " + text[idx + len("\\boxed ") :].split("$")[0]
    depth, i = 0, idx
    while i < len(text):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[idx : i + 1]
            if depth < 0:
                return None
        i += 1
    return None


def remove_boxed(boxed: str) -> str:
    """``\\boxed{X}`` -> ``X`` (also ``\\fbox{X}`` and ``\\boxed X``).

    Raises ``ValueError`` when ``boxed`` is not a box (the training reward turns that into -1).
    """
    if boxed.startswith("\\boxed "):
        return boxed[len("\\boxed ") :]
    for macro in _BOX_MACROS:
        if boxed.startswith(macro + "{") and boxed.endswith("}"):
            return boxed[len(macro) + 1 : -1]
    raise ValueError(f"not a boxed expression: {boxed[:60]!r}")


def unwrap_text(s: str) -> str:
    """Remove one wrapping ``\\text{...}``: ``\\text{Paris}`` -> ``Paris``."""
    s = s.strip()
    if s.startswith("\\text{") and s.endswith("}"):
        inner = s[len("\\text{") : -1]
        if last_boxed_only_string("\\boxed{" + inner + "}") == "\\boxed{" + inner + "}":
            return inner  # only when the outer braces match each other
    return s


def answer_span(text: str) -> str | None:
    """Text between the last ``<answer>`` and the last ``</answer>`` after it, or None.

    An ``<answer>`` with no closing tag after it runs to the end of the text.
    """
    start = text.rfind("<answer>")
    if start < 0:
        return None
    start += len("<answer>")
    end = text.rfind("</answer>")
    return text[start:end] if end >= start else text[start:]


def _unbox(s: str) -> str | None:
    boxed = last_boxed_only_string(s)
    if boxed is None:
        return None
    try:
        return unwrap_text(remove_boxed(boxed)).strip()
    except ValueError:
        return None


def extract_answer(text: str) -> str:
    """Steps 1-3 (module docstring): the model's final answer, or ``""`` when there is none.

    >>> extract_answer(r"<answer>The final answer is \\[ \\boxed{\\text{Oslo}} \\]</answer>")
    'Oslo'
    >>> extract_answer("<answer> Paris </answer>")
    'Paris'
    """
    if not isinstance(text, str):
        return ""
    span = answer_span(text)
    if span is not None:
        inner = _unbox(span)
        return inner if inner is not None else span.strip()
    inner = _unbox(text)
    return inner if inner is not None else ""


def last_lines(text: str, n: int = 5) -> str:
    """Step 4 (module docstring): the last ``n`` non-empty lines of ``text``, newline-joined."""
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join(lines[-n:])


def extract_prediction(text: str) -> str:
    """The evaluation prediction: :func:`extract_answer`, else :func:`last_lines` (step 4)."""
    pred = extract_answer(text)
    return pred if pred else (last_lines(text) if isinstance(text, str) else "")
