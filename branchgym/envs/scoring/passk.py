"""Unbiased pass@k (Chen et al., "Evaluating Large Language Models Trained on Code", 2021).

pass@k = 1 - C(n - c, k) / C(n, k) for n samples of which c are correct (Chen et al., arXiv:2107.03374);
it equals c/n for k = 1 and "any correct" for k = n.
"""

from __future__ import annotations

from fractions import Fraction
from math import comb

__all__ = ["pass_at_k"]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn from n (c correct) is correct.

    Computed exactly with integer binomials and a fraction, then rounded once to float.

    >>> pass_at_k(5, 1, 1), pass_at_k(5, 1, 5), round(pass_at_k(10, 3, 2), 4)
    (0.2, 1.0, 0.5333)
    """
    for name, v in (("n", n), ("c", c), ("k", k)):
        if not isinstance(v, int) or isinstance(v, bool):
            raise TypeError(f"pass_at_k: {name} must be an int, got {v!r}")
    if not 0 <= c <= n:
        raise ValueError(f"pass_at_k: need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"pass_at_k: need 1 <= k <= n, got n={n}, k={k}; draw more samples")
    if n - c < k:
        return 1.0
    return float(1 - Fraction(comb(n - c, k), comb(n, k)))
