"""`diff_runs(...).to_dict()` (the diff.json payload) pinned field by field on small hand-worked runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from scipy import stats
from statsmodels.regression.linear_model import OLS

from insideLLMs.diff import diff_runs
from support.diff_expectations import NO_JUDGE, SUFFIXES
from support.run_dirs import record

MakeRun = Callable[..., Path]


def side(line: int, passed: bool, scores: dict[str, Any], output: str) -> dict[str, Any]:
    return {"line": line, "status": "success", "passed": passed, "scores": scores, "output": output, "error": None}


def interval(estimate: float, se: float, low: float, high: float, method: str) -> dict[str, Any]:
    return {"estimate": estimate, "se": se, "low": low, "high": high, "method": method, "confidence": 0.95}


@pytest.fixture
def four_pairs(make_run: MakeRun) -> tuple[Path, Path]:
    """e0, e1 identical; e2 regresses (f1 1 → 0); e3 improves (f1 0.25 → 0.75); e4 only in the candidate. The
    candidate's probe is version 2 on the changed pairs."""
    base = [
        record("e0", scores={"correct": True, "f1": 0.5}),
        record("e1", scores={"correct": True, "f1": 1.0}),
        record("e2", scores={"correct": True, "f1": 1.0}),
        record("e3", passed=False, output="5", scores={"correct": False, "f1": 0.25}),
    ]
    cand = [
        record("e0", scores={"correct": True, "f1": 0.5}, run_id="run-b"),
        record("e1", scores={"correct": True, "f1": 1.0}, run_id="run-b"),
        record("e2", output="5", passed=False, scores={"correct": False, "f1": 0.0}, run_id="run-b"),
        record("e3", scores={"correct": True, "f1": 0.75}, run_id="run-b"),
        record("e4", run_id="run-b"),
    ]
    for r in cand[2:4]:
        r["probe"]["version"] = "2"
    return make_run("base", base), make_run("cand", cand)


def test_diff_json_of_a_small_run_is_the_hand_worked_payload(four_pairs: tuple[Path, Path]) -> None:
    out = diff_runs(*four_pairs, tolerances={"f1": 0.1}).to_dict()
    counts = {
        "regression": 1,
        "improvement": 1,
        "changed": 0,
        "only-in-baseline": 0,
        "only-in-candidate": 1,
        "unchanged": 2,
    }
    # pass rate (= correct): baseline 1,1,1,0, candidate 1,1,0,1: differences 0,0,-1,1 (sd √(2/3), se /2)
    # paired t(3) interval; unpaired: se √(.25/4 + .25/4), Welch df 6; correlation -1/3
    verdict = {
        "n": 4,
        "candidate_lacks": 0,
        "baseline_lacks": 0,
        "paired": interval(0.0, 0.408248, -1.299228, 1.299228, "paired"),
        "unpaired": interval(0.0, 0.353553, -0.865114, 0.865114, "unpaired"),
        "correlation": -0.333333,
        "baseline_mean": 0.75,
        "candidate_mean": 0.75,
        "mde": 1.143742,  # se × (z.975 + z.8)
    }
    # f1: differences 0, 0, -1, 0.5: mean -0.125, Σ(d - mean)² = 1.1875, sd √(1.1875/3), se sd/2
    f1 = {
        "n": 4,
        "candidate_lacks": 0,
        "baseline_lacks": 0,
        "paired": interval(-0.125, 0.314576, -1.126123, 0.876123, "paired"),
        "unpaired": interval(-0.125, 0.284129, -0.823054, 0.573054, "unpaired"),
        "correlation": -0.22771,
        "baseline_mean": 0.6875,
        "candidate_mean": 0.5625,
        "mde": 0.881313,
        "tolerance": 0.1,
        "n_needed": 311,  # ((z.975 + z.8) × sd / 0.1)² = 310.7
    }
    tokens = {
        "baseline": {"prompt_tokens": 20, "completion_tokens": 4, **NO_JUDGE},
        "candidate": {"prompt_tokens": 25, "completion_tokens": 5, **NO_JUDGE},
        "change": {"prompt_tokens": 5, "completion_tokens": 1, **NO_JUDGE},
    }
    assert out == {
        "baseline": {"run_id": "run-a"},
        "candidate": {"run_id": "run-b"},
        "match_on": "key",
        "tolerances": {"f1": 0.1},
        "lower_is_better_suffixes": SUFFIXES,
        "counts": counts,
        "coverage": {"baseline_n": 4, "candidate_n": 5, "compared": 4, "candidate_complete": True},
        "spec_changes": ["probe factuality: version 1 → 2"],
        "groups": [
            {
                "model": "dummy",
                "probe": "factuality",
                "counts": counts,
                "baseline": {"n": 4, "passed": 3, "pass_rate": 0.75},
                "candidate": {"n": 5, "passed": 4, "pass_rate": 0.8},
                "mcnemar": {
                    "test": "exact McNemar (one-sided binomial on discordant pairs)",
                    "b": 1,
                    "c": 1,
                    "p_value": 0.75,
                },
                "paired": {"pass_rate": verdict, "correct": verdict, "f1": f1},
            }
        ],
        "changes": [
            {
                "class": "regression",
                "model": "dummy",
                "probe": "factuality",
                "example_id": "e2",
                "reasons": ["passed true → false", "score correct true → false", "score f1 1.0 → 0.0"],
                "fields": ["output", "passed", "scores"],
                "input": {"answer": "4", "prompt": "question e2"},
                "baseline": side(3, True, {"correct": True, "f1": 1.0}, "4"),
                "candidate": side(3, False, {"correct": False, "f1": 0.0}, "5"),
            },
            {
                "class": "improvement",
                "model": "dummy",
                "probe": "factuality",
                "example_id": "e3",
                "reasons": ["passed false → true", "score correct false → true", "score f1 0.25 → 0.75"],
                "fields": ["output", "passed", "scores"],
                "input": {"answer": "4", "prompt": "question e3"},
                "baseline": side(4, False, {"correct": False, "f1": 0.25}, "5"),
                "candidate": side(4, True, {"correct": True, "f1": 0.75}, "4"),
            },
            {
                "class": "only-in-candidate",
                "model": "dummy",
                "probe": "factuality",
                "example_id": "e4",
                "reasons": ["example only in the candidate"],
                "fields": [],
                "input": {"answer": "4", "prompt": "question e4"},
                "baseline": None,
                "candidate": side(5, True, {"correct": True}, "4"),
            },
        ],
        "changes_total": 3,
        "changes_truncated": False,
        "cost": {
            "groups": [{"model": "dummy", "probe": "factuality", **tokens}],
            "total": {"model": "total", "probe": "", **tokens},
        },
    }


