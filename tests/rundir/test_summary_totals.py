"""summary.json's ``totals``: every record of the run taken as one group, whatever groups they came in.

The oracle is the summary of the same records relabelled to one model and one probe (every number but cost, which
depends on the model names) and, for cost, the tokens per model priced by hand."""

from __future__ import annotations

import random
from fractions import Fraction
from typing import Any

import pytest

from insideLLMs.rundir import summarize
from support.run_dirs import record, timing

PRICES = {
    "gpt-a": {"input": 2.0, "output": 8.0, "source": "table"},
    "gpt-b": {"input": 0.5, "output": 1.0, "source": "table"},
    "judge-1": {"input": 1.0, "output": 4.0, "source": "table"},
    "judge-2": {"input": 3.0, "output": 5.0, "source": "table"},
}
MODELS, PROBES, JUDGES = ("gpt-a", "gpt-b"), ("p1", "p2"), ("judge-1", "judge-2")


def _quarter(rng: random.Random) -> float:
    """Multiples of ¼ add up exactly, in any order: the totals can be compared to the last digit."""
    return rng.randrange(5) / 4


def _verdict(rng: random.Random, judge: str) -> dict[str, Any]:
    return {"model": judge, "grade": "A", "usage": {"prompt_tokens": rng.randrange(50, 500),
                                                   "completion_tokens": rng.choice([0, rng.randrange(1, 40)])}}


def _judge(rng: random.Random) -> dict[str, Any] | None:
    kind = rng.randrange(4)
    if kind == 0:
        return None
    if kind == 1:
        return {"judge": _verdict(rng, rng.choice(JUDGES))}
    if kind == 2:
        return {"judge": {"grade": "A", "votes": [_verdict(rng, j) for j in JUDGES]}}
    return {"judge": {"model": "judge-2", "error": "the judge call failed (timeout)", "usage": None}}


def _runs(seed: int, epochs: int, clusters: bool, unmetered: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Records (each example's epochs consecutive) and timings of a run of two models × two probes."""
    rng = random.Random(seed)
    records, timings = [], []
    for i in range(60):
        model, probe = rng.choice(MODELS), rng.choice(PROBES)
        for epoch in range(epochs):
            if rng.random() < 0.15:
                rec = record(f"e{i}", model=model, probe=probe, status="error", passed=None, scores={}, output=None,
                             error={"type": "ModelError", "message": "x"})
                rec["usage"] = None
            else:
                scores: dict[str, Any] = {"exact": rng.random() < 0.5}
                if rng.random() < 0.8:
                    scores["f1"] = _quarter(rng)
                rec = record(f"e{i}", model=model, probe=probe, passed=rng.choice([True, False, None]), scores=scores)
                rec["usage"] = {"prompt_tokens": rng.randrange(10, 2000),  # an empty answer is 0 tokens
                                "completion_tokens": rng.choice([0, rng.randrange(1, 300)])}
                judge = _judge(rng)
                if judge:
                    rec["judge"] = judge
            if epochs > 1:
                rec["epoch"] = epoch
            if clusters:
                rec["cluster"] = f"c{i % 7}"
            records.append(rec)
            timings.append(timing(rec, float(rng.randrange(1, 5000))))
    if unmetered:  # a model's answer and a judge's verdict that came without token counts: their cost is unknown
        answered = next(r for r in records if r["output"] is not None)
        answered["usage"] = None
        judged = next(r for r in reversed(records) if r["output"] is not None)
        judged["judge"] = {"judge": {"model": "judge-1", "grade": "B", "usage": None}}
    return records, timings


def _as_one_group(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for item in items:
        if "probe" in item and isinstance(item["probe"], dict):
            out.append(item | {"model": item["model"] | {"id": "m"}, "probe": item["probe"] | {"id": "p"}})
        else:
            out.append(item | {"model": "m", "probe": "p"})
    return out


def _priced(tokens: dict[str, list[int]]) -> Any:
    """Exact (fractions), compared to a ten-billionth of a dollar: the digits summary.json keeps."""
    exact = sum(Fraction(PRICES[m]["input"]) * p + Fraction(PRICES[m]["output"]) * c for m, (p, c) in tokens.items())
    return pytest.approx(float(exact / 10**6), abs=1e-10, rel=0)


def _token_sums(usages: list[dict[str, int]]) -> dict[str, int]:
    return {"prompt": sum(u["prompt_tokens"] for u in usages), "completion": sum(u["completion_tokens"] for u in usages)}


def _judge_calls(rec: dict[str, Any]) -> list[dict[str, Any]]:
    section = (rec.get("judge") or {}).get("judge")
    return (section.get("votes") or [section]) if section else []


def _hand_costs(records: list[dict[str, Any]]) -> tuple[float | None, float | None]:
    model: dict[str, list[int]] = {}
    judge: dict[str, list[int]] = {}
    unmetered = judge_unmetered = False
    for rec in records:
        if rec["usage"]:
            tokens = model.setdefault(rec["model"]["id"], [0, 0])
            tokens[0] += rec["usage"]["prompt_tokens"]
            tokens[1] += rec["usage"]["completion_tokens"]
        elif rec["output"] is not None:
            unmetered = True
        for call in _judge_calls(rec):
            if call.get("usage"):
                tokens = judge.setdefault(call["model"], [0, 0])
                tokens[0] += call["usage"]["prompt_tokens"]
                tokens[1] += call["usage"]["completion_tokens"]
            elif "grade" in call:
                judge_unmetered = True
    return (None if unmetered else _priced(model)), (None if judge_unmetered else _priced(judge))


@pytest.mark.parametrize("epochs", [1, 2])
@pytest.mark.parametrize("clusters", [False, True])
@pytest.mark.parametrize("unmetered", [False, True])
def test_totals_are_every_record_as_one_group(epochs: int, clusters: bool, unmetered: bool) -> None:
    records, timings = _runs(seed=epochs * 4 + clusters * 2 + unmetered, epochs=epochs, clusters=clusters,
                             unmetered=unmetered)
    summary = summarize(records, timings, run_id="r", epochs=epochs, prices=PRICES)
    assert len(summary["groups"]) == 4  # the oracle below only means something when there are groups to add up
    (one,) = summarize(_as_one_group(records), _as_one_group(timings), run_id="r", epochs=epochs)["groups"]
    totals = dict(summary["totals"])
    cost, judge_cost = totals.pop("cost_usd"), totals.pop("judge_cost_usd")
    expected = {k: v for k, v in one.items() if k not in ("model", "probe", "cost_usd", "judge_cost_usd")}
    assert totals == expected
    assert (cost, judge_cost) == _hand_costs(records)
    judges = [call["usage"] for r in records for call in _judge_calls(r) if call.get("usage")]
    assert totals["tokens"] == _token_sums([r["usage"] for r in records if r["usage"]])
    assert totals["judge_tokens"] == _token_sums(judges)
    assert summary["volatile"]["latency_ms"]["all"] == _latency(timings)


def _latency(timings: list[dict[str, Any]]) -> dict[str, float]:
    """p50, p95 and mean of every timing, by numpy (nearest rank: ``inverted_cdf``, as the product documents)."""
    import numpy

    xs = numpy.array([t["latency_ms"] for t in timings])
    return {p: round(float(numpy.percentile(xs, q, method="inverted_cdf")), 3) for p, q in (("p50", 50), ("p95", 95))} \
        | {"mean": round(float(xs.mean()), 3)}
