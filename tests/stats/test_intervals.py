"""Error bars, checked against independent implementations (scipy, statsmodels) on seeded data, and by
simulation: a 95 % interval must cover the true value about 95 % of the time."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.regression.linear_model import OLS
from statsmodels.stats.proportion import proportion_confint

from insideLLMs.stats import (
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
