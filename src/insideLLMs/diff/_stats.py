"""The exact McNemar test on paired pass/fail flips: is a drop in pass rate more than noise?

Only the discordant pairs carry information: ``b`` examples went pass → fail, ``c`` went
fail → pass. Under "no change", each flip is a fair coin, so ``b ~ Binomial(b + c, 1/2)``.
The one-sided p-value for a *drop* is ``P(X >= b)``. No scipy: the binomial tail is exact
integer arithmetic with ``math.comb`` (log-space floats only past 10,000 flips).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TEST_NAME = "exact McNemar (one-sided binomial on discordant pairs)"
_EXACT_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class McNemarResult:
    """``b`` pass→fail flips, ``c`` fail→pass flips, ``p_value`` for "the pass rate dropped"."""

    b: int
    c: int
    p_value: float

    @property
    def flips(self) -> int:
        return self.b + self.c

    def significant_drop(self, alpha: float) -> bool:
        return self.b > self.c and self.p_value < alpha

    def to_dict(self) -> dict[str, object]:
        return {"test": TEST_NAME, "b": self.b, "c": self.c, "p_value": self.p_value}


def binomial_upper_tail(k: int, n: int) -> float:
    """``P(X >= k)`` for ``X ~ Binomial(n, 1/2)``."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if n <= _EXACT_LIMIT:
        term = math.comb(n, k)
        total = term
        for i in range(k, n):
            term = term * (n - i) // (i + 1)
            total += term
        return total / 2**n  # big-int / big-int true division is exact to float precision
    # large n: sum the terms in log space, starting from the largest (the first, since k > n/2
    # in every case that matters; otherwise the tail is ~1 and we sum it the same way)
    log_term = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) - n * math.log(2)
    total = 0.0
    ratio_log = log_term
    for i in range(k, n + 1):
        total += math.exp(ratio_log)
        if i < n:
            ratio_log += math.log((n - i) / (i + 1))
            if ratio_log < log_term - 50 and i > n / 2:
                break
    return min(1.0, total)


def mcnemar_drop(pass_to_fail: int, fail_to_pass: int) -> McNemarResult:
    """The exact one-sided McNemar test for a drop in pass rate."""
    n = pass_to_fail + fail_to_pass
    return McNemarResult(pass_to_fail, fail_to_pass, binomial_upper_tail(pass_to_fail, n))
