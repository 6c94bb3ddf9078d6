"""Clustered error bars (``dataset.cluster``): the running per-cluster sums checked against statsmodels'
cluster-robust standard errors, in summary.json and in `insidellms diff`, and by seeded simulation."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from statsmodels.regression.linear_model import OLS
from statsmodels.stats.proportion import proportion_confint

from insideLLMs.diff import diff_runs
from insideLLMs.rundir import summarize
from insideLLMs.stats import ClusterSums, mean_interval, paired_difference
from support.cli import run_cli
from support.run_dirs import record

def statsmodels_fit(ys: Any, groups: Any) -> tuple[float, float, float]:
    """(CR1 standard error of the mean, 95 % interval low, high): intercept-only OLS, ``cov_type="cluster"``
    with ``use_t=True``, whose interval is t on G − 1 degrees of freedom for G clusters."""
    fit = OLS(np.asarray(ys, dtype=float), np.ones(len(ys))).fit(cov_type="cluster", cov_kwds={"groups": groups},
                                                                  use_t=True)
    low, high = fit.conf_int(0.05)[0]
    return float(fit.bse[0]), float(low), float(high)


def statsmodels_se(ys: Any, groups: Any) -> float:
    return statsmodels_fit(ys, groups)[0]


def test_running_cluster_sums_match_statsmodels_with_unlabelled_values_as_their_own_clusters() -> None:
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(25), rng.integers(1, 9, 25))
    ys = rng.normal(0, 1, 25)[labels] + rng.normal(0, 0.7, len(labels))
    sums = ClusterSums()
    # the last 30 values carry no cluster: statsmodels sees each as a cluster of one
    groups = labels.copy()
    groups[-30:] = 1000 + np.arange(30)
    for label, y in zip(labels[:-30].tolist(), ys[:-30].tolist()):
        sums.add(f"c{label}", y)
    se, g = sums.standard_error(len(ys), float(ys.sum()), float((ys * ys).sum()))
    assert se == pytest.approx(statsmodels_se(ys, groups), rel=1e-9)
    assert g == len(set(groups.tolist()))
    merged = ClusterSums()
    half = ClusterSums()
    for label, y in zip(labels[:50].tolist(), ys[:50].tolist()):
        merged.add(f"c{label}", y)
    for label, y in zip(labels[50:-30].tolist(), ys[50:-30].tolist()):
        half.add(f"c{label}", y)
    merged.merge(half)
    assert merged.standard_error(len(ys), float(ys.sum()), float((ys * ys).sum()))[0] == pytest.approx(se, rel=1e-9)


def test_equal_values_added_with_a_count_are_that_many_values() -> None:
    """``add(label, value, count)`` is ``count`` values in the cluster: the standard error, with unlabelled values
    beside them (their own clusters), is statsmodels' on the values written out."""
    labelled = [("a", 2.0, 3), ("a", 0.5, 1), ("b", -1.0, 2), ("c", 1.5, 4)]
    singles = [0.25, 3.0, -0.5]
    ys = [v for _, v, count in labelled for _ in range(count)] + singles
    groups = [label for label, _, count in labelled for _ in range(count)] + ["s0", "s1", "s2"]
    sums = ClusterSums()
    for label, value, count in labelled:
        sums.add(label, value, count)
    se, g = sums.standard_error(len(ys), sum(ys), sum(y * y for y in ys))
    assert se == pytest.approx(statsmodels_se(ys, groups), rel=1e-12)
    assert g == 6


def test_a_clustered_paired_difference_with_unchanged_pairs_matches_statsmodels() -> None:
    """Pairs whose two values are equal (a difference of 0) count in their cluster like any other."""
    baseline = [1.0, 0.0, 0.5, 1.0, 0.25, 0.75, 0.0]
    candidate = [1.0, 1.0, 0.5, 0.0, 0.25, 1.0, 0.0]
    clusters = ["p", "p", "q", "q", "r", "r", "s"]
    d = paired_difference(baseline, candidate, clusters=clusters)
    se, low, high = statsmodels_fit([c - b for b, c in zip(baseline, candidate)], clusters)
    assert (d.paired.method, d.paired.clusters, d.paired.estimate) == ("paired-cluster", 4, pytest.approx(0.25 / 7))
    assert (d.paired.se, d.paired.low, d.paired.high) == pytest.approx((se, low, high), rel=1e-9)


