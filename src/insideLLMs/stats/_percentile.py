"""The one percentile definition used for every latency figure (summary.json, tracking, report.html)."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Iterable


def percentile(values: Iterable[float], p: float) -> float:
    """The ``p``-th percentile (0 <= p <= 100) of ``values`` by the nearest-rank method.

    The smallest value with at least ``p`` % of the values at or below it, i.e. the value of rank
    ``ceil(p / 100 * n)`` in ascending order (numpy's ``method="inverted_cdf"``, Hyndman and Fan's
    type 1). It is always a value that was observed, so it commutes with rounding: the p50 of
    latencies rounded to the microsecond (timings.jsonl) is the rounded p50 of the raw latencies,
    which keeps summary.json, the tracked metrics and the report in agreement.
    Already-sorted input costs one linear pass.
    """
    xs = sorted(values)
    if not xs:
        raise ValueError("percentile of no values")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be between 0 and 100, not {p}")
    # p taken as the decimal it prints as, in exact arithmetic: 28 % of 25 values is rank 7, not 8
    rank = math.ceil(Fraction(str(p)) * len(xs) / 100)
    return xs[max(rank, 1) - 1]
