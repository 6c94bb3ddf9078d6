"""Statistics over run results: pure functions of numbers, no I/O."""

from __future__ import annotations

from insideLLMs.stats._agreement import cohen_kappa
from insideLLMs.stats._intervals import (
    CONFIDENCE,
    Interval,
    PairedDifference,
    mean_interval,
    mean_interval_from_sums,
    minimum_detectable_effect,
    paired_difference,
    pass_at_k,
    proportion_interval,
    sample_size_for,
)
from insideLLMs.stats._percentile import percentile

__all__ = [
    "CONFIDENCE",
    "Interval",
    "PairedDifference",
    "cohen_kappa",
    "mean_interval",
    "mean_interval_from_sums",
    "minimum_detectable_effect",
    "paired_difference",
    "pass_at_k",
    "percentile",
    "proportion_interval",
    "sample_size_for",
]
