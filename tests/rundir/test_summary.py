"""summary.json's rates and means: over the records that have them, never over all records."""

from __future__ import annotations

from typing import Any

import pytest

from insideLLMs.rundir import summarize, summary_settings
from support.run_dirs import record


def test_pass_rate_is_over_scored_records_and_means_over_records_with_the_score() -> None:
    records = [
        record("a", passed=True, scores={"f1": 1.0}),
        record("b", passed=False, scores={"f1": 0.5}),
        record("c", passed=None, scores={}),  # no verdict, no score
        record("d", status="error", passed=None, scores={}, error={"type": "ModelError", "message": "x"}),
    ]
    group = summarize(records, [], run_id="r")["groups"][0]
    assert (group["n"], group["scored"], group["passed"]) == (4, 2, 1)
    assert group["pass_rate"] == 0.5
    assert group["scores"] == {"f1": 0.75}
    assert (group["success_rate"], group["error_count"]) == (0.75, 1)
    assert group["status_counts"] == {"error": 1, "success": 3}


def test_a_group_with_nothing_scored_has_no_pass_rate() -> None:
    group = summarize([record("a", passed=None, scores={})], [], run_id="r")["groups"][0]
    assert group["pass_rate"] is None and group["scores"] == {}


def test_every_rate_and_mean_comes_with_its_interval() -> None:
    """Checked against statsmodels (Wilson) and scipy (the standard error of a mean)."""
    import numpy as np
    from scipy import stats as sps
    from statsmodels.stats.proportion import proportion_confint

    f1 = [round(0.1 * (i % 7), 1) for i in range(40)]
    records = [record(f"e{i}", passed=i % 3 != 0, scores={"f1": f1[i], "exact": i % 3 != 0}) for i in range(40)]
    records += [record("err", status="error", passed=None, scores={}, error={"type": "ModelError", "message": "x"})]
    group = summarize(records, [], run_id="r")["groups"][0]
    intervals = group["intervals"]
    assert intervals["confidence"] == 0.95
    for name, (k, n) in {"pass_rate": (26, 40), "success_rate": (40, 41)}.items():
        low, high = proportion_confint(k, n, method="wilson")
        assert (intervals[name]["low"], intervals[name]["high"]) == (round(low, 6), round(high, 6)), name
        assert intervals[name]["method"] == "wilson"
    assert intervals["scores"]["exact"]["method"] == "wilson"  # a boolean score is a proportion
    f1_interval = intervals["scores"]["f1"]
    assert f1_interval["method"] == "t"
    assert f1_interval["se"] == round(float(sps.sem(f1)), 6)
    low, high = sps.t.interval(0.95, 39, loc=float(np.mean(f1)), scale=float(sps.sem(f1)))
    assert (f1_interval["low"], f1_interval["high"]) == (round(low, 6), round(high, 6))
    assert group["scores"]["f1"] == round(float(np.mean(f1)), 6)


def test_epochs_are_reduced_per_example_before_the_mean_and_its_interval() -> None:
    """Two epochs of three examples: pass rate and score are means of the per-example means, their intervals
    Student's t over the three examples (scipy), and the within-example variance is each example's epoch variance
    (n − 1) averaged."""
    import numpy
    from scipy import stats as sps

    epochs = {"a": [(True, 1.0), (False, 0.5)], "b": [(True, 1.0), (True, 0.75)], "c": [(False, 0.0), (False, 0.25)]}
    records = []
    for example_id, runs in epochs.items():
        for epoch, (passed, f1) in enumerate(runs):
            records.append(record(example_id, passed=passed, scores={"f1": f1}) | {"epoch": epoch})
    (group,) = summarize(records, epochs=2)["groups"]

    per_example = {name: numpy.array([numpy.mean([run[i] for run in runs]) for runs in epochs.values()], float)
                   for i, name in enumerate(("pass_rate", "f1"))}
    assert (group["n"], group["scored"], group["passed"]) == (6, 3, 1.5)
    assert group["pass_rate"] == 0.5 and group["scores"] == {"f1": round(per_example["f1"].mean(), 6)}
    for name, got in (("pass_rate", group["intervals"]["pass_rate"]), ("f1", group["intervals"]["scores"]["f1"])):
        values = per_example[name]
        low, high = sps.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=sps.sem(values))
        if name == "pass_rate":  # a rate's interval stays within [0, 1]
            low, high = max(low, 0.0), min(high, 1.0)
        assert got == {"se": round(sps.sem(values), 6), "low": round(low, 6), "high": round(high, 6), "method": "t"}
    assert group["epochs"] == {
        "k": 2, "examples": 3, "reducers": {"f1": "mean", "pass_rate": "mean"},
        "within_variance": {
            name: round(numpy.mean([numpy.var([run[i] for run in runs], ddof=1) for runs in epochs.values()]), 6)
            for i, name in enumerate(("pass_rate", "f1"))},
    }


