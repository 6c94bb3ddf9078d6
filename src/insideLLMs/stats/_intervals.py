"""Error bars: standard errors and confidence intervals for rates, means and paired differences.

Methods, named in every result so a reader knows what they look at:

- ``wilson``: the Wilson score interval for a proportion (pass rates, boolean scores). Unlike the
  normal approximation it stays inside [0, 1] and keeps its coverage near 0 % and 100 %.
- ``t``: mean ± t·s/√n, with s the sample standard deviation and t the quantile of Student's t with
  n − 1 degrees of freedom: the t interval, which keeps its coverage with few examples where the normal
  one (z = 1.96) is too narrow, and is the normal one for large n.
- ``cluster``: the same, with the cluster-robust standard error of the mean when examples share a
  cluster (a passage, a conversation, a template): CR1, with the small-sample factor G/(G−1) for G
  clusters (the (n−1)/(n−k) factor is 1 for a mean), which is what statsmodels reports for an
  intercept-only OLS with ``cov_type="cluster"``, and t with G − 1 degrees of freedom (few clusters
  carry little information, whatever the number of examples).
- ``paired``: the mean of per-example differences and its standard error
  √((var_a + var_b − 2·cov_ab) / n), which is what pairing buys over two independent samples, with t
  on n − 1 degrees of freedom (scipy's ``ttest_rel``); ``unpaired`` beside it uses Welch's.

Power (minimum detectable effect, sample size) uses the normal approximation. Pure functions of numbers.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

from insideLLMs.stats._student_t import t_cdf, t_quantile

CONFIDENCE = 0.95


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def _around(estimate: float, se: float, df: float, confidence: float) -> tuple[float, float]:
    """``estimate`` ± t·se, with t Student's two-sided ``confidence`` quantile on ``df`` degrees of freedom."""
    half = t_quantile(0.5 + confidence / 2, df) * se
    return estimate - half, estimate + half


@dataclass(frozen=True, slots=True)
class Interval:
    """An estimate with its standard error and confidence interval, and the method that made them."""

    estimate: float
    se: float
    low: float
    high: float
    method: str
    confidence: float = CONFIDENCE
    clusters: int | None = None  # how many clusters a clustered standard error had (None: not clustered)
    df: float | None = None  # degrees of freedom of its t quantile (None: not a t interval)

    def to_dict(self, digits: int = 6) -> dict[str, float | str | int]:
        out: dict[str, float | str | int] = {
            "estimate": round(self.estimate, digits), "se": round(self.se, digits), "low": round(self.low, digits),
            "high": round(self.high, digits), "method": self.method, "confidence": self.confidence}
        if self.clusters is not None:
            out["clusters"] = self.clusters
        return out

    def clipped(self, low: float = 0.0, high: float = 1.0) -> "Interval":
        """The same interval kept inside [low, high] (a rate's normal interval can overshoot 0 or 1)."""
        return Interval(self.estimate, self.se, max(low, self.low), min(high, self.high), self.method,
                        self.confidence, self.clusters, self.df)

    @property
    def label(self) -> str:
        """The method as a reader sees it: ``wilson``, ``t``, ``cluster (CR1, 12 clusters)``."""
        return f"{self.method} (CR1, {self.clusters} clusters)" if self.clusters is not None else self.method


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
    """The mean of ``values`` with its t interval; cluster-robust when ``clusters``
    (one label per value) says which values belong together. Needs two values (two clusters)."""
    n = len(values)
    if n < 2:
        raise ValueError("a standard error needs at least two values")
    mean = math.fsum(values) / n
    if clusters is None:
        se = math.sqrt(math.fsum((x - mean) ** 2 for x in values) / (n - 1) / n)
        return Interval(mean, se, *_around(mean, se, n - 1, confidence), "t", confidence, df=n - 1)
    if len(clusters) != n:
        raise ValueError("one cluster label per value")
    sums = ClusterSums()
    for label, x in zip(clusters, values):
        sums.add(label, x)
    return sums.interval(n, math.fsum(values), math.fsum(x * x for x in values), confidence)


def mean_interval_from_sums(n: int, total: float, total_of_squares: float,
                            confidence: float = CONFIDENCE) -> Interval:
    """``mean_interval`` from a running count, sum and sum of squares (a one-pass summary keeps only these)."""
    if n < 2:
        raise ValueError("a standard error needs at least two values")
    mean = total / n
    variance = max(0.0, (total_of_squares - total * total / n) / (n - 1))
    se = math.sqrt(variance / n)
    return Interval(mean, se, *_around(mean, se, n - 1, confidence), "t", confidence, df=n - 1)


