"""Tracking faults during `insidellms run`: whatever happens to the tracking, the evaluation finishes with
the same run directory as an untracked run, exit 0, and at most one `!` line saying what to do; what was
not delivered reaches the backend later with `tracking sync`, each step once.
The table of these cases and their outcomes is docs/reliability.md."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from insideLLMs.tracking.store import find_runs, load_run
from support.cli import INSIDELLMS, qa_rows, run_cli, write_config, write_jsonl


def _config(root: Path, n: int, tracking: dict[str, Any], latency_ms: float = 5) -> Path:
    write_jsonl(root / "data.jsonl", qa_rows(n))
    return write_config(root / "eval.yaml", {
        "model": {"type": "dummy", "args": {"model_name": "dummy", "latency_ms": latency_ms}},
        "probe": {"type": "factuality"},
        "dataset": {"format": "jsonl", "path": "data.jsonl"},
        "runner": {"concurrency": 4, "max_retries": 0},
        "tracking": {"output_dir": "tracking_logs", **tracking},
    })


def _start(root: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([INSIDELLMS, "run", "eval.yaml", "--run-dir", "out", "--no-progress"], cwd=root,
                            env={**os.environ, "NO_COLOR": "1", **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for_records(run_dir: Path, count: int, proc: subprocess.Popen[str]) -> None:
    records = run_dir / "records.jsonl"
    deadline = time.monotonic() + 60
    while not (records.exists() and records.read_bytes().count(b"\n") >= count):
        assert proc.poll() is None, "the run ended before the fault"
        assert time.monotonic() < deadline, "the run did not get going"
        time.sleep(0.01)


def _at_most_one_warning(stderr: str) -> list[str]:
    """The one `!` warning, if any, with its indented hint lines joined to it."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr and all(line.startswith(("! ", "  ")) for line in lines), stderr
    warnings = "\n".join(lines).replace("\n  ", " ").splitlines()
    assert len(warnings) <= 1, stderr
    return warnings


def _same_as_untracked(root: Path) -> None:
    untracked = run_cli("run", "eval.yaml", "--run-dir", "plain", "--no-track", cwd=root)
    assert untracked.returncode == 0, untracked.stderr
    for name in ("records.jsonl", "manifest.json"):
        assert (root / "out" / name).read_bytes() == (root / "plain" / name).read_bytes(), name
    assert not (root / "out" / ".incomplete").exists()


@pytest.mark.slow
def test_the_tracking_folder_deleted_mid_run_never_breaks_the_run(tmp_path: Path) -> None:
    _config(tmp_path, 300, {"backend": "local"})
    proc = _start(tmp_path)
    _wait_for_records(tmp_path / "out", 30, proc)
    shutil.rmtree(tmp_path / "tracking_logs")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    (warning,) = _at_most_one_warning(err)
    assert warning.startswith("! tracking: ") and "was deleted during the run, so it is not tracked" in warning
    assert not (tmp_path / "tracking_logs").exists()  # no half-made folder that no command could read
    _same_as_untracked(tmp_path)
    pushed = run_cli("tracking", "push", "out", "--backend", "local", cwd=tmp_path)  # what the warning says to do
    assert pushed.returncode == 0, pushed.stderr
    [tracked] = find_runs(tmp_path / "tracking_logs")
    assert load_run(tracked).status == "finished"
    assert (tracked / "artifacts/records.jsonl").read_bytes() == (tmp_path / "out/records.jsonl").read_bytes()


@pytest.mark.slow
def test_mlflow_killed_mid_run_then_sync_delivers_every_step_once(
    tmp_path: Path, mlflow_server: Any, mlflow_env: dict[str, str],
) -> None:
    from mlflow.tracking import MlflowClient

    n = 400
    _config(tmp_path, n, {"backend": "mlflow", "tracking_uri": mlflow_server.url, "experiment_name": "killed",
                          "flush_timeout_s": 2}, latency_ms=10)
    proc = _start(tmp_path, env=mlflow_env)
    try:
        _wait_for_records(tmp_path / "out", 40, proc)
        mlflow_server.kill()
        _, err = proc.communicate(timeout=120)
    finally:
        mlflow_server.start()
    assert proc.returncode == 0, err
    (warning,) = _at_most_one_warning(err)
    assert "insidellms tracking sync" in warning
    _same_as_untracked(tmp_path)

    synced = run_cli("tracking", "sync", "tracking_logs", cwd=tmp_path, env=mlflow_env)
    assert synced.returncode == 0, synced.stderr + synced.stdout
    client = MlflowClient(mlflow_server.url)
    [run] = client.search_runs([client.get_experiment_by_name("killed").experiment_id])
    steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "example/latency_ms"))
    assert steps == list(range(n))  # each example once: none lost at the kill, none sent twice after it
    assert run.info.status == "FINISHED"
