"""``insidellms diff`` shows what both runs cost: tokens and USD per model × probe and in total, and the change;
unknown (—, null) where a run has no price or no summary, never 0."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from insideLLMs.diff import diff_runs, render_diff_report, render_json, render_text
from support.cli import run_cli
from support.run_dirs import record, write_run_dir

PRICES = {
    "gpt-a": {"input": 2.0, "output": 8.0, "source": "table"},
    "gpt-b": {"input": 1.0, "output": 1.0, "source": "config"},
}


def _rec(example_id: str, model: str, probe: str, prompt: int, completion: int, judge: int = 0) -> dict[str, Any]:
    rec = record(example_id, model=model, probe=probe)
    rec["usage"] = {"prompt_tokens": prompt, "completion_tokens": completion}
    if judge:
        rec["judge"] = {
            "judge": {
                "model": "gpt-b",
                "grade": "A",
                "reason": "",
                "usage": {"prompt_tokens": judge, "completion_tokens": 0},
            }
        }
    return rec


def _runs(tmp_path: Path) -> tuple[Path, Path]:
    base = write_run_dir(
        tmp_path / "base",
        [_rec("q1", "gpt-a", "logic", 1000, 500), _rec("q1", "gpt-a", "factuality", 2000, 0, judge=1000)],
        prices=PRICES,
    )
    cand = write_run_dir(
        tmp_path / "cand",
        [_rec("q1", "gpt-a", "logic", 1000, 250), _rec("q1", "gpt-a", "factuality", 2000, 0, judge=3000)],
        prices=PRICES,
    )
    return base, cand


def test_cost_and_tokens_of_both_sides_and_the_change_per_group_and_in_total(tmp_path: Path) -> None:
    base, cand = _runs(tmp_path)
    result = diff_runs(base, cand)
    cost = json.loads(render_json(result))["cost"]
    [fact, logic] = cost["groups"]  # sorted by model, probe
    # logic: 1,000 in × $2/M + 500 out × $8/M = $0.006 → 1,000 × $2/M + 250 × $8/M = $0.004
    assert (logic["probe"], logic["baseline"]["cost_usd"], logic["candidate"]["cost_usd"]) == ("logic", 0.006, 0.004)
    assert logic["change"]["cost_usd"] == -0.002 and logic["change"]["completion_tokens"] == -250
    assert logic["baseline"]["judge_cost_usd"] is None  # no judge in this group
    # factuality: the model's $0.004 both times; its judge (gpt-b, $1/M) 1,000 → 3,000 tokens: $0.001 → $0.003
    assert (fact["baseline"]["cost_usd"], fact["candidate"]["cost_usd"], fact["change"]["cost_usd"]) == (
        0.004,
        0.004,
        0.0,
    )
    assert (fact["baseline"]["judge_cost_usd"], fact["candidate"]["judge_cost_usd"]) == (0.001, 0.003)
    assert fact["change"]["judge_cost_usd"] == 0.002 and fact["change"]["judge_prompt_tokens"] == 2000
    total = cost["total"]
    assert (total["baseline"]["cost_usd"], total["candidate"]["cost_usd"], total["change"]["cost_usd"]) == (
        0.01,
        0.008,
        -0.002,
    )
    assert total["change"]["judge_cost_usd"] == 0.002
    text = render_text(result)
    assert "  gpt-a / logic: cost $0.006 → $0.004 (-$0.002); tokens 1,500 → 1,250 (-250)\n" in text
    assert (
        "  total: cost $0.01 → $0.008 (-$0.002); tokens 3,500 → 3,250 (-250); judge cost $0.001 → $0.003 "
        "(+$0.002), judge tokens 1,000 → 3,000 (+2,000)\n"
    ) in text
    html = render_diff_report(result).decode()
    assert 'id="cost"' in html and "<td>-$0.002</td>" in html and "<td>+$0.002</td>" in html


def test_an_unknown_side_makes_the_change_unknown_never_zero(tmp_path: Path) -> None:
    base, _ = _runs(tmp_path)
    unpriced = write_run_dir(tmp_path / "unpriced", [_rec("q1", "gpt-a", "logic", 1000, 250)])  # no prices
    cost = json.loads(render_json(diff_runs(base, unpriced)))["cost"]
    logic = next(g for g in cost["groups"] if g["probe"] == "logic")
    assert logic["candidate"]["cost_usd"] is None and logic["change"]["cost_usd"] is None
    assert logic["change"]["completion_tokens"] == -250  # tokens are still known
    (unpriced / "summary.json").unlink()  # an interrupted run: nothing known
    result = diff_runs(base, unpriced)
    assert json.loads(render_json(result))["cost"]["total"]["candidate"] is None
    assert "  total: cost $0.01 → — (—); tokens 3,500 → — (—)" in render_text(result)


@pytest.mark.slow
def test_the_diff_command_prints_cost(tmp_path: Path) -> None:
    base, cand = _runs(tmp_path)
    result = run_cli("diff", str(base), str(cand), cwd=tmp_path)
    assert "cost and tokens (baseline → candidate, change):" in result.stdout, result.stderr