def test_a_clustered_interval_names_its_method_and_clusters() -> None:
    iv = mean_interval([0.0, 1.0, 1.0, 0.0, 1.0], clusters=["a", "a", "b", "b", "c"])
    assert (iv.method, iv.clusters, iv.label) == ("cluster", 3, "cluster (CR1, 3 clusters)")
    assert iv.to_dict()["clusters"] == 3
    assert "clusters" not in mean_interval([0.0, 1.0]).to_dict()


def _clustered_data(rng: np.random.Generator, clusters: int, size: int, p: float = 0.6,
                    spread: float = 1.2) -> tuple[np.ndarray, np.ndarray]:
    """Pass/fail values sharing a cluster effect (a passage that is hard for every question on it)."""
    labels = np.repeat(np.arange(clusters), size)
    logit = np.log(p / (1 - p)) + rng.normal(0, spread, clusters)[labels]
    return (rng.random(len(labels)) < 1 / (1 + np.exp(-logit))).astype(float), labels


@pytest.mark.slow
def test_clustered_intervals_cover_the_truth_and_naive_ones_do_not() -> None:
    """2,000 seeded simulated evals of 80 passages × 4 questions with a strong passage effect: the clustered
    95 % interval of the pass rate covers the true rate 93–97 % of the time, Wilson's far less; and the same for
    the paired difference of two runs whose change is itself shared within a passage."""
    rng = np.random.default_rng(12)
    trials, clusters, size = 2000, 80, 4
    # the true pass rate of this mixture, by a large sample of passages
    truth = float(np.mean(1 / (1 + np.exp(-(np.log(0.6 / 0.4) + rng.normal(0, 1.2, 2_000_000))))))
    clustered = naive = paired_clustered = paired_naive = 0
    for _ in range(trials):
        ys, labels = _clustered_data(rng, clusters, size)
        sums = ClusterSums()
        for label, y in zip(labels.tolist(), ys.tolist()):
            sums.add(label, y)
        iv = sums.interval(len(ys), float(ys.sum()), float(ys.sum()))
        clustered += iv.low <= truth <= iv.high
        low, high = proportion_confint(int(ys.sum()), len(ys), method="wilson")
        naive += low <= truth <= high
        # paired: the candidate's change per example is mostly a per-passage shift (true mean difference 0)
        base = rng.normal(0, 1, len(labels))
        cand = base + rng.normal(0, 0.5, clusters)[labels] + rng.normal(0, 0.2, len(labels))
        d = paired_difference(base.tolist(), cand.tolist(), clusters=labels.tolist())
        paired_clustered += d.paired.low <= 0.0 <= d.paired.high
        plain = paired_difference(base.tolist(), cand.tolist()).paired
        paired_naive += plain.low <= 0.0 <= plain.high
    assert 0.93 <= clustered / trials <= 0.97, clustered / trials
    assert 0.93 <= paired_clustered / trials <= 0.97, paired_clustered / trials
    assert naive / trials < 0.90, naive / trials  # measurably worse: it ignores that passages share difficulty
    assert paired_naive / trials < 0.80, paired_naive / trials


# --- summary.json ---------------------------------------------------------------------------------------


def clustered_records(seed: int = 5, clusters: int = 12, run_id: str = "run-a") -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for c in range(clusters):
        hard = rng.random() < 0.4
        for q in range(rng.randint(1, 6)):
            ok = rng.random() < (0.3 if hard else 0.85)
            rec = record(f"p{c:02d}-q{q}", passed=ok, scores={"correct": ok, "f1": round(rng.random(), 3)},
                         run_id=run_id)
            rec["cluster"] = f"passage-{c}"
            out.append(rec)
    return out


