"""A Gymnasium ``Text`` space that accepts any Unicode string.

Gymnasium's :class:`~gymnasium.spaces.Text` checks every character against a charset whose
default is ``[a-zA-Z0-9]``: a space, a newline or a ``<`` is "not in the space", so an LLM's
action would fail the passive checker. :class:`UnicodeText` keeps ``Text``'s interface (so
vector envs, ``batch_space`` and the env checker treat it as text) but ``contains`` only checks
the type and the length. ``sample`` still draws from a finite charset, which mixes ASCII,
whitespace, markup characters and a few non-Latin characters and emoji.
"""

from __future__ import annotations

import string
from typing import Any

import numpy as np
from gymnasium.spaces import Text

__all__ = ["UnicodeText", "SAMPLE_CHARSET"]

#: Characters ``UnicodeText.sample`` draws from: printable ASCII (incl. ``<>/{}"``), newline,
#: tab, accented Latin, Greek, CJK and emoji, so random actions exercise the parsers.
SAMPLE_CHARSET: str = "".join(dict.fromkeys(string.printable + "éüßñøΩλπ中文字😀🔍🐍—…"))


class UnicodeText(Text):
    """Any ``str`` of length ``min_length..max_length`` (in code points).

    Args:
        max_length: longest accepted string, in characters.
        min_length: shortest accepted string (default 0: an empty observation is valid).
        sample_max_length: longest string ``sample()`` draws (default ``min(max_length, 256)``),
            so that random actions stay small even when ``max_length`` is millions.
        seed: seed of the space's own sampler.

    >>> space = UnicodeText(100)
    >>> "hello, world\\n<search>🐍</search>" in space, "x" * 101 in space, 3 in space
    (True, False, False)
    """

    def __init__(
        self,
        max_length: int,
        *,
        min_length: int = 0,
        sample_max_length: int | None = None,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__(max_length, min_length=min_length, charset=SAMPLE_CHARSET, seed=seed)
        cap = min(max_length, 256) if sample_max_length is None else sample_max_length
        if not min_length <= cap <= max_length:
            raise ValueError(
                f"sample_max_length={cap} must lie in [min_length={min_length}, "
                f"max_length={max_length}]; pass a value in that range."
            )
        self.sample_max_length = int(cap)

    def contains(self, x: Any) -> bool:
        """True for any ``str`` whose length is within bounds, whatever its characters."""
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        """A random string from :data:`SAMPLE_CHARSET`; see ``Text.sample`` for masks."""
        if mask is None and probability is None:
            length = int(self.np_random.integers(self.min_length, self.sample_max_length + 1))
            return super().sample(mask=(length, None))
        return super().sample(mask=mask, probability=probability)

    def __repr__(self) -> str:
        return f"UnicodeText({self.min_length}, {self.max_length})"

    def __eq__(self, other: Any) -> bool:
        return (
            isinstance(other, UnicodeText)
            and self.min_length == other.min_length
            and self.max_length == other.max_length
        )

    def __hash__(self) -> int:
        return hash(("UnicodeText", self.min_length, self.max_length))
