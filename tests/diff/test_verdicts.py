"""How two records of one example compare — the rules a gate rests on, with records shaped as the runner
writes them (an error record has no scores and no verdict)."""

from __future__ import annotations

from typing import Any

import pytest

from insideLLMs.diff._verdict import Classifier, show


def _rec(status: str = "success", passed: bool | None = True, scores: dict[str, Any] | None = None,
         output: Any = "4") -> dict[str, Any]:
    if status != "success":  # what the engine writes for a failed example
        return {"status": status, "passed": None, "scores": {}, "output": None,
                "error": {"type": "ModelTimeout", "message": "no answer"}}
    return {"status": status, "passed": passed, "scores": scores or {}, "output": output, "error": None}


def _classify(b: dict[str, Any], c: dict[str, Any], tolerances: dict[str, float] | None = None) -> str:
    return Classifier(tolerances or {}, frozenset(), ()).classify(b, c)[0]


def test_a_success_that_becomes_an_error_is_a_regression_and_back_an_improvement() -> None:
    assert _classify(_rec(), _rec("error")) == "regression"
    assert _classify(_rec("error"), _rec()) == "improvement"
    assert _classify(_rec(passed=False), _rec("timeout")) == "regression"


def test_passed_flips() -> None:
    assert _classify(_rec(passed=True), _rec(passed=False)) == "regression"
    assert _classify(_rec(passed=False), _rec(passed=True)) == "improvement"


@pytest.mark.parametrize(("before", "after", "tol", "expected"), [
    (0.50, 0.45, 0.05, "unchanged"),  # moved by exactly its tolerance: not a verdict
    (0.50, 0.55, 0.05, "unchanged"),
    (0.50, 0.44, 0.05, "regression"),
    (0.50, 0.56, 0.05, "improvement"),
    (0.50, 0.50, 0.0, "unchanged"),
    (0.50, 0.49, 0.0, "regression"),
])
def test_a_score_counts_only_beyond_its_tolerance(before: float, after: float, tol: float, expected: str) -> None:
    b, c = _rec(scores={"f1": before}), _rec(scores={"f1": after})
    assert _classify(b, c, {"f1": tol}) == expected
    assert _classify(b, c, {"*": tol}) == expected


def test_lower_is_better_scores_flip_the_direction() -> None:
    assert _classify(_rec(scores={"latency_ms": 10}), _rec(scores={"latency_ms": 20})) == "regression"
    assert _classify(_rec(scores={"toxicity": 0.4}), _rec(scores={"toxicity": 0.1})) == "improvement"
    assert Classifier({}, frozenset({"cost"}), ()).classify(_rec(scores={"cost": 1}), _rec(scores={"cost": 2}))[0] \
        == "regression"


def test_an_output_that_changed_with_the_same_verdict_is_changed() -> None:
    assert _classify(_rec(output="4"), _rec(output="four")) == "changed"


def test_a_score_that_appears_or_vanishes_is_a_change() -> None:
    assert _classify(_rec(scores={"f1": 0.5}), _rec(scores={"f1": 0.5, "bleu": 0.2})) == "changed"
    assert _classify(_rec(scores={"f1": 0.5, "bleu": 0.2}), _rec(scores={"f1": 0.5})) == "changed"
    assert _classify(_rec(scores={"ok": True}), _rec(scores={"ok": "yes"})) == "changed"  # changed type


def _full(b: dict[str, Any], c: dict[str, Any], tolerances: dict[str, float] | None = None) -> tuple[str, list[str], list[str]]:
    return Classifier(tolerances or {}, frozenset(), ()).classify(b, c)


def test_every_score_is_compared_after_one_that_changed_kind_or_stayed_within_tolerance() -> None:
    # "a" changes from text to text (a change, not a verdict), "b" within its tolerance, "c" drops: still a regression
    b = _rec(scores={"a": "x", "b": 0.50, "c": 0.9})
    c = _rec(scores={"a": "y", "b": 0.52, "c": 0.1})
    assert _full(b, c, {"*": 0.05}) == ("regression", ["score c 0.9 → 0.1"], ["scores"])


def test_a_boolean_score_flip_counts_whatever_the_tolerance() -> None:
    assert _full(_rec(scores={"ok": True}), _rec(scores={"ok": False}), {"*": 1.0}) == \
        ("regression", ["score ok true → false"], ["scores"])
    assert _full(_rec(scores={"timed_out": False}), _rec(scores={"timed_out": True}), {"*": 1.0})[0] == "regression"


def test_equal_scores_are_unchanged_and_equal_values_of_another_type_are_a_change() -> None:
    assert _full(_rec(scores={"label": "B", "n": 1}), _rec(scores={"label": "B", "n": 1})) == ("unchanged", [], [])
    assert _full(_rec(scores={"n": 1}), _rec(scores={"n": True})) == ("changed", ["scores changed"], ["scores"])


def test_a_changed_record_names_every_changed_field_including_one_side_only() -> None:
    b, c = _rec(output="4"), {**_rec(output="four"), "judge": {"grade": "A"}}
    assert _full(b, c) == ("changed", ["judge, output changed"], ["judge", "output"])


def test_values_in_reasons_are_shown_as_json_except_text() -> None:
    assert [show("four"), show(0.5), show(True), show(None), show({"a": 1})] == ["four", "0.5", "true", "null", '{"a":1}']
