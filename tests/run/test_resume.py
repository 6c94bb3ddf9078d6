"""Crash safety: kill -9 mid-run, then --resume gives the same bytes as an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from support.cli import INSIDELLMS, dummy_config, qa_rows, run_cli, write_config, write_jsonl, sigint_as_in_a_terminal

N = 600


def _setup(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "data.jsonl", qa_rows(N))
    config = dummy_config(model={"type": "dummy", "args": {"latency_ms": 10, "fail_every": 9}})
    config["runner"]["concurrency"] = 4
    write_config(tmp_path / "eval.yaml", config)


def _kill_when(run_dir: Path, proc: subprocess.Popen[bytes], min_lines: int) -> int:
    deadline = time.monotonic() + 60
    records = run_dir / "records.jsonl"
    while time.monotonic() < deadline:
        if records.exists() and records.read_bytes().count(b"\n") >= min_lines:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return records.read_bytes().count(b"\n")
        if proc.poll() is not None:
            break
        time.sleep(0.01)
    raise AssertionError("the run finished or stalled before it could be killed")


@pytest.mark.slow
def test_kill_9_then_resume_is_byte_identical(tmp_path: Path) -> None:
    _setup(tmp_path)
    assert run_cli("run", "eval.yaml", "--run-dir", "full", "--no-track", cwd=tmp_path).returncode == 0

    proc = subprocess.Popen([INSIDELLMS, "run", "eval.yaml", "--run-dir", "crashed", "--no-track"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kept = _kill_when(tmp_path / "crashed", proc, min_lines=100)
    assert kept < N
    crashed = tmp_path / "crashed"
    assert (crashed / ".incomplete").exists() and not (crashed / "manifest.json").exists()
    # simulate a torn write on top of the kill: half a record at the end
    with open(crashed / "records.jsonl", "ab") as fh:
        fh.write(b'{"run_id": "torn')

    refused = run_cli("run", "eval.yaml", "--run-dir", "crashed", "--no-track", cwd=tmp_path)
    assert refused.returncode == 1 and "--resume" in refused.stderr

    resumed = run_cli("run", "eval.yaml", "--run-dir", "crashed", "--resume", "--no-track", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    for name in ("records.jsonl", "manifest.json"):
        assert (crashed / name).read_bytes() == (tmp_path / "full" / name).read_bytes(), name
    summaries = [orjson.loads((d / "summary.json").read_bytes()) for d in (crashed, tmp_path / "full")]
    for s in summaries:
        s.pop("volatile")
    assert summaries[0] == summaries[1]
    assert (crashed / "timings.jsonl").read_bytes().count(b"\n") == N
    assert not (crashed / ".incomplete").exists()


@pytest.mark.slow
def test_resume_refuses_a_different_config(tmp_path: Path) -> None:
    _setup(tmp_path)
    proc = subprocess.Popen([INSIDELLMS, "run", "eval.yaml", "--run-dir", "crashed", "--no-track"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _kill_when(tmp_path / "crashed", proc, min_lines=20)
    write_config(tmp_path / "other.yaml", dummy_config(generation={"temperature": 0.5}))
    result = run_cli("run", "other.yaml", "--run-dir", "crashed", "--resume", "--no-track", cwd=tmp_path)
    assert result.returncode == 1
    assert "this config gives run" in result.stderr and "--overwrite" in result.stderr


@pytest.mark.slow
def test_ctrl_c_exits_130_and_the_run_resumes(tmp_path: Path) -> None:
    _setup(tmp_path)
    proc = subprocess.Popen([INSIDELLMS, "run", "eval.yaml", "--run-dir", "stopped", "--no-track"], cwd=tmp_path,
                            preexec_fn=sigint_as_in_a_terminal,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    records = tmp_path / "stopped" / "records.jsonl"
    deadline = time.monotonic() + 60
    while not (records.exists() and records.read_bytes().count(b"\n") >= 50) and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in err
    assert "interrupted; continue with: insidellms run eval.yaml --run-dir stopped --resume" in err
    assert (tmp_path / "stopped" / ".incomplete").exists()
    resumed = run_cli("run", "eval.yaml", "--run-dir", "stopped", "--resume", "--no-track", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.count("factuality") == 1
    assert records.read_bytes().count(b"\n") == N