@dataclass(slots=True)
class ClusterSums:
    """Per-cluster running count and sum of values (an example's score, or a pair's difference): all a
    one-pass clustered standard error keeps. Memory grows with the number of clusters, which is far smaller
    than the number of values (passages, conversations, templates — not examples).

    Values never added here (a record without a cluster) are each their own cluster: their part of the
    standard error comes from the caller's totals over all values, so a caller adds only labelled values."""

    groups: dict[Hashable, list[float]] = field(default_factory=dict)  # label -> [count, sum]
    squares: float = 0.0  # Σx² of the labelled values

    def __bool__(self) -> bool:
        return bool(self.groups)

    def add(self, label: Hashable, value: float, count: int = 1) -> None:
        """``count`` values equal to ``value`` in cluster ``label``."""
        group = self.groups.get(label)
        if group is None:
            group = self.groups[label] = [0, 0.0]
        group[0] += count
        group[1] += value * count
        self.squares += value * value * count

    def merge(self, other: ClusterSums) -> None:
        for label, (count, total) in other.groups.items():
            group = self.groups.get(label)
            if group is None:
                self.groups[label] = [count, total]
            else:
                group[0] += count
                group[1] += total
        self.squares += other.squares

    def standard_error(self, n: int, total: float, squares: float) -> tuple[float, int]:
        """(CR1 standard error of the mean, number of clusters G) of all ``n`` values, which sum to ``total``
        and whose squares sum to ``squares``; those not added here count as one cluster each.

        se = √(G/(G−1) · Σ_g (S_g − n_g·m)²) / n, with m the mean and S_g, n_g each cluster's sum and count
        (the (n−1)/(n−k) factor is 1 for a mean): statsmodels' ``cov_type="cluster"`` for an intercept-only OLS."""
        mean = total / n
        labelled = self.groups.values()
        meat = math.fsum((s - c * mean) ** 2 for c, s in labelled)
        singles = n - int(sum(c for c, _ in labelled))
        if singles:
            rest_total = total - math.fsum(s for _, s in labelled)
            rest_squares = squares - self.squares
            meat += max(0.0, rest_squares - 2 * mean * rest_total + singles * mean * mean)
        g = len(self.groups) + singles
        if g < 2:
            raise ValueError("a clustered standard error needs at least two clusters")
        return math.sqrt(g / (g - 1) * meat) / n, g

    def interval(self, n: int, total: float, squares: float, confidence: float = CONFIDENCE,
                 method: str = "cluster") -> Interval:
        """The mean of all ``n`` values with its clustered t interval on G − 1 degrees of freedom (see
        :meth:`standard_error`)."""
        se, g = self.standard_error(n, total, squares)
        mean = total / n
        return Interval(mean, se, *_around(mean, se, g - 1, confidence), method, confidence, g, g - 1)


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
    if n < 2:
        raise ValueError("a standard error needs at least two values")
    mean_a, mean_b = math.fsum(baseline) / n, math.fsum(candidate) / n
    var_a = math.fsum((x - mean_a) ** 2 for x in baseline) / (n - 1)
    var_b = math.fsum((y - mean_b) ** 2 for y in candidate) / (n - 1)
    cov = math.fsum((x - mean_a) * (y - mean_b) for x, y in zip(baseline, candidate)) / (n - 1)
    diffs = [c - b for b, c in zip(baseline, candidate)]
    mean_d = math.fsum(diffs) / n
    var_d = math.fsum((d - mean_d) ** 2 for d in diffs) / (n - 1)
    result = paired_difference_from_moments(n, mean_a, mean_b, var_a, var_b, cov, var_diff=var_d,
                                            confidence=confidence)
    if clusters is None:
        return result
    if len(clusters) != n:
        raise ValueError("one cluster label per value")
    sums = ClusterSums()
    for label, d in zip(clusters, diffs):
        sums.add(label, d)
    paired = sums.interval(n, math.fsum(diffs), math.fsum(d * d for d in diffs), confidence, "paired-cluster")
    return PairedDifference(n, paired, result.unpaired, result.correlation)


