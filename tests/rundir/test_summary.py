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
