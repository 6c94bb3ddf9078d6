"""Error bars, checked against independent implementations (scipy, statsmodels) on seeded data, and by
simulation: a 95 % interval must cover the true value about 95 % of the time."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.regression.linear_model import OLS
from statsmodels.stats.proportion import proportion_confint

from insideLLMs.stats import (
    ClusterSums,
    Interval,
    paired_difference_from_moments,
    mean_interval,
    mean_interval_from_sums,
    minimum_detectable_effect,
    PairedSums,
    holm_adjust,
    paired_difference,
    probability_below,
    pass_at_k,
    proportion_interval,
    sample_size_for,
)


@pytest.mark.parametrize(("k", "n"), [(0, 1), (1, 1), (0, 28), (19, 28), (28, 28), (3, 200), (150, 151), (5000, 9999)])
def test_wilson_matches_statsmodels(k: int, n: int) -> None:
    ours = proportion_interval(k, n)
    low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert (ours.low, ours.high) == pytest.approx((low, high), abs=1e-12)
    assert ours.estimate == k / n and ours.method == "wilson"
    assert ours.se == pytest.approx(math.sqrt(k / n * (1 - k / n) / n))


def test_a_mean_matches_scipy() -> None:
    rng = np.random.default_rng(1)
    for size in (2, 5, 30, 400):
        xs = rng.beta(0.5, 2.0, size).tolist()
        ours = mean_interval(xs)
        sem = sps.sem(xs)
        low, high = sps.t.interval(0.95, size - 1, loc=np.mean(xs), scale=sem)
        assert (ours.estimate, ours.se, ours.low, ours.high) == pytest.approx((np.mean(xs), sem, low, high), rel=1e-10)
        assert (ours.method, ours.df) == ("t", size - 1)


def test_a_mean_from_running_sums_is_the_same_mean_interval() -> None:
    rng = np.random.default_rng(4)
    xs = rng.uniform(0, 1, 500).tolist()
    whole = mean_interval(xs)
    running = mean_interval_from_sums(len(xs), sum(xs), sum(x * x for x in xs))
    assert (running.estimate, running.se, running.low, running.high) == pytest.approx(
        (whole.estimate, whole.se, whole.low, whole.high), rel=1e-9)
    assert mean_interval_from_sums(3, 3.0, 3.0).se == 0.0  # constant values: no spread


def test_a_clustered_mean_matches_statsmodels_cluster_robust_errors() -> None:
    rng = np.random.default_rng(2)
    clusters = np.repeat(np.arange(40), rng.integers(1, 8, 40))
    effects = rng.normal(0, 1, 40)[clusters]
    ys = (effects + rng.normal(0, 0.5, len(clusters))).tolist()
    fit = OLS(np.asarray(ys), np.ones(len(ys))).fit(cov_type="cluster", cov_kwds={"groups": clusters})
    ours = mean_interval(ys, clusters=clusters.tolist())
    assert ours.method == "cluster"
    assert ours.se == pytest.approx(float(fit.bse[0]), rel=1e-10)
    assert ours.se > mean_interval(ys).se  # shared clusters: honest error bars are wider


def test_a_paired_difference_matches_scipy_ttest_rel() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(0.6, 0.2, 300)
    cand = base + rng.normal(0.03, 0.05, 300)  # strongly correlated with the baseline
    result = paired_difference(base.tolist(), cand.tolist())
    t = sps.ttest_rel(cand, base)
    assert result.paired.estimate == pytest.approx(float(np.mean(cand - base)))
    assert result.paired.se == pytest.approx(result.paired.estimate / t.statistic, rel=1e-10)
    var_a, var_b = np.var(base, ddof=1), np.var(cand, ddof=1)
    cov = np.cov(base, cand, ddof=1)[0, 1]
    assert result.paired.se == pytest.approx(math.sqrt((var_a + var_b - 2 * cov) / 300), rel=1e-10)
    assert result.correlation == pytest.approx(float(np.corrcoef(base, cand)[0, 1]), rel=1e-10)
    assert result.unpaired.se == pytest.approx(math.sqrt(var_a / 300 + var_b / 300), rel=1e-10)
    assert result.paired.se < result.unpaired.se / 3  # what pairing buys


def test_power() -> None:
    # (1.959964 + 0.841621) * se, as in any power table for alpha 0.05 two-sided and power 0.8
    assert minimum_detectable_effect(0.01) == pytest.approx(0.028016, abs=1e-6)
    assert minimum_detectable_effect(0.01, alpha=0.05, power=0.8) == pytest.approx(
        (sps.norm.ppf(0.975) + sps.norm.ppf(0.8)) * 0.01, rel=1e-12)
    # n=200 gives se=0.035; detecting 0.05 needs (0.098/0.05)^2 * 200 examples
    needed = sample_size_for(0.05, 0.035, 200)
    assert needed == math.ceil(200 * (minimum_detectable_effect(0.035) / 0.05) ** 2)
    assert minimum_detectable_effect(0.035 * math.sqrt(200 / needed)) <= 0.05


@pytest.mark.parametrize(("n", "c", "k"), [(1, 0, 1), (1, 1, 1), (5, 2, 1), (5, 2, 2), (5, 2, 4), (10, 3, 5),
                                           (200, 1, 100), (20, 0, 10)])
def test_pass_at_k_is_the_unbiased_estimator(n: int, c: int, k: int) -> None:
    expected = 1 - math.comb(n - c, k) / math.comb(n, k)
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)


@pytest.mark.slow
def test_intervals_cover_the_truth_about_95_percent_of_the_time() -> None:
    """2,000 simulated evals each, seeded: a proportion (n=80, p=0.3), a skewed bounded score (beta, n=150),
    clustered data (30 clusters), and paired runs with a known true difference."""
    rng = np.random.default_rng(7)
    trials = 2000
    prop = sum(proportion_interval(int(k), 80).low <= 0.3 <= proportion_interval(int(k), 80).high
               for k in rng.binomial(80, 0.3, trials))
    true_mean = 0.5 / (0.5 + 2.0)
    skew = 0
    for _ in range(trials):
        iv = mean_interval(rng.beta(0.5, 2.0, 150).tolist())
        skew += iv.low <= true_mean <= iv.high
    clustered = 0
    for _ in range(trials):
        labels = np.repeat(np.arange(30), 5)
        ys = rng.normal(0, 1, 30)[labels] + rng.normal(0, 1, 150)
        iv = mean_interval(ys.tolist(), clusters=labels.tolist())
        clustered += iv.low <= 0.0 <= iv.high
    paired = 0
    for _ in range(trials):
        base = rng.binomial(1, 0.6, 200).astype(float)
        flip_up = rng.random(200) < 0.08
        flip_down = rng.random(200) < 0.03
        cand = np.where(flip_up, 1.0, np.where(flip_down, 0.0, base))
        truth = 0.08 * 0.4 * 1 - 0.03 * (1 - 0.08) * 0.6  # E[cand - base]
        iv = paired_difference(base.tolist(), cand.tolist()).paired
        paired += iv.low <= truth <= iv.high
    for name, hits in (("proportion", prop), ("skewed mean", skew), ("clustered", clustered), ("paired", paired)):
        assert 0.93 <= hits / trials <= 0.97, (name, hits / trials)


def test_few_examples_or_clusters_still_cover_95_percent() -> None:
    """With 8 examples, or 60 examples in 8 clusters, mean ± 1.96·se covers only about 91 %; the t interval
    (n − 1, or G − 1, degrees of freedom) keeps 95 %. 3,000 seeded trials each."""
    rng = np.random.default_rng(11)
    trials = 3000
    small = few_clusters = naive = naive_clusters = 0
    labels = np.repeat(np.arange(8), [5, 6, 7, 8, 8, 8, 9, 9])
    for _ in range(trials):
        xs = rng.normal(0.4, 0.2, 8)
        iv = mean_interval(xs.tolist())
        small += iv.low <= 0.4 <= iv.high
        naive += abs(iv.estimate - 0.4) <= 1.959964 * iv.se
        ys = rng.normal(0, 1, 8)[labels] + rng.normal(0, 0.3, len(labels))
        civ = mean_interval(ys.tolist(), clusters=labels.tolist())
        few_clusters += civ.low <= 0.0 <= civ.high
        naive_clusters += abs(civ.estimate) <= 1.959964 * civ.se
    assert 0.93 <= small / trials <= 0.97
    assert 0.92 <= few_clusters / trials <= 0.97  # CR1 with 8 clusters runs a little narrow even with t
    assert naive / trials < 0.925 and naive_clusters / trials < 0.925


def test_bad_inputs_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="successes"):
        proportion_interval(3, 2)
    with pytest.raises(ValueError, match="two values"):
        mean_interval([1.0])
    with pytest.raises(ValueError, match="two clusters"):
        mean_interval([1.0, 2.0], clusters=["a", "a"])
    with pytest.raises(ValueError, match="one candidate value per baseline value"):
        paired_difference([1.0, 2.0], [1.0])


def _pairs(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.beta(2.0, 1.0, n)
    cand = np.clip(base + rng.normal(-0.02, 0.1, n), 0, 1)
    return base, cand


@pytest.mark.parametrize("n", [3, 12, 250])
def test_paired_interval_matches_ttest_rel_confidence_interval(n: int) -> None:
    """ttest_rel's interval is mean ± t·se on n − 1 degrees of freedom; so is ours."""
    base, cand = _pairs(n, n)
    ours = paired_difference(base.tolist(), cand.tolist()).paired
    t = sps.ttest_rel(cand, base)
    low, high = t.confidence_interval(0.95)
    assert ours.estimate == pytest.approx((low + high) / 2, rel=1e-10)
    assert ours.se == pytest.approx((high - low) / 2 / sps.t.ppf(0.975, n - 1), rel=1e-10)
    assert (ours.low, ours.high) == pytest.approx((low, high), rel=1e-10)
    # the one-sided p-value the --fail-on-regression-ci gate uses agrees with the interval and with scipy
    assert probability_below(ours.estimate, ours.se, 0.0, ours.df) == pytest.approx(
        sps.ttest_rel(cand, base, alternative="less").pvalue, rel=1e-8)


