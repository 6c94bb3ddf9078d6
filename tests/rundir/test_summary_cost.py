"""summary.json's tokens and cost: computed from token totals at the run's prices, the judges' apart, and
unknown (null) whenever a price or a token count is missing, never 0."""

from __future__ import annotations

from typing import Any

from insideLLMs.rundir import record_cost, summarize
from support.run_dirs import record

PRICES = {
    "gpt-a": {"input": 2.0, "output": 8.0, "source": "table"},
    "gpt-b": {"input": 0.5, "output": 1.0, "source": "config"},
    "judge-j": {"input": 1.0, "output": 4.0, "source": "table"},
    "free": {"input": 0.0, "output": 0.0, "source": "local"},
    "unpriced": None,
}


def _rec(example_id: str, model: str, prompt: int | None, completion: int = 0, **kwargs: Any) -> dict[str, Any]:
    rec = record(example_id, model=model, **kwargs)
    rec["usage"] = None if prompt is None else {"prompt_tokens": prompt, "completion_tokens": completion}
    return rec


def _judged(rec: dict[str, Any], judge: dict[str, Any]) -> dict[str, Any]:
    return rec | {"judge": judge}


def test_cost_per_group_and_in_total_from_known_tokens_and_prices() -> None:
    records = [
        _rec("q1", "gpt-a", 1000, 200),
        _rec("q2", "gpt-a", 3000, 800),
        _rec("q1", "gpt-b", 10_000, 5_000),
        _rec("q2", "gpt-b", 2_000, 0),
    ]
    summary = summarize(records, run_id="r", prices=PRICES)
    a, b = summary["groups"]
    # gpt-a: 4,000 in × $2/M + 1,000 out × $8/M = $0.008 + $0.008
    assert a["tokens"] == {"prompt": 4000, "completion": 1000} and a["cost_usd"] == 0.016
    # gpt-b: 12,000 in × $0.5/M + 5,000 out × $1/M = $0.006 + $0.005
    assert b["tokens"] == {"prompt": 12000, "completion": 5000} and b["cost_usd"] == 0.011
    assert summary["totals"]["cost_usd"] == 0.027
    assert "judge_cost_usd" not in summary["totals"]  # no judge in this run
    assert [record_cost(r, PRICES) for r in records] == [0.0036, 0.0124, 0.01, 0.001]


def test_an_unknown_price_or_token_count_makes_the_cost_unknown_never_zero() -> None:
    unpriced = summarize([_rec("q1", "unpriced", 10, 10), _rec("q1", "gpt-a", 10, 10)], run_id="r", prices=PRICES)
    assert [g["cost_usd"] for g in unpriced["groups"]] == [None, 0.0001]
    assert unpriced["totals"]["cost_usd"] is None
    unmetered = summarize([_rec("q1", "gpt-a", None), _rec("q2", "gpt-a", 10, 10)], run_id="r", prices=PRICES)
    assert unmetered["totals"]["cost_usd"] is None  # an answer came without token counts
    assert summarize([_rec("q1", "gpt-a", 10, 10)], run_id="r")["totals"]["cost_usd"] is None  # no prices at all
    # an error before any answer costs nothing; the local model is free
    failed = _rec("q2", "gpt-a", None, output=None, status="error", error={"type": "ModelError", "message": "x"})
    assert summarize([failed, _rec("q1", "gpt-a", 1000, 0)], run_id="r", prices=PRICES)["totals"]["cost_usd"] == 0.002
    assert summarize([_rec("q1", "free", 10**6, 10**6)], run_id="r", prices=PRICES)["totals"]["cost_usd"] == 0.0


