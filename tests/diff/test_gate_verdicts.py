"""The CI gate's verdicts in full: every field of each per-group verdict, the lines a user reads when the gate
fails, and the options' defaults; values checked against scipy/statsmodels on the same pairs."""

from __future__ import annotations

import dataclasses
import math
import random
import re
from pathlib import Path
from statistics import NormalDist
from typing import Any, Callable

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from insideLLMs.diff import diff_runs, evaluate_gate
from insideLLMs.errors import UserError
from support.run_dirs import record

MakeRun = Callable[..., Path]
CI_TEST = "paired 95 % interval of the mean difference (t)"
MCNEMAR = "exact McNemar (one-sided binomial on discordant pairs)"


def _mde(se: float) -> float:
    normal = NormalDist()
    return (normal.inv_cdf(0.975) + normal.inv_cdf(0.8)) * se


def _six_digits(verdicts: list[Any]) -> bool:
    """Each number of the verdicts' dicts is rounded to 6 decimals (what a JSON reader sees)."""
    numbers = [v.to_dict()[k] for v in verdicts for k in ("p_value", "adjusted_p", "mde")]
    return all(x == round(x, 6) for x in numbers if x is not None) and any(x != round(x, 5) for x in numbers if x)


def _latency_runs(make_run: MakeRun, n: int = 30) -> tuple[Path, Path, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Two probes scored by a lower-is-better ``latency``: factuality's got slower by ~0.1, logic's barely moved."""
    rng = random.Random(7)
    base, cand, raw = [], [], {}
    for probe, shift in (("factuality", 0.1), ("logic", 0.002)):
        a_s, b_s = [], []
        for i in range(n):
            a = round(rng.uniform(1.0, 2.0), 4)
            b = round(a + shift + rng.gauss(0, 0.05), 4)
            base.append(record(f"{probe}-{i}", probe=probe, scores={"latency": a}))
            cand.append(record(f"{probe}-{i}", probe=probe, scores={"latency": b}, run_id="b"))
            a_s.append(a), b_s.append(b)
        raw[probe] = (np.asarray(a_s), np.asarray(b_s))
    return make_run("base", base), make_run("cand", cand), raw


def _expected_ci_verdict(probe: str, a: np.ndarray, b: np.ndarray, tol: float, lower: bool, adjusted: float | None,
                         passed: bool) -> dict[str, Any]:
    d = b - a
    n = len(d)
    t = sps.ttest_rel(b, a)
    low, high = t.confidence_interval(0.95)
    se = float(np.std(d, ddof=1) / math.sqrt(n))
    # H0: the (higher-is-better) difference is at least −tol
    p = sps.ttest_1samp(-d if lower else d, -tol, alternative="less").pvalue
    detail = (f"Δ {d.mean():+.4g}, 95 % interval [{low:+.4g}, {high:+.4g}] (n={n:,}"
              + (", lower is better" if lower else "") + ")"
              + (f", one-sided p={p:.3g}, Holm-adjusted p={adjusted:.3g}" if adjusted is not None else ""))
    mde = _mde(se)
    return {"model": "dummy", "probe": probe, "gate": "--fail-on-regression-ci", "metric": "latency" if lower else "f1",
            "test": CI_TEST + (", Holm-corrected across 2 group(s)" if adjusted is not None else ""),
            "passed": passed, "detail": detail, "p_value": pytest.approx(round(p, 6), abs=2e-6),
            "adjusted_p": None if adjusted is None else pytest.approx(round(adjusted, 6), abs=2e-6),
            "mde": pytest.approx(round(mde, 6), abs=2e-6), "tolerance": tol,
            "n_needed": max(1, math.ceil(n * (mde / tol) ** 2 - 1e-9)), "underpowered": passed and mde > tol}


def test_a_lower_is_better_regression_under_holm_in_full(make_run: MakeRun) -> None:
    base, cand, raw = _latency_runs(make_run)
    result = diff_runs(base, cand, lower_is_better=frozenset({"latency"}))
    gate = evaluate_gate(result, fail_on_regression_ci={"latency": 0.01}, correction="holm")
    ps = [sps.ttest_1samp(-(raw[p][1] - raw[p][0]), -0.01, alternative="less").pvalue for p in ("factuality", "logic")]
    reject, adjusted, _, _ = multipletests(ps, alpha=0.025, method="holm")
    assert reject.tolist() == [True, False]
    expected = [_expected_ci_verdict(p, *raw[p], 0.01, True, adj, not rej)
                for p, adj, rej in zip(("factuality", "logic"), adjusted.tolist(), reject.tolist())]
    assert [v.to_dict() for v in gate.verdicts] == expected
    assert _six_digits(gate.verdicts)
    assert not gate.passed and gate.correction == "holm"
    assert gate.reasons == [
        f"dummy / factuality: latency regressed: {expected[0]['detail']}; Holm-adjusted p={adjusted[0]:.3g} < 0.025 "
        "for a difference above +0.01 (--fail-on-regression-ci)"]
    assert gate.to_dict()["correction"] == "holm"


def test_a_regression_ci_verdict_without_correction_in_full(make_run: MakeRun) -> None:
    rng = random.Random(3)
    base, cand = [], []
    for i in range(25):
        a = round(rng.random(), 4)
        base.append(record(f"e{i}", scores={"f1": a}))
        cand.append(record(f"e{i}", scores={"f1": round(a - 0.05 + rng.gauss(0, 0.03), 4)}, run_id="b"))
    a = np.asarray([r["scores"]["f1"] for r in base])
    b = np.asarray([r["scores"]["f1"] for r in cand])
    result = diff_runs(make_run("base", base), make_run("cand", cand))
    gate = evaluate_gate(result, fail_on_regression_ci={"f1": 0.02})
    expected = _expected_ci_verdict("factuality", a, b, 0.02, False, None, False)
    assert [v.to_dict() for v in gate.verdicts] == [expected]
    assert _six_digits(gate.verdicts)
    assert gate.reasons == [f"dummy / factuality: f1 regressed: {expected['detail']}; the whole interval lies "
                            "below -0.02 (--fail-on-regression-ci)"]
    assert gate.correction == "none"
    passing = evaluate_gate(result, fail_on_regression_ci={"f1": 0.5}, correction="holm")
    assert passing.passed and passing.reasons == ["--fail-on-regression-ci f1:0.5", "--correction holm"]
    assert passing.correction == "holm" and passing.to_dict()["correction"] == "holm"  # a passing gate names it too
    plain = evaluate_gate(result, fail_on_regression_ci={"f1": 0.5}, fail_on_underpowered=True)
    assert plain.to_dict() | {"verdicts": []} == {
        "passed": True, "reasons": ["--fail-on-regression-ci f1:0.5", "--fail-on-underpowered"], "correction": "none",
        "underpowered": False, "verdicts": []}


def test_groups_without_the_metric_or_its_pairs_say_so_and_the_rest_are_judged(make_run: MakeRun) -> None:
    """alpha: no f1 at all (skipped); beta: f1 on the baseline's side only (no pairs); gamma: f1 missing on
    each side once and no pass/fail verdicts (still judged); later groups are still judged."""
    base = [record(f"a{i}", probe="alpha") for i in range(3)]
    cand = [record(f"a{i}", probe="alpha", run_id="b") for i in range(3)]
    base += [record("b0", probe="beta", scores={"f1": 0.5}), record("b1", probe="beta")]
    cand += [record("b0", probe="beta", run_id="b"), record("b1", probe="beta", run_id="b")]
    for i in range(6):
        base.append(record(f"g{i}", probe="gamma", passed=None, scores={"f1": 0.1 * i} if i != 1 else {}))
        cand.append(record(f"g{i}", probe="gamma", passed=None, scores={"f1": 0.1 * i + 0.01} if i not in (2, 3)
                           else {}, run_id="b"))
    for i in range(4):
        base.append(record(f"d{i}", probe="delta", scores={"f1": 0.5} if i else {}))
        cand.append(record(f"d{i}", probe="delta", scores={"f1": 0.5}, run_id="b"))
    result = diff_runs(make_run("base", base), make_run("cand", cand))
    assert [g.probe for g in result.groups] == ["alpha", "beta", "delta", "gamma"]
    gate = evaluate_gate(result, fail_on_regression_ci={"f1": 0.5})
    assert [(v.probe, v.passed) for v in gate.verdicts] == [("delta", True), ("gamma", True)]
    assert gate.reasons == [
        "dummy / beta: f1: the candidate lacks it on 1 matched example(s) the other side scored (errors?); the "
        "interval would leave them out (--allow-missing to gate on the pairs with both)",
        "dummy / beta: f1: 0 pair(s) with a value on both sides; an interval needs two (--fail-on-regression-ci)",
        "dummy / delta: f1: the baseline lacks it on 1 matched example(s) the other side scored (errors?); the "
        "interval would leave them out (--allow-missing to gate on the pairs with both)",
        "dummy / gamma: f1: the candidate lacks it on 2 and the baseline lacks it on 1 matched example(s) the other "
        "side scored (errors?); the interval would leave them out (--allow-missing to gate on the pairs with both)"]
    assert gate.verdicts[1].detail == "Δ +0.01, 95 % interval [+0.01, +0.01] (n=3)"
    allowed = evaluate_gate(result, fail_on_regression_ci={"f1": 0.5}, allow_missing=True)
    assert allowed.reasons == [
        "dummy / beta: f1: 0 pair(s) with a value on both sides; an interval needs two (--fail-on-regression-ci)"]


def _flips(make_run: MakeRun, groups: dict[str, tuple[int, int]], n: int = 20) -> Any:
    """Per probe (pass→fail flips b, fail→pass flips c) among ``n`` examples."""
    base, cand = [], []
    for probe, (b, c) in groups.items():
        for i in range(n):
            before = not (b <= i < b + c)
            after = not (i < b) if i < b else (True if i < b + c else before)
            base.append(record(f"{probe}-{i}", probe=probe, passed=before, output="4" if before else "5"))
            cand.append(record(f"{probe}-{i}", probe=probe, passed=after, output="4" if after else "5", run_id="b"))
    return diff_runs(make_run("base", base), make_run("cand", cand))


def _mcnemar(probe: str, b: int, c: int, alpha: float, adjusted: float | None = None) -> dict[str, Any]:
    p = sps.binomtest(b, b + c, 0.5, alternative="greater").pvalue if b + c else 1.0
    shown = f"p={p:.3g}" + (f", Holm-adjusted p={adjusted:.3g}" if adjusted is not None else "")
    decided = p if adjusted is None else adjusted
    return {"model": "dummy", "probe": probe, "gate": "--fail-on-significant-regression", "metric": "pass_rate",
            "test": MCNEMAR, "passed": not (b > c and decided < alpha), "detail": f"McNemar b={b} c={c} {shown}",
            "p_value": pytest.approx(round(p, 6), abs=2e-6),
            "adjusted_p": None if adjusted is None else pytest.approx(round(adjusted, 6), abs=2e-6),
            "mde": pytest.approx(0.0, abs=1.0), "tolerance": None, "n_needed": None, "underpowered": False}


def test_mcnemar_verdicts_in_full_at_the_edges_of_alpha(make_run: MakeRun) -> None:
    """Six flips one way and none back: p = 1/64 exactly, which does not fail at alpha = 1/64 (p < alpha fails);
    as many flips each way never fail, even at a lax alpha."""
    result = _flips(make_run, {"factuality": (6, 0), "logic": (5, 5)})
    gate = evaluate_gate(result, fail_on_significant_regression=True, alpha=1 / 64)
    assert [v.to_dict() for v in gate.verdicts] == [_mcnemar("factuality", 6, 0, 1 / 64), _mcnemar("logic", 5, 5, 1)]
    assert gate.passed and gate.reasons == ["--fail-on-significant-regression (alpha=0.015625)"]
    lax = evaluate_gate(result, fail_on_significant_regression=True, alpha=0.7)
    assert [v.passed for v in lax.verdicts] == [False, True]
    assert lax.reasons == ["dummy / factuality: pass rate dropped significantly (McNemar b=6 c=0 p=0.0156 < "
                           "alpha=0.7)"]


def test_no_option_means_the_gate_passes_and_alpha_defaults_to_0_05(make_run: MakeRun) -> None:
    result = _flips(make_run, {"factuality": (3, 0)})
    assert evaluate_gate(result).to_dict() == {"passed": True, "reasons": [], "correction": "none",
                                               "underpowered": False, "verdicts": []}
    gate = evaluate_gate(result, fail_on_significant_regression=True)  # p = 1/8
    assert gate.passed and gate.reasons == ["--fail-on-significant-regression (alpha=0.05)"]
    assert gate.correction == "none"


def test_gate_option_errors_say_what_to_give(make_run: MakeRun) -> None:
    result = _flips(make_run, {"factuality": (3, 0)})

    def raises(message: str, **options: Any) -> None:
        with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
            evaluate_gate(result, **options)

    raises("--fail-on-underpowered judges the power of --fail-on-significant-regression or --fail-on-regression-ci; "
           "give one of them", fail_on_underpowered=True)
    raises("--fail-on-underpowered: no tolerance to compare the minimum detectable effect with; give one as "
           "--fail-on-regression-ci METRIC:TOL (or --tolerance pass_rate=TOL for --fail-on-significant-regression)",
           fail_on_underpowered=True, fail_on_significant_regression=True)
    raises("--fail-on-regression-ci f1: neither run has a metric of that name (scores: correct; pass_rate for the "
           "pass rate)", fail_on_regression_ci={"f1": 0.1})
    unscored = diff_runs(make_run("u1", [record(f"e{i}", scores={}) for i in range(3)]),
                         make_run("u2", [record(f"e{i}", scores={}, run_id="b") for i in range(3)]))
    with pytest.raises(UserError, match=re.escape("(scores: none; pass_rate for the pass rate)") + "$"):
        evaluate_gate(unscored, fail_on_regression_ci={"f1": 0.1})
    result = dataclasses.replace(result, epochs=2)
    raises("--fail-on-significant-regression: McNemar's test needs independent pairs, and these runs ask each "
           "example 2 times; gate with --fail-on-regression-ci pass_rate[:TOL] (its interval is clustered by example)",
           fail_on_significant_regression=True)


def test_changes_count_examples_only_in_the_baseline_unless_missing_ones_are_allowed(make_run: MakeRun) -> None:
    base = [record(f"e{i}") for i in range(4)]
    cand = [record(f"e{i}", run_id="b") for i in range(2)]
    result = diff_runs(make_run("base", base), make_run("cand", cand))
    gate = evaluate_gate(result, fail_on_changes=True)
    assert "2 example(s) not unchanged (--fail-on-changes)" in gate.reasons
    assert evaluate_gate(result, fail_on_changes=True, allow_missing=True).passed
    nothing = diff_runs(make_run("base2", base), make_run("other", [record("x", probe="logic", run_id="b")]))
    gate = evaluate_gate(nothing, fail_on_changes=True, allow_missing=True)
    assert gate.reasons == [
        "no example matched: the baseline has 4 and the candidate 1, none with the same key (different probes or "
        "models? see --match-on); the gate compared nothing", "1 example(s) not unchanged (--fail-on-changes)"]


def test_a_clustered_interval_verdict_names_its_clusters(make_run: MakeRun) -> None:
    from statsmodels.regression.linear_model import OLS

    rng = random.Random(5)
    base, cand, labels = [], [], []
    for c in range(6):
        for q in range(4):
            a = round(rng.random(), 3)
            b = round(a - 0.1 + rng.gauss(0, 0.05), 3)
            base.append(record(f"p{c}-q{q}", scores={"f1": a}) | {"cluster": f"passage-{c}"})
            cand.append(record(f"p{c}-q{q}", scores={"f1": b}, run_id="b") | {"cluster": f"passage-{c}"})
            labels.append(c)
    d = np.asarray([c["scores"]["f1"] - b["scores"]["f1"] for b, c in zip(base, cand)])
    fit = OLS(d, np.ones(len(d))).fit(cov_type="cluster", cov_kwds={"groups": np.asarray(labels)}, use_t=True)
    low, high = fit.conf_int(0.05)[0]
    gate = evaluate_gate(diff_runs(make_run("base", base), make_run("cand", cand)), fail_on_regression_ci={"f1": 0.0})
    assert [v.detail for v in gate.verdicts] == [
        f"Δ {d.mean():+.4g}, 95 % interval [{low:+.4g}, {high:+.4g}] (n=24, clustered: CR1, 6 clusters)"]
    assert not gate.passed