def test_unpaired_interval_is_welchs_standard_error() -> None:
    base, cand = _pairs(5, 400)
    ours = paired_difference(base.tolist(), cand.tolist()).unpaired
    welch = sps.ttest_ind(cand, base, equal_var=False)
    assert ours.se == pytest.approx(ours.estimate / welch.statistic, rel=1e-10)
    assert ours.method == "unpaired"
    assert (ours.low, ours.high) == pytest.approx(tuple(welch.confidence_interval(0.95)), rel=1e-10)


def test_running_sums_give_the_same_paired_difference() -> None:
    base, cand = _pairs(6, 1000)
    whole = paired_difference(base.tolist(), cand.tolist())
    sums = PairedSums()
    for a, b in zip(base.tolist()[:600], cand.tolist()[:600]):
        sums.add(a, b)
    rest = PairedSums()
    for a, b in zip(base.tolist()[600:], cand.tolist()[600:]):
        rest.add(a, b)
    sums.merge(rest)
    running = sums.difference()
    assert running.n == 1000
    for ours, theirs in ((running.paired, whole.paired), (running.unpaired, whole.unpaired)):
        assert (ours.estimate, ours.se, ours.low, ours.high) == pytest.approx(
            (theirs.estimate, theirs.se, theirs.low, theirs.high), rel=1e-9)
    assert running.correlation == pytest.approx(whole.correlation, rel=1e-9)