def test_the_judges_tokens_and_cost_are_apart_from_the_graded_models() -> None:
    verdict = {
        "model": "judge-j",
        "grade": "A",
        "reason": "ok",
        "usage": {"prompt_tokens": 500, "completion_tokens": 50},
    }
    votes = {
        "grade": "A",
        "agreement": 1.0,
        "votes": [verdict, verdict | {"usage": {"prompt_tokens": 100, "completion_tokens": 10}}],
    }
    pairwise = {"model": "judge-j", "grade": "answer", "orders": [verdict, verdict]}
    failed = {"model": "judge-j", "error": "the judge call failed (timeout): slow", "usage": None}
    records = [
        _judged(_rec("q1", "gpt-a", 1000, 100), {"judge": verdict}),
        _judged(_rec("q2", "gpt-a", 1000, 100), {"judge": votes, "pairwise": pairwise}),
        _judged(_rec("q3", "gpt-a", 1000, 100), {"judge": failed}),
    ]
    totals = summarize(records, run_id="r", prices=PRICES)["totals"]
    assert totals["tokens"] == {"prompt": 3000, "completion": 300}
    assert totals["cost_usd"] == 0.0084  # 3,000 × $2/M + 300 × $8/M
    # the judge: 500 + (500 + 100) + (500 + 500) = 2,100 in, 50 + 60 + 100 = 210 out, at $1/M and $4/M
    assert totals["judge_tokens"] == {"prompt": 2100, "completion": 210}
    assert totals["judge_cost_usd"] == 0.00294
    assert record_cost(records[0], PRICES) == 0.0028 + 0.0007  # its answer and its verdict
    unmetered = _judged(_rec("q4", "gpt-a", 10, 10), {"judge": verdict | {"usage": None}})
    assert summarize([unmetered], run_id="r", prices=PRICES)["totals"]["judge_cost_usd"] is None
    assert summarize([unmetered], run_id="r", prices=PRICES)["totals"]["cost_usd"] == 0.0001


def test_a_records_cost_is_unknown_when_its_answer_or_a_verdict_is_unpriced_or_unmetered() -> None:
    verdict = {"model": "judge-j", "grade": "A", "usage": {"prompt_tokens": 500, "completion_tokens": 50}}
    assert record_cost(_rec("q1", "unpriced", 10, 10), PRICES) is None
    assert record_cost(_rec("q1", "gpt-a", None), PRICES) is None  # answered without token counts
    assert record_cost(_judged(_rec("q1", "gpt-a", 10, 10), {"judge": verdict | {"model": "unpriced"}}), PRICES) is None
    assert record_cost(_judged(_rec("q1", "gpt-a", 10, 10), {"judge": verdict | {"usage": None}}), PRICES) is None
    assert record_cost(_judged(_rec("q1", "unpriced", 10, 10), {"judge": verdict}), PRICES) is None
    failed = _rec("q2", "gpt-a", None, output=None, status="error", error={"type": "ModelError", "message": "x"})
    assert record_cost(failed, PRICES) == 0.0  # an error before any answer costs nothing


def test_without_a_run_id_the_summary_takes_the_records_and_keeps_the_runs_settings() -> None:
    """``summarize`` as ``insidellms report`` rebuilds summary.json: the run id from the records when not given,
    the prices, epochs and reducer as given, and for no records at all an empty run id."""
    records = [_rec("q1", "gpt-a", 1000, 200, run_id="run-7") | {"epoch": e} for e in range(2)]
    told = summarize(records, run_id="run-7", epochs=2, reducer="max", prices=PRICES)
    assert summarize(records, epochs=2, reducer="max", prices=PRICES) == told
    assert told["run_id"] == "run-7" and told["totals"]["cost_usd"] == 2 * (1000 * 2.0 + 200 * 8.0) / 1e6
    assert told["totals"]["epochs"]["k"] == 2
    interrupted = summarize(records, run_id="from-manifest", epochs=3, reducer="max", prices=PRICES)
    assert (interrupted["run_id"], interrupted["totals"]["epochs"]["k"]) == ("from-manifest", 3)
    empty = summarize([], epochs=3, reducer="max", prices=PRICES)
    assert (empty["run_id"], empty["totals"]["epochs"], empty["totals"]["cost_usd"]) == (
        "", {"k": 3, "examples": 0, "reducers": {}, "within_variance": {}}, 0.0)