def test_summary_gives_every_rate_and_mean_its_clustered_interval() -> None:
    records = clustered_records()
    summary = summarize(records)
    group = summary["groups"][0]["intervals"]
    labels = [r["cluster"] for r in records]
    passed = [float(r["passed"]) for r in records]
    f1 = [r["scores"]["f1"] for r in records]
    for shown, ys, rate in ((group["pass_rate"], passed, True), (group["scores"]["correct"], passed, True),
                            (group["scores"]["f1"], f1, False)):
        se, low, high = statsmodels_fit(ys, labels)
        assert shown["method"] == "cluster" and shown["clusters"] == 12
        assert shown["se"] == pytest.approx(se, abs=1e-6)
        if rate:
            low, high = max(0.0, low), min(1.0, high)
        assert (shown["low"], shown["high"]) == pytest.approx((low, high), abs=1e-6)
    assert group["success_rate"] == {"se": 0.0, "low": 1.0, "high": 1.0, "method": "cluster", "clusters": 12}
    # deterministic bytes; totals cluster too
    assert json.dumps(summarize(records), sort_keys=True) == json.dumps(summary, sort_keys=True)
    assert summary["totals"]["intervals"]["pass_rate"]["clusters"] == 12


def test_summary_without_clusters_is_unchanged_and_one_cluster_has_no_interval() -> None:
    records = clustered_records()
    plain = [{k: v for k, v in r.items() if k != "cluster"} for r in records]
    assert summarize(plain)["groups"][0]["intervals"]["pass_rate"]["method"] == "wilson"
    one = [dict(r, cluster="same") for r in records]
    intervals = summarize(one)["groups"][0]["intervals"]
    assert "pass_rate" not in intervals and "f1" not in intervals["scores"]


def test_epochs_cluster_examples_by_their_cluster_and_requests_by_theirs() -> None:
    """Two epochs per example, three passages. The pass rate and ``f1`` are clustered over the examples (each one
    its epochs' mean, in its passage), the success rate over the requests (each in its own record's passage)."""
    #: passage -> example -> each epoch's (passed, f1), None for a request that failed
    passages: dict[str, dict[str, list[tuple[bool, float] | None]]] = {
        "p0": {"a": [(True, 0.8), (True, 0.6)], "b": [(False, 0.2), (True, 0.4)]},
        "p1": {"c": [(False, 0.1), (False, 0.3)], "d": [None, (True, 0.9)]},
        "p2": {"e": [(True, 1.0), (False, 0.5)], "f": [(True, 0.7), (True, 0.7)], "g": [(False, 0.0), (True, 0.6)]},
    }
    records, successes, request_labels = [], [], []
    passes, f1s, example_labels = [], [], []
    for passage, examples in passages.items():
        for example_id, runs in examples.items():
            for epoch, run in enumerate(runs):
                if run is None:
                    rec = record(example_id, status="error", passed=None, scores={},
                                 error={"type": "ModelError", "message": "x"})
                else:
                    rec = record(example_id, passed=run[0], scores={"f1": run[1]})
                records.append(rec | {"epoch": epoch, "cluster": passage})
                successes.append(float(run is not None))
                request_labels.append(passage)
            answered = [run for run in runs if run is not None]
            passes.append(float(np.mean([run[0] for run in answered])))
            f1s.append(float(np.mean([run[1] for run in answered])))
            example_labels.append(passage)
    (group,) = summarize(records, epochs=2)["groups"]
    assert (group["passed"], group["pass_rate"]) == (4.5, round(4.5 / 7, 6))

    def clustered(ys: list[float], labels: list[str], rate: bool) -> dict[str, Any]:
        se, low, high = statsmodels_fit(ys, labels)
        if rate:
            low, high = max(0.0, low), min(1.0, high)
        return {"se": pytest.approx(se, abs=1e-6), "low": pytest.approx(low, abs=1e-6),
                "high": pytest.approx(high, abs=1e-6), "method": "cluster", "clusters": 3}

    assert group["intervals"] == {
        "confidence": 0.95,
        "success_rate": clustered(successes, request_labels, True),
        "pass_rate": clustered(passes, example_labels, True),
        "scores": {"f1": clustered(f1s, example_labels, False)},
    }
    assert group["intervals"]["success_rate"]["high"] == 1.0  # a rate's interval is kept inside [0, 1]