def test_paired_difference_by_hand() -> None:
    """Baseline 1,1,0,0 and candidate 1,0,0,1 (one flip each way): d = 0,−1,0,+1, mean 0,
    var_d = 2/3, se = √(2/3 / 4); var_a = var_b = 1/3, cov = 0 (so r = 0), unpaired se = √(2/3 / 4) too."""
    sums = PairedSums()
    for a, b in ((1, 1), (1, 0), (0, 0), (0, 1)):
        sums.add(float(a), float(b))
    result = sums.difference()
    assert result.paired.estimate == 0.0
    assert result.paired.se == pytest.approx(math.sqrt(2 / 3 / 4), rel=1e-12)
    assert result.unpaired.se == pytest.approx(math.sqrt(2 / 3 / 4), rel=1e-12)
    assert result.correlation == pytest.approx(0.0, abs=1e-12)
    same = PairedSums()
    same.add_same(1.0, 3)
    same.add_same(0.0, 2)
    identical = same.difference()  # identical runs: no difference and no doubt about it
    assert (identical.paired.estimate, identical.paired.se) == (0.0, 0.0)
    assert identical.correlation == pytest.approx(1.0)
    assert identical.unpaired.se == pytest.approx(math.sqrt(2 * 0.3 / 5), rel=1e-12)


