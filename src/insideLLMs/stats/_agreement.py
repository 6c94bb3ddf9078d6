"""Agreement of two raters on the same items: raw accuracy and Cohen's kappa (agreement beyond chance)."""

from __future__ import annotations

from collections import Counter
from typing import Hashable, Sequence


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two equally long label sequences; None when it is undefined (both raters always
    give the one same label, so chance agreement is 1). Matches ``sklearn.metrics.cohen_kappa_score``."""
    if len(a) != len(b):
        raise ValueError(f"two raters must label the same items ({len(a)} vs {len(b)} labels)")
    n = len(a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b)) / n
    count_a, count_b = Counter(a), Counter(b)
    expected = sum(count_a[k] * count_b[k] for k in count_a) / (n * n)
    if expected == 1:
        return None
    return (observed - expected) / (1 - expected)