def test_the_paired_f1_interval_is_scipys_t_interval(four_pairs: tuple[Path, Path]) -> None:
    paired = diff_runs(*four_pairs).to_dict()["groups"][0]["paired"]["f1"]["paired"]
    d = [0.0, 0.0, -1.0, 0.5]
    low, high = stats.t.interval(0.95, 3, loc=sum(d) / 4, scale=stats.sem(d))
    assert (paired["low"], paired["high"], paired["se"]) == (round(low, 6), round(high, 6), round(stats.sem(d), 6))


def _probe(rec: dict[str, Any], probe_id: str, **extra: Any) -> dict[str, Any]:
    rec["probe"] = {"id": probe_id, "version": "1", "params": {}, **extra}
    return rec


def test_spec_changes_name_each_changed_field_and_cut_long_ones_at_300_characters(make_run: MakeRun) -> None:
    prefix = "probe p300: prompt null → "  # a field only in the candidate: null in the baseline
    base = [_probe(record("e1"), "p300"), _probe(record("e1"), "p301"), record("e1", output="4")]
    cand = [
        _probe(record("e1", output="5", run_id="run-b"), "p300", prompt="x" * (300 - len(prefix))),
        _probe(record("e1", output="5", run_id="run-b"), "p301", prompt="y" * (301 - len(prefix))),
        record("e1", output="5", run_id="run-b"),
    ]
    base[2]["model"]["params"] = {"temperature": 0, "seed": 1}
    cand[2]["model"]["params"] = {"temperature": 0.5, "seed": 1}
    cand[2]["model"]["provider"] = "openai"
    out = diff_runs(make_run("base", base), make_run("cand", cand)).to_dict()
    assert out["spec_changes"] == [
        'model dummy: params {"seed":1,"temperature":0} → {"seed":1,"temperature":0.5}; provider dummy → openai',
        prefix + "x" * (300 - len(prefix)),  # exactly 300 characters: kept whole
        "probe p301: prompt null → " + "y" * (299 - len(prefix)) + "…",  # 301: cut to 299 and an ellipsis
    ]
    assert [len(s) for s in out["spec_changes"][1:]] == [300, 300]


