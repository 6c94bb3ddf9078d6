"""Every config shipped in examples/ validates as written (no key or server needed to validate), and every eval of
examples/custom-evals (docs/guides/custom-evals.md) runs offline with the results the guide describes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from support.cli import run_cli

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").rglob("*.yaml"))
CUSTOM_EVALS = sorted((ROOT / "examples" / "custom-evals").glob("*.yaml"))

# config -> the roles of the messages sent (system prompt, few-shot turns), (example_id, passed, scores) per record,
# and the summary's totals that say the same
FEW_SHOT = ["system", "user", "assistant", "user", "assistant", "user"]
EXPECTED_RUNS: dict[str, tuple[list[str], list[tuple[str, bool, dict[str, Any]]], dict[str, Any]]] = {
    "quiz.yaml": (
        FEW_SHOT,
        [
            ("mars", True, {"choice": True}),
            ("gold", True, {"choice": True}),
            ("hexagon", False, {"choice": False}),  # the model says C
            ("water", True, {"choice": True}),  # "100 degrees": the choice's text picks B
        ],
        {"n": 4, "passed": 3, "pass_rate": 0.75, "scores": {"choice": 0.75}},
    ),
    "support.yaml": (
        FEW_SHOT,
        [
            ("reset", True, {"f1": 1.0, "judge": 0.5}),
            ("refund", True, {"f1": 0.9333, "judge": 0.5}),
            ("hours", False, {"f1": 0.1538, "judge": 0.5}),  # the judge's B passes at 0.5; f1 decides
        ],
        {
            "n": 3,
            "passed": 2,
            "pass_rate": 0.666667,
            "scores": {"f1": 0.6957, "judge": 0.5},
            "judge_tokens": {"completion": 18, "prompt": 249},
        },
    ),
    "contacts.yaml": (
        ["user"],
        [
            ("ann", True, {"email": True, "email.matched": True, "json": True, "json.parsed": True}),
            ("bo", False, {"email": False, "email.matched": False, "json": False, "json.parsed": True}),  # no email
            ("cy", False, {"email": False, "email.matched": True, "json": True, "json.parsed": True}),  # wrong email
        ],
        {
            "n": 3,
            "passed": 1,
            "pass_rate": 0.333333,
            "scores": {"email": 0.333333, "email.matched": 0.666667, "json": 0.666667, "json.parsed": 1.0},
        },
    ),
}


@pytest.mark.parametrize("config", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_example_config_validates(config: Path) -> None:
    result = run_cli("validate", str(config), cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "ok —" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("config", CUSTOM_EVALS, ids=lambda p: p.name)
def test_custom_eval_example_runs_offline_with_the_results_the_guide_describes(config: Path, tmp_path: Path) -> None:
    assert config.name in EXPECTED_RUNS, f"add the expected results of {config.name} to EXPECTED_RUNS"
    expected_roles, expected_records, expected_totals = EXPECTED_RUNS[config.name]
    # from another directory: the data paths are relative to the config
    result = run_cli("run", str(config), "--run-dir", str(tmp_path / "out"), "--no-track", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "out/records.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert [(r["example_id"], r["passed"], r["scores"]) for r in records] == expected_records
    assert {r["status"] for r in records} == {"success"}
    assert [[m["role"] for m in r["messages"]] for r in records] == [expected_roles] * len(records)
    totals = json.loads((tmp_path / "out/summary.json").read_text(encoding="utf-8"))["totals"]
    assert {key: totals.get(key) for key in expected_totals} == expected_totals