#: example -> each epoch's (passed, f1, exact), None for a request that failed; ``f1`` is a numeric score whose
#: epochs agree on 0 or 1, ``exact`` a boolean one whose epochs agree
TWO_EPOCHS: dict[str, list[tuple[bool, float, bool] | None]] = {
    "a": [(True, 1.0, True), (True, 1.0, True)],
    "b": [(True, 0.0, False), (False, 0.0, False)],
    "c": [(False, 1.0, True), (True, 1.0, True)],
    "d": [(False, 1.0, True), (False, 1.0, True)],
    "e": [None, (False, 0.0, False)],
}


def _two_epoch_records() -> list[dict[str, Any]]:
    records = []
    for example_id, runs in TWO_EPOCHS.items():
        for epoch, run in enumerate(runs):
            if run is None:
                rec = record(example_id, status="error", passed=None, scores={},
                             error={"type": "ModelError", "message": "x"})
            else:
                rec = record(example_id, passed=run[0], scores={"f1": run[1], "exact": run[2]})
            records.append(rec | {"epoch": epoch})
    return records


def test_epochs_keep_a_numeric_score_a_mean_and_a_boolean_score_a_proportion() -> None:
    """Worked by hand (t quantiles from scipy, Wilson from statsmodels). Per example the passes reduce to
    1, ½, ½, 0, 0 (fractions summed with the whole verdicts); ``f1`` reduces to 1, 0, 1, 1, 0 and stays a numeric
    mean (t interval, not clipped), ``exact`` to the same values as booleans, a proportion (Wilson). The success rate
    counts the ten requests, clustered by example: cluster sums 2, 2, 2, 2, 1 around 0.9 give
    se = √(5/4 · (4 · 0.2² + 0.8²)) / 10 = 0.1."""
    from scipy import stats as sps
    from statsmodels.stats.proportion import proportion_confint

    (group,) = summarize(_two_epoch_records(), epochs=2)["groups"]
    assert (group["n"], group["scored"], group["passed"], group["pass_rate"]) == (10, 5, 2.0, 0.4)
    assert group["scores"] == {"exact": 0.6, "f1": 0.6}

    def t_interval(mean: float, se: float, df: int, clip: bool) -> dict[str, Any]:
        half = float(sps.t.ppf(0.975, df)) * se
        low, high = (max(0.0, mean - half), min(1.0, mean + half)) if clip else (mean - half, mean + half)
        return {"se": round(se, 6), "low": round(low, 6), "high": round(high, 6), "method": "t"}

    wilson = proportion_confint(3, 5, method="wilson")
    assert group["intervals"] == {
        "confidence": 0.95,
        "success_rate": t_interval(0.9, 0.1, 4, True) | {"method": "cluster", "clusters": 5},
        # passes 1, ½, ½, 0, 0: Σ(x − 0.4)² = 0.7, se = √(0.7 / 4 / 5)
        "pass_rate": t_interval(0.4, (0.7 / 4 / 5) ** 0.5, 4, True),
        "scores": {
            # 1, 0, 1, 1, 0: Σ(x − 0.6)² = 1.2, se = √(1.2 / 4 / 5)
            "f1": t_interval(0.6, (1.2 / 4 / 5) ** 0.5, 4, False),
            "exact": {"se": round((0.6 * 0.4 / 5) ** 0.5, 6), "low": round(wilson[0], 6),
                      "high": round(wilson[1], 6), "method": "wilson"},
        },
    }
    assert group["intervals"]["scores"]["f1"]["low"] < 0  # a score's mean is not a rate: not kept inside [0, 1]
    # within-example variances: passes 0, ½, ½, 0 (e has one epoch with a verdict); f1 and exact agree everywhere
    assert group["epochs"] == {"k": 2, "examples": 5, "reducers": {"exact": "mean", "f1": "mean", "pass_rate": "mean"},
                               "within_variance": {"exact": 0.0, "f1": 0.0, "pass_rate": 0.25}}


def test_one_reducer_name_reduces_every_metric() -> None:
    """``reducer="max"``: an example passes when one epoch passed (a, b, c of five), a whole count with Wilson."""
    (group,) = summarize(_two_epoch_records(), epochs=2, reducer="max")["groups"]
    assert (group["scored"], group["passed"], group["pass_rate"]) == (5, 3, 0.6)
    assert group["intervals"]["pass_rate"]["method"] == "wilson"
    assert group["epochs"]["reducers"] == {"exact": "max", "f1": "max", "pass_rate": "max"}


@pytest.mark.parametrize("reducer", ["pass_at_3", {"pass_rate": "pass_at_3"}])
def test_a_pass_at_k_reducer_needs_k_epochs(reducer: str | dict[str, str]) -> None:
    with pytest.raises(ValueError, match="^reducer 'pass_at_3' needs at least 3 epochs, the run has 2$"):
        summarize(_two_epoch_records(), epochs=2, reducer=reducer)


