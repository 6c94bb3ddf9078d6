"""Multiple testing: when one gate tests many model × probe groups, some "significant" results are luck.

Holm's step-down method controls the family-wise error rate (the chance of at least one false
alarm among all the groups) at alpha, without assuming the tests are independent, and rejects at
least as much as Bonferroni.
"""

from __future__ import annotations

from collections.abc import Sequence


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order: reject hypothesis i at level alpha when the
    adjusted value is below alpha. The k-th smallest of m p-values is multiplied by m − k + 1, capped
    at 1, and made non-decreasing in that order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