def paired_difference_from_moments(n: int, mean_a: float, mean_b: float, var_a: float, var_b: float, cov_ab: float,
                                   var_diff: float | None = None,
                                   confidence: float = CONFIDENCE) -> PairedDifference:
    """The paired difference from the two runs' means, (n−1)-variances and covariance over ``n`` pairs.

    Paired: se = √((var_a + var_b − 2·cov_ab) / n), t on n − 1 degrees of freedom; unpaired (Welch's, as if the
    runs were two independent samples): se = √(var_a/n + var_b/n), t on Welch–Satterthwaite's degrees of freedom. ``var_diff``, when the caller has it directly (the
    variance of the per-pair differences, the same quantity), is used instead of var_a + var_b − 2·cov_ab,
    which loses precision when the runs are nearly identical."""
    if n < 2:
        raise ValueError("a standard error needs at least two values")
    estimate = mean_b - mean_a
    v_diff = var_a + var_b - 2 * cov_ab if var_diff is None else var_diff
    se = math.sqrt(max(0.0, v_diff) / n)
    paired = Interval(estimate, se, *_around(estimate, se, n - 1, confidence), "paired", confidence, df=n - 1)
    se_u = math.sqrt(max(0.0, var_a + var_b) / n)
    # Welch–Satterthwaite with n on each side: (n−1)(va + vb)² / (va² + vb²); n − 1 when both are constant
    df_u = (n - 1) * (var_a + var_b) ** 2 / (var_a**2 + var_b**2) if var_a > 0 or var_b > 0 else n - 1
    unpaired = Interval(estimate, se_u, *_around(estimate, se_u, df_u, confidence), "unpaired", confidence, df=df_u)
    correlation = cov_ab / math.sqrt(var_a * var_b) if var_a > 0 and var_b > 0 else None
    if correlation is not None:
        correlation = max(-1.0, min(1.0, correlation))
    return PairedDifference(n, paired, unpaired, correlation)


@dataclass(slots=True)
class PairedSums:
    """Running sums of paired values (n, Σa, Σb, Σa², Σb², Σab, and Σd, Σd² of the differences d = b − a):
    all a one-pass comparison keeps, however many pairs it sees."""

    n: int = 0
    sum_a: float = 0.0
    sum_b: float = 0.0
    sum_aa: float = 0.0
    sum_bb: float = 0.0
    sum_ab: float = 0.0
    sum_d: float = 0.0
    sum_dd: float = 0.0

    def add(self, a: float, b: float) -> None:
        """One pair: the baseline's value ``a`` and the candidate's ``b``."""
        d = b - a
        self.n += 1
        self.sum_a += a
        self.sum_b += b
        self.sum_aa += a * a
        self.sum_bb += b * b
        self.sum_ab += a * b
        self.sum_d += d
        self.sum_dd += d * d

    def add_same(self, value: float, count: int = 1) -> None:
        """``count`` pairs whose two values are both ``value`` (their difference is exactly zero)."""
        self.add_same_sums(count, value * count, value * value * count)

    def add_same_sums(self, count: int, total: float, squares: float) -> None:
        """``count`` pairs with equal values on both sides, whose values sum to ``total`` and squares to ``squares``."""
        self.n += count
        self.sum_a += total
        self.sum_b += total
        self.sum_aa += squares
        self.sum_bb += squares
        self.sum_ab += squares

    def merge(self, other: PairedSums) -> None:
        for name in self.__slots__:  # type: ignore[attr-defined]
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def difference(self, confidence: float = CONFIDENCE, clusters: ClusterSums | None = None) -> PairedDifference:
        """:func:`paired_difference` of the pairs added so far (needs two); the paired interval is clustered
        (``paired-cluster``) when ``clusters`` holds the differences of the pairs that have a cluster."""
        n = self.n
        if n < 2:
            raise ValueError("a standard error needs at least two values")
        var_a = (self.sum_aa - self.sum_a * self.sum_a / n) / (n - 1)
        var_b = (self.sum_bb - self.sum_b * self.sum_b / n) / (n - 1)
        cov = (self.sum_ab - self.sum_a * self.sum_b / n) / (n - 1)
        var_d = (self.sum_dd - self.sum_d * self.sum_d / n) / (n - 1)
        result = paired_difference_from_moments(n, self.sum_a / n, self.sum_b / n, max(0.0, var_a), max(0.0, var_b),
                                                cov, var_diff=var_d, confidence=confidence)
        if not clusters:
            return result
        paired = clusters.interval(n, self.sum_d, self.sum_dd, confidence, "paired-cluster")
        return PairedDifference(n, paired, result.unpaired, result.correlation)


def probability_below(estimate: float, se: float, bound: float, df: float | None = None) -> float:
    """The one-sided p-value of "the true value is at least ``bound``": P(T ≤ (estimate − bound) / se), with T
    Student's t on ``df`` degrees of freedom (the interval's, so the p-value and the interval agree), or the
    normal when ``df`` is None. With a zero standard error: 0 below the bound, else 1."""
    if se <= 0:
        return 0.0 if estimate < bound else 1.0
    if df is None:
        return NormalDist().cdf((estimate - bound) / se)
    return t_cdf((estimate - bound) / se, df)


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