def test_mde_and_sample_size_match_statsmodels_normal_power() -> None:
    """Our power is the one-sample (paired) normal test: statsmodels' NormalIndPower with ratio=0, in effect
    sizes standardized by the standard deviation of the differences (sd = se·√n)."""
    from statsmodels.stats.power import NormalIndPower

    power = NormalIndPower()
    for n, sd in ((50, 0.4), (200, 0.3), (3000, 0.05)):
        se = sd / math.sqrt(n)
        d = power.solve_power(effect_size=None, nobs1=n, alpha=0.05, power=0.8, ratio=0)
        assert minimum_detectable_effect(se) == pytest.approx(d * sd, rel=1e-4)  # they add the far tail (~1e-6)
        for tolerance in (0.01, 0.02, 0.05):
            needed = power.solve_power(effect_size=tolerance / sd, nobs1=None, alpha=0.05, power=0.8, ratio=0)
            assert abs(sample_size_for(tolerance, se, n) - math.ceil(needed)) <= 1


@pytest.mark.slow
def test_holm_matches_statsmodels() -> None:
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(11)
    for m in (1, 2, 5, 30):
        ps = np.concatenate([rng.uniform(0, 0.02, m // 2), rng.uniform(0, 1, m - m // 2)]).tolist()
        ps[0:0] = [ps[-1]] if m > 2 else []  # a tie
        reject, adjusted, _, _ = multipletests(ps, alpha=0.05, method="holm")
        ours = holm_adjust(ps)
        assert ours == pytest.approx(adjusted.tolist(), abs=1e-15)
        assert [p < 0.05 for p in ours] == reject.tolist()


def test_probability_below_is_the_one_sided_normal_p_value() -> None:
    assert probability_below(-0.05, 0.01, -0.02) == pytest.approx(sps.norm.cdf(-3.0), rel=1e-12)
    assert probability_below(-0.05, 0.01, -0.02, df=4) == pytest.approx(sps.t.cdf(-3.0, 4), rel=1e-10)
    assert probability_below(0.0, 0.0, -0.02) == 1.0 and probability_below(-0.1, 0.0, -0.02) == 0.0


@pytest.mark.slow
def test_paired_interval_covers_a_known_difference_for_a_skewed_bounded_score() -> None:
    """2,000 simulated pairs of runs (n=120), seeded: a skewed score in [0, 1] and a candidate that is worse by
    a known amount on average; the paired interval from running sums covers the true difference 93–97 %."""
    rng = np.random.default_rng(13)
    trials, n = 2000, 120
    base_all = rng.beta(0.6, 2.5, (trials, n))  # mean m = 0.6 / 3.1, most mass near 0
    cand_all = 0.7 * base_all + 0.3 * 0.5 * rng.beta(0.6, 2.5, (trials, n))  # still in [0, 1], correlated
    truth = 0.3 * 0.5 * (0.6 / 3.1) - 0.3 * (0.6 / 3.1)  # E[cand − base]
    hits = 0
    for base, cand in zip(base_all, cand_all):
        sums = PairedSums()
        for a, b in zip(base.tolist(), cand.tolist()):
            sums.add(a, b)
        iv = sums.difference().paired
        hits += iv.low <= truth <= iv.high
    assert 0.93 <= hits / trials <= 0.97, hits / trials


def _cluster_fit(ys: np.ndarray, groups: np.ndarray, alpha: float) -> tuple[float, float, float]:
    """statsmodels' CR1 standard error and t interval (G − 1 degrees of freedom) of the mean of ``ys``."""
    fit = OLS(ys, np.ones(len(ys))).fit(cov_type="cluster", cov_kwds={"groups": groups}, use_t=True)
    low, high = fit.conf_int(alpha)[0]
    return float(fit.bse[0]), float(low), float(high)


def _clustered_pairs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    labels = np.repeat(np.arange(9), rng.integers(2, 6, 9))
    base = rng.normal(0.6, 0.2, 9)[labels] + rng.normal(0, 0.1, len(labels))
    cand = base + rng.normal(0.05, 0.15, 9)[labels] + rng.normal(0, 0.05, len(labels))
    return base, cand, labels


def test_a_clustered_paired_difference_at_90_percent_matches_statsmodels_and_welch() -> None:
    """Every field of a clustered paired difference at a non-default confidence: the paired side is statsmodels'
    cluster-robust mean of the differences (t on G − 1), the unpaired side scipy's Welch interval."""
    base, cand, labels = _clustered_pairs()
    n, g = len(base), len(set(labels.tolist()))
    result = paired_difference(base.tolist(), cand.tolist(), clusters=[f"p{x}" for x in labels.tolist()],
                               confidence=0.9)
    se, low, high = _cluster_fit(cand - base, labels, 0.10)
    assert result.n == n
    paired = result.paired
    assert (paired.estimate, paired.se, paired.low, paired.high) == pytest.approx(
        (float(np.mean(cand - base)), se, low, high), rel=1e-9)
    assert (paired.method, paired.confidence, paired.clusters, paired.df) == ("paired-cluster", 0.9, g, g - 1)
    welch = sps.ttest_ind(cand, base, equal_var=False)
    unpaired = result.unpaired
    assert (unpaired.estimate, unpaired.low, unpaired.high) == pytest.approx(
        (float(np.mean(cand - base)), *welch.confidence_interval(0.9)), rel=1e-9)
    assert unpaired.se == pytest.approx(unpaired.estimate / welch.statistic, rel=1e-9)
    assert unpaired.df == pytest.approx(float(welch.df), rel=1e-9)
    assert (unpaired.method, unpaired.confidence, unpaired.clusters) == ("unpaired", 0.9, None)
    r = float(np.corrcoef(base, cand)[0, 1])
    assert result.correlation == pytest.approx(r, rel=1e-9)
    assert result.to_dict() == {
        "n": n, "paired": {"estimate": round(paired.estimate, 6), "se": round(se, 6), "low": round(low, 6),
                           "high": round(high, 6), "method": "paired-cluster", "confidence": 0.9, "clusters": g},
        "unpaired": {"estimate": round(unpaired.estimate, 6), "se": round(unpaired.se, 6),
                     "low": round(unpaired.low, 6), "high": round(unpaired.high, 6), "method": "unpaired",
                     "confidence": 0.9},
        "correlation": round(r, 6)}
    # the same pairs fed one at a time, with the differences of the clustered pairs in a ClusterSums
    sums, cluster_sums = PairedSums(), ClusterSums()
    for a, b, label in zip(base.tolist(), cand.tolist(), labels.tolist()):
        sums.add(a, b)
        cluster_sums.add(f"p{label}", b - a)
    running = sums.difference(confidence=0.9, clusters=cluster_sums)
    assert running.n == n and running.correlation == pytest.approx(r, rel=1e-9)
    assert (running.paired.se, running.paired.low, running.paired.high) == pytest.approx((se, low, high), rel=1e-9)
    assert (running.paired.method, running.paired.confidence, running.paired.df) == ("paired-cluster", 0.9, g - 1)
    assert (running.unpaired.low, running.unpaired.high) == pytest.approx(tuple(welch.confidence_interval(0.9)),
                                                                         rel=1e-9)
    assert running.unpaired.confidence == 0.9


def test_a_clustered_mean_at_90_percent_matches_statsmodels() -> None:
    base, _, labels = _clustered_pairs()
    se, low, high = _cluster_fit(base, labels, 0.10)
    ours = mean_interval(base.tolist(), clusters=labels.tolist(), confidence=0.9)
    g = len(set(labels.tolist()))
    assert (ours.estimate, ours.se, ours.low, ours.high) == pytest.approx((float(base.mean()), se, low, high), rel=1e-9)
    assert (ours.method, ours.confidence, ours.clusters, ours.df, ours.label) == (
        "cluster", 0.9, g, g - 1, f"cluster (CR1, {g} clusters)")
    # a cluster of three equal values counts as three values
    repeated = ClusterSums()
    for label, y in zip(labels.tolist(), base.tolist()):
        repeated.add(label, y, count=3)
    ys, groups = np.repeat(base, 3), np.repeat(labels, 3)
    assert repeated.standard_error(len(ys), float(ys.sum()), float((ys * ys).sum())) == (
        pytest.approx(_cluster_fit(ys, groups, 0.05)[0], rel=1e-9), g)
    plain = mean_interval(base.tolist(), confidence=0.9)
    t = sps.ttest_1samp(base, 0.0)
    assert (plain.low, plain.high) == pytest.approx(tuple(t.confidence_interval(0.9)), rel=1e-10)
    assert (plain.method, plain.confidence, plain.df, plain.clusters) == ("t", 0.9, len(base) - 1, None)


def test_paired_difference_from_moments_without_var_diff_matches_ttest_rel_at_90_percent() -> None:
    base, cand = _pairs(21, 40)
    n = len(base)
    var_a, var_b = float(np.var(base, ddof=1)), float(np.var(cand, ddof=1))
    cov = float(np.cov(base, cand, ddof=1)[0, 1])
    result = paired_difference_from_moments(n, float(base.mean()), float(cand.mean()), var_a, var_b, cov,
                                            confidence=0.9)
    t = sps.ttest_rel(cand, base)
    assert (result.paired.low, result.paired.high) == pytest.approx(tuple(t.confidence_interval(0.9)), rel=1e-9)
    assert result.paired.se == pytest.approx(result.paired.estimate / t.statistic, rel=1e-9)
    assert (result.paired.method, result.paired.confidence, result.paired.df) == ("paired", 0.9, n - 1)
    welch = sps.ttest_ind(cand, base, equal_var=False)
    assert (result.unpaired.low, result.unpaired.high) == pytest.approx(tuple(welch.confidence_interval(0.9)),
                                                                       rel=1e-9)
    assert (result.unpaired.method, result.unpaired.confidence) == ("unpaired", 0.9)
    assert result.unpaired.df == pytest.approx(float(welch.df), rel=1e-9)
    assert result.correlation == pytest.approx(float(np.corrcoef(base, cand)[0, 1]), rel=1e-9)


def test_nearly_identical_runs_far_from_zero_keep_their_paired_standard_error() -> None:
    """Scores around 10⁴ that differ by ~10⁻⁴: var_a + var_b − 2·cov would cancel away the digits, so the
    variance of the differences themselves is used (as scipy's ttest_rel does)."""
    rng = np.random.default_rng(4)
    base = 1e4 + rng.normal(0, 30, 50)
    cand = base + rng.normal(1e-4, 1e-4, 50)
    t = sps.ttest_rel(cand, base)
    d = cand - base
    exact_se = float(np.std(d, ddof=1) / math.sqrt(len(d)))
    whole = paired_difference(base.tolist(), cand.tolist())
    assert whole.paired.se == pytest.approx(exact_se, rel=1e-9)
    assert (whole.paired.low, whole.paired.high) == pytest.approx(tuple(t.confidence_interval(0.95)), rel=1e-9)
    assert whole.correlation == pytest.approx(float(np.corrcoef(base, cand)[0, 1]), rel=1e-12)
    sums = PairedSums()
    for a, b in zip(base.tolist(), cand.tolist()):
        sums.add(a, b)
    assert sums.difference().paired.se == pytest.approx(exact_se, rel=1e-6)


def test_two_pairs_are_enough_and_constant_runs_have_n_minus_1_degrees_of_freedom() -> None:
    two = paired_difference([0.0, 1.0], [1.0, 1.0])
    assert (two.n, two.paired.estimate, two.paired.se, two.paired.df) == (2, 0.5, 0.5, 1)
    assert two.correlation is None  # the candidate is constant
    from_moments = paired_difference_from_moments(2, 0.5, 1.0, 0.5, 0.0, 0.0)
    assert (from_moments.paired.se, from_moments.unpaired.se, from_moments.unpaired.df) == (0.5, 0.5, 1)
    constant = paired_difference_from_moments(4, 1.0, 0.0, 0.0, 0.0, 0.0)
    assert (constant.paired.low, constant.paired.high, constant.paired.df) == (-1.0, -1.0, 3)
    assert (constant.unpaired.low, constant.unpaired.high, constant.unpaired.df) == (-1.0, -1.0, 3)
    assert constant.correlation is None


def test_a_correlation_a_rounding_error_past_one_is_kept_within_minus_one_and_one() -> None:
    assert paired_difference_from_moments(5, 0.0, 0.0, 1.0, 1.0, 1.0 + 1e-12).correlation == 1.0
    assert paired_difference_from_moments(5, 0.0, 0.0, 1.0, 1.0, -1.0 - 1e-12).correlation == -1.0


def test_every_bad_input_error_says_exactly_what_is_wrong() -> None:
    def raises(message: str, call: Any, *args: Any, **kwargs: Any) -> None:
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            call(*args, **kwargs)

    two = "a standard error needs at least two values"
    raises(two, paired_difference, [1.0], [2.0])
    raises(two, paired_difference_from_moments, 1, 0.0, 0.0, 0.0, 0.0, 0.0)
    raises(two, PairedSums().difference)
    raises(two, mean_interval, [1.0])
    raises("paired values: one candidate value per baseline value", paired_difference, [1.0, 2.0], [1.0])
    raises("one cluster label per value", paired_difference, [1.0, 2.0], [1.0, 3.0], clusters=["a"])
    raises("one cluster label per value", mean_interval, [1.0, 2.0], clusters=["a", "b", "c"])
    raises("a clustered standard error needs at least two clusters", mean_interval, [1.0, 2.0], clusters=["a", "a"])
    raises("the effect to detect must be positive", sample_size_for, 0.0, 0.1, 100)
    raises("need 0 <= c <= n and 1 <= k <= n, got n=3, c=4, k=1", pass_at_k, 3, 4, 1)


def test_interval_dict_rounds_to_six_digits_and_clipping_keeps_the_rest() -> None:
    iv = Interval(0.12345678, 0.01234567, -0.1234567, 1.2345678, "t", 0.9, df=7)
    assert iv.to_dict() == {"estimate": 0.123457, "se": 0.012346, "low": -0.123457, "high": 1.234568,
                            "method": "t", "confidence": 0.9}
    assert iv.clipped() == Interval(0.12345678, 0.01234567, 0.0, 1.0, "t", 0.9, None, 7)
    result = paired_difference_from_moments(5, 0.0, 0.1, 1.0, 1.0, 0.12345678)
    assert result.to_dict()["n"] == 5 and result.to_dict()["correlation"] == 0.123457


def test_sample_size_power_and_edges() -> None:
    from statsmodels.stats.power import NormalIndPower

    se, n = 0.02, 100
    needed = NormalIndPower().solve_power(effect_size=0.05 / (se * math.sqrt(n)), nobs1=None, alpha=0.05, power=0.9,
                                          ratio=0)
    assert sample_size_for(0.05, se, n, power=0.9) == math.ceil(needed)
    assert sample_size_for(minimum_detectable_effect(se), se, n) == n  # exactly n, not n + 1
    assert sample_size_for(10.0, se, n) == 1
    assert probability_below(0.3, 0.0, 0.3) == 1.0 and probability_below(0.2, 0.0, 0.3) == 0.0


def test_pairs_added_as_the_same_value_count_once_by_default() -> None:
    sums = PairedSums()
    sums.add_same(1.0)
    sums.add(0.0, 1.0)
    assert (sums.n, sums.sum_a, sums.sum_b) == (2, 1.0, 2.0)


def test_a_mean_from_running_sums_is_scipys_t_interval_with_its_confidence_and_df() -> None:
    values = [0.2, 0.9, 0.4, 0.75, 0.1]
    got = mean_interval_from_sums(len(values), math.fsum(values), math.fsum(v * v for v in values), 0.9)
    sem = sps.sem(values)
    low, high = sps.t.interval(0.9, len(values) - 1, loc=np.mean(values), scale=sem)
    assert (got.method, got.confidence, got.df, got.clusters) == ("t", 0.9, 4, None)
    assert [got.estimate, got.se, got.low, got.high] == pytest.approx([np.mean(values), sem, low, high], abs=1e-12)
    with pytest.raises(ValueError, match=r"^a standard error needs at least two values$"):
        mean_interval_from_sums(1, 0.5, 0.25)