def test_a_model_upgrade_names_both_models(make_run: MakeRun) -> None:
    base = [record("e0"), record("e1"), record("e2")]
    cand = [
        record("e1", model="big", output="5", passed=False, run_id="run-b"),
        record("e2", model="big", run_id="run-b"),
    ]
    out = diff_runs(make_run("base", base), make_run("cand", cand), match_on="example").to_dict()
    assert out["spec_changes"] == ["model dummy → big"]


def test_a_model_upgrade_in_clusters_is_one_group_with_cluster_intervals(make_run: MakeRun) -> None:
    """match_on="example", dummy → big; e0 (first, only in the baseline, before the candidate's model is known)
    and e1 in cluster c0, e2 (identical) and e3 in c1: pass differences -1 (c0), 0 and +1 (c1)."""
    base = [
        record("e0"),
        record("e1", scores={"correct": True, "f1": 1.0, "len": 3}),
        record("e2", scores={"correct": True, "f1": 0.5, "len": 2}),
        record("e3", scores={"correct": False, "f1": 0.0}, passed=False, output="5"),
    ]
    cand = [
        record("e1", model="big", output="5", passed=False, scores={"correct": False, "f1": 0.0}, run_id="run-b"),
        record("e2", model="big", scores={"correct": True, "f1": 0.5, "len": 2}, run_id="run-b"),
        record("e3", model="big", scores={"correct": True, "f1": 1.0}, run_id="run-b"),
        record("e4", model="big", run_id="run-b"),
    ]
    for r in base + cand:
        r["cluster"] = f"c{int(r['example_id'][1]) // 2}"
    out = diff_runs(make_run("base", base), make_run("cand", cand), match_on="example").to_dict()
    counts = {
        "regression": 1,
        "improvement": 1,
        "changed": 0,
        "only-in-baseline": 1,
        "only-in-candidate": 1,
        "unchanged": 1,
    }
    # clustered (CR1): cluster sums -1, +1 over n = 3: se = √(2/9 × 2/1) = 2/3, t(1) = 12.706205
    clustered = {**interval(0.0, 0.666667, -8.470803, 8.470803, "paired-cluster"), "clusters": 2}
    # baseline 1,1,0 / candidate 0,1,1: unpaired se √(1/9 + 1/9), Welch df 4 (t 2.776445); correlation -1/2
    verdict = {
        "n": 3,
        "candidate_lacks": 0,
        "baseline_lacks": 0,
        "paired": clustered,
        "unpaired": interval(0.0, 0.471405, -1.308829, 1.308829, "unpaired"),
        "correlation": -0.5,
        "baseline_mean": 0.666667,
        "candidate_mean": 0.666667,
        "mde": 1.867723,
    }
    f1 = {
        "n": 3,
        "candidate_lacks": 0,
        "baseline_lacks": 0,
        "paired": clustered,
        "unpaired": interval(0.0, 0.408248, -1.133479, 1.133479, "unpaired"),
        "correlation": -1.0,
        "baseline_mean": 0.5,
        "candidate_mean": 0.5,
        "mde": 1.867723,
    }
    label = "dummy → big"

    def change(kind: str, eid: str, reasons: list[str], fields: list[str], b: Any, c: Any) -> dict[str, Any]:
        return {
            "class": kind,
            "model": label,
            "probe": "factuality",
            "example_id": eid,
            "reasons": reasons,
            "fields": fields,
            "input": {"answer": "4", "prompt": f"question {eid}"},
            "baseline": b,
            "candidate": c,
        }

    out.pop("cost")
    assert out == {
        "baseline": {"run_id": "run-a"},
        "candidate": {"run_id": "run-b"},
        "match_on": "example",
        "tolerances": {},
        "lower_is_better_suffixes": SUFFIXES,
        "counts": counts,
        "coverage": {"baseline_n": 4, "candidate_n": 4, "compared": 3, "candidate_complete": True},
        "spec_changes": ["model dummy → big"],
        "groups": [
            {
                "model": label,
                "probe": "factuality",
                "counts": counts,
                "baseline": {"n": 4, "passed": 3, "pass_rate": 0.75},
                "candidate": {"n": 4, "passed": 3, "pass_rate": 0.75},
                "mcnemar": {
                    "test": "exact McNemar (one-sided binomial on discordant pairs)",
                    "b": 1,
                    "c": 1,
                    "p_value": 0.75,
                },
                # len: e2 on both sides (one pair: no interval), e1 in the baseline only
                "paired": {
                    "pass_rate": verdict,
                    "correct": verdict,
                    "f1": f1,
                    "len": {"n": 1, "candidate_lacks": 1, "baseline_lacks": 0},
                },
            }
        ],
        "changes": [
            change(
                "regression",
                "e1",
                ["passed true → false", "score correct true → false", "score f1 1.0 → 0.0"],
                ["output", "passed", "scores"],
                side(2, True, {"correct": True, "f1": 1.0, "len": 3}, "4"),
                side(1, False, {"correct": False, "f1": 0.0}, "5"),
            ),
            change(
                "improvement",
                "e3",
                ["passed false → true", "score correct false → true", "score f1 0.0 → 1.0"],
                ["output", "passed", "scores"],
                side(4, False, {"correct": False, "f1": 0.0}, "5"),
                side(3, True, {"correct": True, "f1": 1.0}, "4"),
            ),
            change(
                "only-in-baseline",
                "e0",
                ["example only in the baseline"],
                [],
                side(1, True, {"correct": True}, "4"),
                None,
            ),
            change(
                "only-in-candidate",
                "e4",
                ["example only in the candidate"],
                [],
                None,
                side(4, True, {"correct": True}, "4"),
            ),
        ],
        "changes_total": 4,
        "changes_truncated": False,
    }