# --- insidellms diff ------------------------------------------------------------------------------------


def test_diff_paired_difference_is_clustered_and_matches_statsmodels(
        make_run: Callable[..., Path]) -> None:
    base = clustered_records(seed=8, clusters=15)
    rng = random.Random(9)
    cand = []
    for rec in base:
        c = json.loads(json.dumps(rec))
        c["run_id"] = "run-b"
        if rng.random() < 0.25:  # some answers change: verdict flips and f1 moves
            c["passed"] = not rec["passed"]
            c["scores"] = {"correct": c["passed"], "f1": round(min(1.0, rec["scores"]["f1"] + 0.2), 3)}
            c["output"] = "5"
        cand.append(c)
    result = diff_runs(make_run("base", base), make_run("cand", cand))
    group = result.to_dict()["groups"][0]["paired"]
    labels = [r["cluster"] for r in base]
    for metric, get in (("pass_rate", lambda r: float(r["passed"])), ("f1", lambda r: r["scores"]["f1"])):
        d = np.array([get(c) - get(b) for b, c in zip(base, cand)])
        se, low, high = statsmodels_fit(d, labels)
        got = group[metric]["paired"]
        assert (got["method"], got["clusters"]) == ("paired-cluster", 15)
        assert got["se"] == pytest.approx(se, abs=1e-6)
        assert (got["low"], got["high"]) == pytest.approx((low, high), abs=1e-6)
    assert result.counts["changed"] == 0  # the cluster field is not a change


def test_diff_pairs_without_a_cluster_are_clusters_of_one(make_run: Callable[..., Path]) -> None:
    """Records of which only some carry a cluster: each pair without one is its own cluster, as statsmodels sees it
    with a label of its own."""
    base = clustered_records(seed=8, clusters=6)
    for rec in base[::3]:
        del rec["cluster"]
    rng = random.Random(4)
    cand = []
    for rec in base:
        c = json.loads(json.dumps(rec)) | {"run_id": "run-b"}
        if rng.random() < 0.4:
            c["passed"] = not rec["passed"]
            c["scores"] = {"correct": c["passed"], "f1": rec["scores"]["f1"]}
            c["output"] = "5"
        cand.append(c)
    group = diff_runs(make_run("base", base), make_run("cand", cand)).to_dict()["groups"][0]["paired"]
    labels = [r.get("cluster", f"own-{i}") for i, r in enumerate(base)]
    d = [float(c["passed"]) - float(b["passed"]) for b, c in zip(base, cand)]
    se, low, high = statsmodels_fit(d, labels)
    got = group["pass_rate"]["paired"]
    assert (got["method"], got["clusters"]) == ("paired-cluster", len(set(labels)))
    assert (got["se"], got["low"], got["high"]) == pytest.approx((se, low, high), abs=1e-6)


def test_a_cluster_missing_on_one_side_still_pairs_and_clusters(make_run: Callable[..., Path]) -> None:
    """A baseline run before ``dataset.cluster`` was set: its pairs are identical, the candidate's clusters count."""
    cand = clustered_records(run_id="run-b")
    base = [{k: v for k, v in dict(r, run_id="run-a").items() if k != "cluster"} for r in cand]
    result = diff_runs(make_run("base", base), make_run("cand", cand))
    assert result.counts["unchanged"] == len(cand)
    paired = result.to_dict()["groups"][0]["paired"]["pass_rate"]["paired"]
    assert (paired["method"], paired["clusters"], paired["se"]) == ("paired-cluster", 12, 0.0)


# --- dataset.cluster, end to end -------------------------------------------------------------------------


def _write_questions(folder: Path, with_passage: Callable[[int], bool] = lambda i: True) -> None:
    lines = []
    for i in range(12):
        row: dict[str, Any] = {"id": f"q{i:02d}", "prompt": f"Repeat after me: item{i}" if i % 3 else f"Which {i}?",
                               "answer": f"item{i}"}
        if with_passage(i):
            row["passage"] = f"p{i // 4}"
        lines.append(json.dumps(row) + "\n")
    (folder / "q.jsonl").write_text("".join(lines), encoding="utf-8")


