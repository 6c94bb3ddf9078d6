"""What costs money, counted at the server: a resume sends only what is missing, a retry budget is exact,
and a cached answer is not asked again. (Every count here is what the fake server received.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from support.cli import dummy_config, qa_rows, run_cli, write_config, write_jsonl

N = 40


def _setup(tmp_path: Path, server: Any, **runner: Any) -> None:
    write_jsonl(tmp_path / "data.jsonl", qa_rows(N))
    config = dummy_config(model={"type": "openai", "args": {"model_name": "gpt-test", "api_key": "k",
                                                            "base_url": server.openai_base_url}})
    config["runner"].update({"concurrency": 4, **runner})
    write_config(tmp_path / "eval.yaml", config)


def _interrupted_copy(full: Path, to: Path, keep: int) -> None:
    """What a run killed after ``keep`` examples leaves: a prefix of records and timings, no end files."""
    shutil.copytree(full, to)
    run_id = json.loads((to / "manifest.json").read_text())["run_id"]
    for name in ("records.jsonl", "timings.jsonl"):
        lines = (to / name).read_bytes().splitlines(keepends=True)
        (to / name).write_bytes(b"".join(lines[:keep]))
    for name in ("manifest.json", "summary.json", "config.resolved.yaml", "report.html"):
        (to / name).unlink(missing_ok=True)
    (to / ".incomplete").write_text(json.dumps({"run_id": run_id}) + "\n")


@pytest.mark.slow
def test_resume_asks_the_model_only_for_the_missing_examples(tmp_path: Path, fake_llm_server: Any) -> None:
    _setup(tmp_path, fake_llm_server)
    assert run_cli("run", "eval.yaml", "--run-dir", "full", "--no-track", cwd=tmp_path).returncode == 0
    assert fake_llm_server.stats.requests == N
    _interrupted_copy(tmp_path / "full", tmp_path / "cut", keep=15)
    fake_llm_server.reset()
    resumed = run_cli("run", "eval.yaml", "--run-dir", "cut", "--resume", "--no-track", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert fake_llm_server.stats.requests == N - 15
    for name in ("records.jsonl", "manifest.json"):
        assert (tmp_path / "cut" / name).read_bytes() == (tmp_path / "full" / name).read_bytes()
    fake_llm_server.reset()
    again = run_cli("run", "eval.yaml", "--run-dir", "cut", "--resume", "--no-track", cwd=tmp_path)
    assert again.returncode == 0 and fake_llm_server.stats.requests == 0  # nothing left to ask


@pytest.mark.slow
def test_resume_refuses_records_that_are_not_this_runs_examples(tmp_path: Path, fake_llm_server: Any) -> None:
    """Records whose example ids do not match the run's order (here: swapped in place) are never resumed on."""
    _setup(tmp_path, fake_llm_server)
    assert run_cli("run", "eval.yaml", "--run-dir", "full", "--no-track", cwd=tmp_path).returncode == 0
    _interrupted_copy(tmp_path / "full", tmp_path / "cut", keep=10)
    lines = (tmp_path / "cut" / "records.jsonl").read_bytes().splitlines(keepends=True)
    lines[3], lines[4] = lines[4], lines[3]
    (tmp_path / "cut" / "records.jsonl").write_bytes(b"".join(lines))
    fake_llm_server.reset()
    result = run_cli("run", "eval.yaml", "--run-dir", "cut", "--resume", "--no-track", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().endswith("records.jsonl:4: does not match this run's example order; pass --overwrite")
    assert fake_llm_server.stats.requests == 0


@pytest.mark.slow
@pytest.mark.parametrize(("max_retries", "expected"), [(0, 1), (1, 2), (3, 4)])
def test_a_failing_example_costs_exactly_one_plus_max_retries_requests(
    tmp_path: Path, fake_llm_server: Any, max_retries: int, expected: int,
) -> None:
    write_jsonl(tmp_path / "data.jsonl", qa_rows(1))
    config = dummy_config(model={"type": "openai", "args": {"model_name": "gpt-test", "api_key": "k",
                                                            "base_url": fake_llm_server.openai_base_url}})
    config["runner"].update({"max_retries": max_retries, "concurrency": 1})
    write_config(tmp_path / "eval.yaml", config)
    fake_llm_server.add_fault("status", status=500, times=100)
    result = run_cli("run", "eval.yaml", "--run-dir", "out", "--no-track", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert fake_llm_server.stats.requests == expected
    assert '"status":"error"' in (tmp_path / "out" / "records.jsonl").read_text()