def _epoch(rec: dict[str, Any], epoch: int) -> dict[str, Any]:
    rec["epoch"] = epoch
    return rec


def test_epochs_are_reported_and_each_examples_epochs_are_one_cluster(make_run: MakeRun) -> None:
    """Two epochs of e0, e1, e2: e0's second epoch regresses, e2's second improves, the rest are identical; with
    limit 1 only the regression keeps its details."""
    base = [
        _epoch(record(e, passed=(e, k) != ("e2", 1), output="4" if (e, k) != ("e2", 1) else "5"), k)
        for e in ("e0", "e1", "e2")
        for k in (0, 1)
    ]
    cand = [
        _epoch(record(e, passed=(e, k) != ("e0", 1), output="4" if (e, k) != ("e0", 1) else "5", run_id="run-b"), k)
        for e in ("e0", "e1", "e2")
        for k in (0, 1)
    ]
    result = diff_runs(make_run("base", base), make_run("cand", cand), limit=1)
    out = result.to_dict()
    assert result.limit == 1
    assert out["epochs"] == 2
    assert out["counts"] == {
        "regression": 1,
        "improvement": 1,
        "changed": 0,
        "only-in-baseline": 0,
        "only-in-candidate": 0,
        "unchanged": 4,
    }
    assert out["changes"] == [
        {
            "class": "regression",
            "model": "dummy",
            "probe": "factuality",
            "example_id": "e0",
            "reasons": ["passed true → false", "score correct true → false"],
            "fields": ["output", "passed", "scores"],
            "input": {"answer": "4", "prompt": "question e0"},
            "epoch": 1,
            "baseline": side(2, True, {"correct": True}, "4"),
            "candidate": side(2, False, {"correct": False}, "5"),
        }
    ]
    assert (out["changes_total"], out["changes_truncated"]) == (2, True)
    [group] = out["groups"]
    assert group["baseline"] == group["candidate"] == {"n": 6, "passed": 5, "pass_rate": 0.833333}
    # per example (cluster) sums of differences: e0 -1, e1 0, e2 +1 over n = 6 pairs: se √(2/36 × 3/2)
    paired = group["paired"]["pass_rate"]["paired"]
    assert (paired["method"], paired["clusters"], paired["se"]) == (
        "paired-cluster",
        3,
        round((2 / 36 * 1.5) ** 0.5, 6),
    )


