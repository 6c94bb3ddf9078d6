"""Error bars: standard errors and confidence intervals for rates, means and paired differences.

Methods, named in every result so a reader knows what they look at:

- ``wilson``: the Wilson score interval for a proportion (pass rates, boolean scores). Unlike the
  normal approximation it stays inside [0, 1] and keeps its coverage near 0 % and 100 %.
- ``normal``: mean ± z·s/√n, with s the sample standard deviation (the central limit theorem).
- ``cluster``: the same, with the cluster-robust standard error of the mean when examples share a
  cluster (a passage, a conversation, a template): CR1, with the small-sample factor G/(G−1) for G
  clusters (the (n−1)/(n−k) factor is 1 for a mean), which is what statsmodels reports for an
  intercept-only OLS with ``cov_type="cluster"``.
- ``paired``: the mean of per-example differences and its standard error
  √((var_a + var_b − 2·cov_ab) / n), which is what pairing buys over two independent samples.

Pure functions of numbers; the normal quantiles come from the standard library.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

CONFIDENCE = 0.95


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


@dataclass(frozen=True, slots=True)
class Interval:
    """An estimate with its standard error and confidence interval, and the method that made them."""

    estimate: float
    se: float
    low: float
    high: float
    method: str
    confidence: float = CONFIDENCE

    def to_dict(self, digits: int = 6) -> dict[str, float | str]:
        return {"estimate": round(self.estimate, digits), "se": round(self.se, digits), "low": round(self.low, digits),
                "high": round(self.high, digits), "method": self.method, "confidence": self.confidence}


def proportion_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> Interval:
    """The Wilson score interval of ``successes`` out of ``n`` (n ≥ 1); ``se`` is the binomial √(p(1−p)/n)."""
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n >= 1, got {successes} of {n}")
    z = _z(confidence)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return Interval(p, math.sqrt(p * (1 - p) / n), max(0.0, centre - half), min(1.0, centre + half), "wilson",
                    confidence)


def mean_interval(values: Sequence[float], clusters: Sequence[Hashable] | None = None,
                  confidence: float = CONFIDENCE) -> Interval:
    """The mean of ``values`` with its normal-approximation interval; cluster-robust when ``clusters``
    (one label per value) says which values belong together. Needs two values (two clusters)."""
    n = len(values)
    if n < 2:
        raise ValueError("a standard error needs at least two values")
    mean = math.fsum(values) / n
    if clusters is None:
        se = math.sqrt(math.fsum((x - mean) ** 2 for x in values) / (n - 1) / n)
        method = "normal"
    else:
        se = _cluster_se([x - mean for x in values], clusters)
        method = "cluster"
    z = _z(confidence)
    return Interval(mean, se, mean - z * se, mean + z * se, method, confidence)


def mean_interval_from_sums(n: int, total: float, total_of_squares: float,
                            confidence: float = CONFIDENCE) -> Interval:
    """``mean_interval`` from a running count, sum and sum of squares (a one-pass summary keeps only these)."""
    if n < 2:
        raise ValueError("a standard error needs at least two values")
    mean = total / n
    variance = max(0.0, (total_of_squares - total * total / n) / (n - 1))
    se = math.sqrt(variance / n)
    z = _z(confidence)
    return Interval(mean, se, mean - z * se, mean + z * se, "normal", confidence)


def _cluster_se(residuals: Sequence[float], clusters: Sequence[Hashable]) -> float:
    """Cluster-robust (CR1) standard error of a mean from its residuals."""
    if len(clusters) != len(residuals):
        raise ValueError("one cluster label per value")
    sums: dict[Hashable, float] = {}
    for label, r in zip(clusters, residuals):
        sums[label] = sums.get(label, 0.0) + r
    g, n = len(sums), len(residuals)
    if g < 2:
        raise ValueError("a clustered standard error needs at least two clusters")
    meat = math.fsum(s * s for s in sums.values())
    return math.sqrt(g / (g - 1) * meat) / n  # (n−1)/(n−k) is 1 for a mean (k = 1)


@dataclass(frozen=True, slots=True)
class PairedDifference:
    """Candidate minus baseline over the examples both runs have, paired and (for comparison) unpaired."""

    n: int
    paired: Interval
    unpaired: Interval
    correlation: float | None  # between the two runs' per-example values (None when one side is constant)

    def to_dict(self) -> dict[str, object]:
        return {"n": self.n, "paired": self.paired.to_dict(), "unpaired": self.unpaired.to_dict(),
                "correlation": None if self.correlation is None else round(self.correlation, 6)}


def paired_difference(baseline: Sequence[float], candidate: Sequence[float],
                      clusters: Sequence[Hashable] | None = None,
                      confidence: float = CONFIDENCE) -> PairedDifference:
    """The mean difference ``candidate − baseline`` of paired values, with its paired interval (clustered
    when ``clusters`` is given) beside the interval two independent samples would have had."""
    n = len(baseline)
    if n != len(candidate):
        raise ValueError("paired values: one candidate value per baseline value")
    diffs = [c - b for b, c in zip(baseline, candidate)]
    paired = mean_interval(diffs, clusters, confidence)
    paired = Interval(paired.estimate, paired.se, paired.low, paired.high, "paired" if clusters is None else
                      "paired-cluster", confidence)
    a, b = mean_interval(baseline), mean_interval(candidate)
    se = math.hypot(a.se, b.se)
    z = _z(confidence)
    unpaired = Interval(paired.estimate, se, paired.estimate - z * se, paired.estimate + z * se, "unpaired",
                        confidence)
    var_a, var_b = (a.se ** 2) * n, (b.se ** 2) * n
    cov = math.fsum((x - a.estimate) * (y - b.estimate) for x, y in zip(baseline, candidate)) / (n - 1)
    correlation = cov / math.sqrt(var_a * var_b) if var_a > 0 and var_b > 0 else None
    return PairedDifference(n, paired, unpaired, correlation)


def minimum_detectable_effect(se: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true difference a two-sided test at ``alpha`` detects with probability ``power``,
    given the standard error of the estimate: (z₁₋α/₂ + z_power)·se."""
    normal = NormalDist()
    return (normal.inv_cdf(1 - alpha / 2) + normal.inv_cdf(power)) * se


def sample_size_for(effect: float, se_at_n: float, n: int, alpha: float = 0.05, power: float = 0.8) -> int:
    """How many examples detect ``effect`` when ``n`` examples give standard error ``se_at_n`` (se ∝ 1/√n)."""
    if effect <= 0:
        raise ValueError("the effect to detect must be positive")
    needed = n * (minimum_detectable_effect(se_at_n, alpha, power) / effect) ** 2
    return max(1, math.ceil(needed - 1e-9))


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k of an example sampled ``n`` times with ``c`` correct (Chen et al., 2021):
    1 − C(n−c, k) / C(n, k), computed as a product so large ``n`` does not overflow."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1 - k / i for i in range(n - c + 1, n + 1))
