"""summary.json's rates and means: over the records that have them, never over all records."""

from __future__ import annotations

from insideLLMs.rundir import summarize
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