def test_a_model_upgrade_merges_examples_seen_before_the_candidates_model(make_run: MakeRun) -> None:
    """The candidate (model big) has e2, e3 and e4 only: e1, read before any pair, is counted under "dummy" until
    the candidate's model is known, then merged into the one "dummy → big" group, with the regression (e2), the
    improvement (e4) and the scores one side lacks (len: e2 in the candidate, e4 in the baseline)."""
    base = [record(e, scores={"correct": True, "len": 1}) for e in ("e0", "e5", "e6", "e1", "e2", "e3")]
    base.append(record("e4", output="5", passed=False, scores={"correct": False}))
    cand = [
        record("e2", model="big", output="5", passed=False, scores={"correct": False}, run_id="run-b"),
        record("e3", model="big", scores={"correct": True, "len": 1}, run_id="run-b"),
        record("e4", model="big", scores={"correct": True, "len": 1}, run_id="run-b"),
    ]
    for r in base + cand:
        r["cluster"] = f"c{r['example_id']}"
    out = diff_runs(make_run("base", base), make_run("cand", cand), match_on="example").to_dict()
    [group] = out["groups"]
    counts = {
        "regression": 1,
        "improvement": 1,
        "changed": 0,
        "only-in-baseline": 4,
        "only-in-candidate": 0,
        "unchanged": 1,
    }
    assert out["counts"] == group["counts"] == counts
    assert (group["model"], group["baseline"], group["candidate"]) == (
        "dummy → big",
        {"n": 7, "passed": 6, "pass_rate": 0.857143},
        {"n": 3, "passed": 2, "pass_rate": 0.666667},
    )
    assert (group["mcnemar"]["b"], group["mcnemar"]["c"]) == (1, 1)
    assert group["paired"]["len"] == {"n": 1, "candidate_lacks": 1, "baseline_lacks": 1}  # e3 has it on both sides
    # pass differences -1 (ce2), 0 (ce3) and +1 (ce4), one cluster each: se √(2 × 3/2) / 3 = 1/√3
    paired = group["paired"]["pass_rate"]["paired"]
    assert (paired["method"], paired["clusters"], paired["se"], paired["estimate"]) == (
        "paired-cluster", 3, round(3**-0.5, 6), 0.0)
    assert [c["example_id"] for c in out["changes"]] == ["e2", "e4", "e1", "e0", "e5", "e6"]
    assert {c["model"] for c in out["changes"]} == {"dummy → big"}


def test_spec_changes_stop_at_20(make_run: MakeRun) -> None:
    base = [_probe(record("e1"), f"p{i:02d}") for i in range(22)]
    cand = [_probe(record("e1", output="5", run_id="run-b"), f"p{i:02d}", version="2") for i in range(22)]
    out = diff_runs(make_run("base", base), make_run("cand", cand)).to_dict()
    assert out["spec_changes"] == [f"probe p{i:02d}: version 1 → 2" for i in range(20)]


@pytest.mark.parametrize(
    ("base_ids", "cand_ids", "label"),
    [
        (["e0"], [], "dummy"),  # the candidate has no records: its model is unknown
        ([], ["e0"], "big"),
    ],
)
def test_a_model_upgrade_with_a_side_unseen_is_named_after_what_was_seen(
    make_run: MakeRun, base_ids: list[str], cand_ids: list[str], label: str
) -> None:
    base = [record(e) for e in base_ids]
    cand = [record(e, model="big", run_id="run-b") for e in cand_ids]
    out = diff_runs(make_run("base", base), make_run("cand", cand), match_on="example").to_dict()
    assert [g["model"] for g in out["groups"]] == [label]
    assert {c["model"] for c in out["changes"]} <= {label}


def test_a_second_model_in_the_candidate_names_its_line(make_run: MakeRun) -> None:
    from insideLLMs.diff import DiffInputError

    base = [record("e0"), record("e1")]
    cand = [
        record("e0", model="big", output="5", run_id="run-b"),
        record("e1", model="huge", output="5", run_id="run-b"),
    ]
    base_dir, cand_dir = make_run("base", base), make_run("cand", cand)
    with pytest.raises(DiffInputError) as err:
        diff_runs(base_dir, cand_dir, match_on="example")
    assert str(err.value) == (
        f"{cand_dir / 'records.jsonl'}:2: a second model 'huge' (after 'big'); "
        "--match-on example compares runs of one model each"
    )


