"""`insidellms run` against a real (fake-but-real) OpenAI-compatible server: retries, timeouts, early stops."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from support.cli import qa_rows, run_cli, write_config, write_jsonl


def _config(tmp_path: Path, base_url: str, **runner: object) -> None:
    write_jsonl(tmp_path / "data.jsonl", qa_rows(12))
    write_config(tmp_path / "eval.yaml", {
        "model": {"type": "openai", "args": {"model_name": "fake-gpt", "base_url": base_url, "api_key": "${FAKE_KEY:-test-key}"}},
        "probe": {"type": "factuality"},
        "dataset": {"path": "data.jsonl"},
        "generation": {"temperature": 0, "max_tokens": 32},
        "runner": {"concurrency": 4, "max_retries": 3, "timeout_s": 30, **runner},
    })


def _records(run_dir: Path) -> list[dict]:
    return [orjson.loads(line) for line in (run_dir / "records.jsonl").read_bytes().splitlines()]


@pytest.mark.slow
def test_rate_limits_and_server_errors_are_retried_to_success(tmp_path: Path, fake_llm_server) -> None:  # noqa: ANN001
    fake_llm_server.configure(answers={"What is 3 plus 3?": "6"})
    fake_llm_server.add_fault("status", status=429, retry_after="1", times=2, match="What is 3 plus 3?")
    fake_llm_server.add_fault("status", status=500, times=1, match="What is 5 plus 5?")
    fake_llm_server.add_fault("malformed", times=1, match="What is 7 plus 7?")
    _config(tmp_path, fake_llm_server.openai_base_url)
    result = run_cli("run", "eval.yaml", "--run-dir", "out", "--no-track", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    records = _records(tmp_path / "out")
    assert all(r["status"] == "success" for r in records)
    three = next(r for r in records if r["example_id"] == "q00003")
    assert (three["output"], three["passed"], three["served_model"], three["system_fingerprint"]) == ("6", True, "fake-gpt", "fp_fake0001")
    timings = {t["example_id"]: t for t in map(orjson.loads, (tmp_path / "out/timings.jsonl").read_bytes().splitlines())}
    assert timings["q00003"]["attempts"] == 3 and timings["q00003"]["latency_ms"] >= 2000  # waited Retry-After twice
    assert timings["q00005"]["attempts"] == 2 and timings["q00007"]["attempts"] == 2
    assert timings["q00001"]["attempts"] == 1


@pytest.mark.slow
def test_a_hanging_request_times_out_into_a_record(tmp_path: Path, fake_llm_server) -> None:  # noqa: ANN001
    fake_llm_server.add_fault("hang", times=None, match="What is 2 plus 2?")
    _config(tmp_path, fake_llm_server.openai_base_url, timeout_s=0.5, max_retries=1)
    result = run_cli("run", "eval.yaml", "--run-dir", "out", "--no-track", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    hung = next(r for r in _records(tmp_path / "out") if r["example_id"] == "q00002")
    assert hung["status"] == "timeout" and hung["error"] == {"type": "ModelTimeout", "message": "no answer within 0.5 s"}
    assert sum(r["status"] == "success" for r in _records(tmp_path / "out")) == 11


def test_wrong_api_key_stops_the_run_at_once(tmp_path: Path, fake_llm_server) -> None:  # noqa: ANN001
    fake_llm_server.configure(api_key="the-right-key")
    _config(tmp_path, fake_llm_server.openai_base_url)
    result = run_cli("run", "eval.yaml", "--run-dir", "out", "--no-track", cwd=tmp_path, env={"FAKE_KEY": "a-wrong-key"})
    assert result.returncode == 1
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("error: run stopped after 0 of 12 examples:")
    assert fake_llm_server.stats.requests <= 4  # at most the requests already in flight, no retries
    assert "a-wrong-key" not in line


@pytest.mark.slow
def test_unreachable_endpoint_stops_the_run(tmp_path: Path, closed_port_url: str) -> None:
    _config(tmp_path, closed_port_url, max_retries=1)
    result = run_cli("run", "eval.yaml", "--run-dir", "out", "--no-track", cwd=tmp_path)
    assert result.returncode == 1
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("error: run stopped after 0 of 12 examples:")
    assert closed_port_url.split("//")[1].split("/")[0] in line and "--resume" in line
    assert not (tmp_path / "out/manifest.json").exists()