def test_a_row_without_the_cluster_field_is_one_line_and_nothing_is_sent(tmp_path: Path,
                                                                          fake_llm_server: Any) -> None:
    _write_questions(tmp_path, with_passage=lambda i: i != 5)
    (tmp_path / "eval.yaml").write_text(
        f"model: {{type: openai, args: {{model_name: m, api_key: k, base_url: '{fake_llm_server.openai_base_url}'}}}}\n"
        "probe: {type: factuality, args: {instruction: false}}\n"
        "dataset: {format: jsonl, path: q.jsonl, cluster: passage}\n", encoding="utf-8")
    result = run_cli("run", "eval.yaml", "--no-track", "--run-dir", "out", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == ("error: q.jsonl:6: example 'q05' has no field 'passage' "
                                     "(dataset.cluster); give every row a string or integer there, or remove "
                                     "dataset.cluster")
    assert fake_llm_server.stats.requests == 0 and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_the_cluster_reaches_records_manifest_and_summary_and_only_when_named(tmp_path: Path) -> None:
    _write_questions(tmp_path)
    config = "model: {type: dummy, args: {model_name: echo}}\nprobe: {type: factuality, args: {instruction: false}}\n"
    (tmp_path / "plain.yaml").write_text(config + "dataset: {format: jsonl, path: q.jsonl}\n", encoding="utf-8")
    (tmp_path / "clustered.yaml").write_text(
        config + "dataset: {format: jsonl, path: q.jsonl, cluster: passage}\n", encoding="utf-8")
    for name in ("plain", "clustered"):
        assert run_cli("run", f"{name}.yaml", "--no-track", "--run-dir", name, cwd=tmp_path).returncode == 0
    plain = [json.loads(line) for line in (tmp_path / "plain/records.jsonl").read_text().splitlines()]
    clustered = [json.loads(line) for line in (tmp_path / "clustered/records.jsonl").read_text().splitlines()]
    assert all("cluster" not in r for r in plain)
    assert [r["cluster"] for r in clustered] == [f"p{i // 4}" for i in range(12)]
    assert plain[0]["run_id"] != clustered[0]["run_id"]  # the records differ, so does the run id
    manifest = json.loads((tmp_path / "clustered/manifest.json").read_text())
    assert manifest["datasets"][0]["cluster"] == "passage"
    assert "cluster" not in json.loads((tmp_path / "plain/manifest.json").read_text())["datasets"][0]
    summary = json.loads((tmp_path / "clustered/summary.json").read_text())
    assert summary["groups"][0]["intervals"]["pass_rate"]["clusters"] == 3
    # the same examples, the same answers: diff sees no change, and its intervals are clustered
    diff = run_cli("diff", "plain", "clustered", "--format", "json", cwd=tmp_path)
    out = json.loads(diff.stdout)
    assert out["counts"]["unchanged"] == 12
    assert out["groups"][0]["paired"]["pass_rate"]["paired"]["clusters"] == 3


def test_a_clustered_success_rate_counts_each_failed_request_in_its_cluster() -> None:
    """One epoch: the success rate over the requests, errors as zeros, clustered by each record's cluster."""
    records = clustered_records()
    for index in (0, 1, 7, 30):
        records[index] = record(records[index]["example_id"], status="error", passed=None, scores={}, output=None,
                                error={"type": "ModelError", "message": "x"}) | {"cluster": records[index]["cluster"]}
    shown = summarize(records)["groups"][0]["intervals"]["success_rate"]
    se, low, high = statsmodels_fit([float(r["status"] == "success") for r in records], [r["cluster"] for r in records])
    assert (shown["method"], shown["clusters"]) == ("cluster", 12)
    assert (shown["se"], shown["low"], shown["high"]) == pytest.approx((se, max(0.0, low), min(1.0, high)), abs=1e-6)