def test_improvements_and_the_candidates_clusters_are_counted(make_run: MakeRun) -> None:
    """Three improvements; only the candidate labels clusters (a: e0, e1; b: e2; e3 unchanged in b)."""
    base = [record(e, passed=e == "e3", output="4" if e == "e3" else "5") for e in ("e0", "e1", "e2", "e3")]
    cand = [record(e, run_id="run-b") for e in ("e0", "e1", "e2", "e3")]
    for r, cluster in zip(cand, "aabb"):
        r["cluster"] = cluster
    out = diff_runs(make_run("base", base), make_run("cand", cand)).to_dict()
    [group] = out["groups"]
    assert group["counts"]["improvement"] == out["counts"]["improvement"] == 3
    assert group["counts"]["unchanged"] == 1
    assert (group["mcnemar"]["b"], group["mcnemar"]["c"]) == (0, 3)
    # differences 1, 1 (a), 1, 0 (b): mean 0.75, cluster residual sums 0.5, -0.5: se √(0.5 / 4² × 2/1) = 0.25
    paired = group["paired"]["pass_rate"]["paired"]
    assert (paired["method"], paired["clusters"], paired["se"]) == ("paired-cluster", 2, 0.25)


def test_identical_pairs_count_their_verdicts_and_integer_scores(make_run: MakeRun) -> None:
    """e0, e1 pass, e2, e3 fail, e4 errs (no verdict) on both sides alike; e5 regresses. Scores: len 2..5 alike, e5's
    len 1 → 2."""

    def runs(run_id: str, e5_passes: bool) -> list[dict[str, Any]]:
        recs = [
            record(
                f"e{i}",
                passed=i < 2,
                output="4" if i < 2 else "5",
                scores={"correct": i < 2, "len": i + 2},
                run_id=run_id,
            )
            for i in range(4)
        ]
        recs.append(
            record("e4", status="error", passed=None, output=None, error={"type": "E", "message": "m"}, run_id=run_id)
        )
        recs.append(
            record(
                "e5",
                passed=e5_passes,
                output="4" if e5_passes else "5",
                scores={"correct": e5_passes, "len": 1 if e5_passes else 2},
                run_id=run_id,
            )
        )
        return recs

    out = diff_runs(make_run("base", runs("run-a", True)), make_run("cand", runs("run-b", False))).to_dict()
    [group] = out["groups"]
    assert out["counts"]["unchanged"] == group["counts"]["unchanged"] == 5
    assert group["baseline"] == {"n": 6, "passed": 3, "pass_rate": 0.6}  # 3 of the 5 with a verdict
    assert group["candidate"] == {"n": 6, "passed": 2, "pass_rate": 0.4}
    pass_rate, length = group["paired"]["pass_rate"], group["paired"]["len"]
    assert (pass_rate["n"], pass_rate["baseline_mean"], pass_rate["candidate_mean"]) == (6, 0.5, 0.333333)
    assert (length["n"], length["baseline_mean"], length["candidate_mean"]) == (5, 3.0, 3.2)
    assert (length["paired"]["estimate"], length["paired"]["se"]) == (0.2, 0.2)  # differences 0, 0, 0, 0, 1


def test_star_tolerance_sets_the_power_of_scores_and_runs_without_verdicts_have_no_pass_rate(
    make_run: MakeRun,
) -> None:
    """Two pairs, no verdicts, f1 up by exactly 0.25 on both: se 0, so the examples needed are the two there are."""
    base = [record(e, passed=None, scores={"f1": 0.5}) for e in ("e0", "e1")]
    cand = [record(e, passed=None, output="5", scores={"f1": 0.75}, run_id="run-b") for e in ("e0", "e1")]
    out = diff_runs(make_run("base", base), make_run("cand", cand), tolerances={"*": 0.1}).to_dict()
    [group] = out["groups"]
    assert list(group["paired"]) == ["f1"]
    f1 = group["paired"]["f1"]
    assert (f1["n"], f1["paired"]["estimate"], f1["paired"]["se"]) == (2, 0.25, 0.0)
    assert (f1["mde"], f1["tolerance"], f1["n_needed"]) == (0.0, 0.1, 2)
    assert group["baseline"] == {"n": 2, "passed": 0, "pass_rate": None}


