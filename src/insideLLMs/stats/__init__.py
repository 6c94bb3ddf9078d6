"""Statistics over run results: pure functions of numbers, no I/O."""

from __future__ import annotations

from insideLLMs.stats._agreement import cohen_kappa
from insideLLMs.stats._intervals import (
    CONFIDENCE,
    ClusterSums,
    Interval,
    PairedDifference,
    PairedSums,
    mean_interval,
    mean_interval_from_sums,
    minimum_detectable_effect,
    paired_difference,
    paired_difference_from_moments,
    pass_at_k,
    probability_below,
    proportion_interval,
    sample_size_for,
)
from insideLLMs.stats._multiple_testing import holm_adjust
from insideLLMs.stats._reducers import DEFAULT_REDUCER, REDUCERS, Reducer, within_variance
from insideLLMs.stats._percentile import percentile

__all__ = [
    "CONFIDENCE",
    "DEFAULT_REDUCER",
    "REDUCERS",
    "ClusterSums",
    "Interval",
    "PairedDifference",
    "PairedSums",
    "Reducer",
    "cohen_kappa",
    "holm_adjust",
    "mean_interval",
    "mean_interval_from_sums",
    "minimum_detectable_effect",
    "paired_difference",
    "paired_difference_from_moments",
    "pass_at_k",
    "percentile",
    "probability_below",
    "proportion_interval",
    "sample_size_for",
    "within_variance",
]