def test_summary_settings_are_the_manifests_epochs_reducer_and_prices() -> None:
    prices = {"gpt-a": {"input": 2.0, "output": 8.0, "source": "table"}}
    manifest = {"run_id": "r", "epochs": 3, "reducer": {"pass_rate": "all"}, "pricing": {"models": prices}}
    assert summary_settings(manifest) == {"epochs": 3, "reducer": {"pass_rate": "all"}, "prices": prices}
    assert summary_settings({"run_id": "r"}) == {"epochs": None, "reducer": None, "prices": None}


def _epochs(example: str, passes: list[bool], **scores: list[float]) -> list[dict[str, Any]]:
    out = []
    for epoch, passed in enumerate(passes):
        rec = record(example, passed=passed, scores={name: values[epoch] for name, values in scores.items()})
        out.append(rec | {"epoch": epoch})
    return out


def test_latency_is_rounded_to_the_microsecond_and_a_group_without_timings_has_none() -> None:
    from support.run_dirs import timing

    timed = [record(e, model="timed") for e in ("a", "b", "c")]
    untimed = record("a", model="untimed")
    latencies = [1.23456, 2.34567, 3.45678]
    summary = summarize(timed + [untimed], [timing(r, ms) for r, ms in zip(timed, latencies)], run_id="r")
    latency = summary["volatile"]["latency_ms"]
    # nearest rank: p50 is the 2nd of 3, p95 the 3rd; the mean is 7.03701 / 3
    assert latency["timed/factuality"] == {"p50": 2.346, "p95": 3.457, "mean": 2.346}
    assert latency["untimed/factuality"] == {"p50": None, "p95": None, "mean": None}


def test_totals_keep_what_any_group_has_numeric_scores_and_judges() -> None:
    """The totals of a group with fractional ``f1`` scores and judge verdicts, then one with neither."""
    first = [record(e, model="m1", scores={"f1": f1}) for e, f1 in (("a", 0.5), ("b", 0.25), ("c", 1.0))]
    for rec in first:
        rec["judge"] = {"judge": {"model": "j", "grade": "A", "usage": {"prompt_tokens": 7, "completion_tokens": 1}}}
    second = [record(e, model="m2", scores={}) for e in ("a", "b")]
    totals = summarize(first + second, run_id="r")["totals"]
    assert totals["intervals"]["scores"]["f1"]["method"] == "t"  # a mean of fractions, not a proportion
    assert totals["judge_tokens"] == {"prompt": 21, "completion": 3}


def test_a_fractional_pass_count_is_rounded_and_two_examples_have_an_interval_one_has_none() -> None:
    """Three epochs reduced by the mean: example a passed 1 of 3 (1/3), b 2 of 3."""
    one = summarize(_epochs("a", [True, False, False], f1=[0.5, 0.25, 0.0]), run_id="r")["groups"][0]
    assert (one["passed"], one["scored"]) == (0.333333, 1)
    assert "pass_rate" not in one["intervals"] and "f1" not in one["intervals"]["scores"]
    two = summarize(_epochs("a", [True, False, False], f1=[0.5, 0.25, 0.0])
                    + _epochs("b", [True, True, False], f1=[1.0, 0.5, 0.75]), run_id="r")["groups"][0]
    assert (two["passed"], two["scored"]) == (1.0, 2)
    assert two["intervals"]["pass_rate"]["method"] == "t" and two["intervals"]["scores"]["f1"]["method"] == "t"


def test_a_reducer_given_without_the_epoch_count_is_still_applied() -> None:
    """``summarize(records, reducer=...)`` with k taken from the records (`insidellms report` on an old manifest)."""
    records = _epochs("a", [True, False, False]) + _epochs("b", [True, True, False])
    group = summarize(records, run_id="r", reducer="max")["groups"][0]
    assert group["epochs"]["reducers"]["pass_rate"] == "max" and group["epochs"]["k"] == 3
    assert (group["passed"], group["pass_rate"]) == (2, 1.0)


def test_totals_of_fractional_passes_stay_fractional_when_a_later_group_has_no_verdicts() -> None:
    """Epochs reduced by the mean make pass counts fractions; a group whose every request failed has none."""
    answered = _epochs("a", [True, False, False]) + _epochs("b", [True, True, False]) + _epochs("c", [True] * 3)
    failed = [record(e, model="down", status="error", passed=None, scores={}, output=None,
                     error={"type": "ModelError", "message": "x"}) | {"epoch": epoch}
              for e in ("a", "b") for epoch in range(3)]
    totals = summarize(answered + failed, run_id="r")["totals"]
    assert (totals["passed"], totals["scored"]) == (2.0, 3)
    assert totals["intervals"]["pass_rate"]["method"] == "t"