def test_a_result_built_without_cost_rows_has_no_cost_total() -> None:
    """``DiffResult.costs`` defaults to no rows (diff_runs fills it from the summaries): the payload then has no
    cost groups and no total, rather than failing."""
    from insideLLMs.diff import CLASSES, Coverage, DiffResult

    counts = dict.fromkeys(CLASSES, 0)
    result = DiffResult(
        baseline=Path("base"), candidate=Path("cand"), baseline_run_id="run-a", candidate_run_id="run-b",
        match_on="key", tolerances={}, counts=counts, groups=[], changes=[], limit=10,
        coverage=Coverage(baseline_n=0, candidate_n=0, compared=0, candidate_complete=True),
    )
    assert result.to_dict() == {
        "baseline": {"run_id": "run-a"},
        "candidate": {"run_id": "run-b"},
        "match_on": "key",
        "tolerances": {},
        "lower_is_better_suffixes": SUFFIXES,
        "counts": counts,
        "coverage": {"baseline_n": 0, "candidate_n": 0, "compared": 0, "candidate_complete": True},
        "spec_changes": [],
        "groups": [],
        "changes": [],
        "changes_total": 0,
        "changes_truncated": False,
        "cost": {"groups": [], "total": None},
    }


def test_a_group_whose_pairs_are_all_identical_still_has_its_pass_rate(make_run: MakeRun) -> None:
    """Two models × two probes, the candidate the same but for its run id: by the time big / logic comes, its model
    and its probe were both seen in earlier groups, so every pair of it is identical from the first; it still
    counts its pairs and its paired pass rate (no change: an interval of zero width)."""
    base = [record(f"e{i}", model=m, probe=p, passed=i != 1, output="4" if i != 1 else "5")
            for m in ("dummy", "big") for p in ("factuality", "logic") for i in range(3)]
    cand = [dict(r, run_id="run-b") for r in base]
    result = diff_runs(make_run("base", base), make_run("cand", cand))
    assert result.counts["unchanged"] == 12 and result.total_changes == 0
    for g in result.to_dict()["groups"]:
        assert (g["counts"]["unchanged"], g["baseline"], g["candidate"]) == (
            3, {"n": 3, "passed": 2, "pass_rate": 0.666667}, {"n": 3, "passed": 2, "pass_rate": 0.666667})
        assert g["paired"]["pass_rate"]["paired"] == interval(0.0, 0.0, 0.0, 0.0, "paired")
        assert g["paired"]["pass_rate"]["n"] == 3
    assert [(g["model"], g["probe"]) for g in result.to_dict()["groups"]] == [
        ("big", "factuality"), ("big", "logic"), ("dummy", "factuality"), ("dummy", "logic")]


def test_a_score_only_one_side_has_is_reported_with_no_pairs() -> None:
    """``GroupStats.paired_dict`` of a score the candidate never gave: zero pairs, and how many pairs lack it."""
    from insideLLMs.diff import GroupStats

    g = GroupStats("dummy", "factuality")
    for f1 in (0.5, 1.0):
        g.add_pair({"passed": True, "scores": {"f1": f1}}, {"passed": True, "scores": {}})
    assert g.paired_dict("f1", None) == {"n": 0, "candidate_lacks": 2, "baseline_lacks": 0}


def test_the_baselines_cluster_labels_win_over_the_candidates(make_run: MakeRun) -> None:
    """The baseline puts e0-e2 in cluster a and e3-e5 in b; the candidate labels each example on its own. The pairs
    count in the baseline's clusters: two, not six. e0-e2 improve (differences 1, 1, 1), e3-e5 are unchanged."""
    base = [record(f"e{i}", passed=i > 2, output="4" if i > 2 else "5") | {"cluster": "ab"[i // 3]} for i in range(6)]
    cand = [record(f"e{i}", run_id="run-b") | {"cluster": f"c{i}"} for i in range(6)]
    out = diff_runs(make_run("base", base), make_run("cand", cand)).to_dict()
    assert out["counts"] == {
        "regression": 0,
        "improvement": 3,
        "changed": 0,
        "only-in-baseline": 0,
        "only-in-candidate": 0,
        "unchanged": 3,
    }
    d = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    se = OLS(d, np.ones(6)).fit(cov_type="cluster", cov_kwds={"groups": np.array([0, 0, 0, 1, 1, 1])}).bse[0]
    low, high = stats.t.interval(0.95, 1, loc=0.5, scale=se)  # G - 1 = 1 degree of freedom
    paired = out["groups"][0]["paired"]["pass_rate"]["paired"]
    assert paired == {"estimate": 0.5, "se": round(se, 6), "low": round(low, 6), "high": round(high, 6),
                      "method": "paired-cluster", "confidence": 0.95, "clusters": 2}
