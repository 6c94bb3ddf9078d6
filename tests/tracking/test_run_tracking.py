"""`insidellms run` tracks a run in its own process, the same way for every run size: the steps it
logs are the run directory's records, a killed evaluation leaves a tracked run shown as killed
(and `tracking sync` brings it up to what the run directory holds), a resumed run goes on from
where the records stop, and a tracking failure never touches the evaluation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from insideLLMs.events import ExampleFinished, RunFinished, RunStarted
from insideLLMs.tracking.store import find_runs, load_run, read_journal
from support.cli import INSIDELLMS, qa_rows, run_cli, write_config, write_jsonl, sigint_as_in_a_terminal


def _config(tmp_path: Path, n: int, latency_ms: float = 0, concurrency: int = 4, **tracking: Any) -> Path:
    write_jsonl(tmp_path / "data.jsonl", qa_rows(n))
    return write_config(tmp_path / "eval.yaml", {
        "model": {"type": "dummy", "args": {"model_name": "dummy", "latency_ms": latency_ms}},
        "probe": {"type": "factuality"},
        "dataset": {"format": "jsonl", "path": "data.jsonl"},
        "runner": {"concurrency": concurrency, "max_retries": 0},
        "tracking": {"backend": "local", **tracking},
    })


def _whole_lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    return data[:data.rfind(b"\n") + 1].splitlines(keepends=True)


def _start(tmp_path: Path, cfg: Path, run_dir: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([INSIDELLMS, "run", str(cfg), "--run-dir", run_dir, "--no-progress", *extra], cwd=tmp_path,
                            env={**os.environ, "NO_COLOR": "1"}, preexec_fn=sigint_as_in_a_terminal, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_records(path: Path, count: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if path.exists() and len(_whole_lines(path)) >= count:
            return
        if proc.poll() is not None:
            pytest.fail(f"the run ended early: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.05)
    pytest.fail("the run did not get going")


def _steps(run_dir: Path, name: str = "example/latency_ms") -> list[int]:
    return [s for s, _ in load_run(run_dir, series=True).state.series.get(name, [])]


def _wait_for_steps(logs: Path, count: int, proc: subprocess.Popen[str]) -> Path:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs = find_runs(logs)
        if runs and len(_steps(runs[0])) >= count:
            return runs[0]
        if proc.poll() is not None:
            pytest.fail(f"the run ended early: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.05)
    pytest.fail("no steps reached the journal")


@pytest.mark.parametrize("n", [5, 600])
def test_each_record_is_one_step_whatever_the_run_size(tmp_path: Path, n: int) -> None:
    cfg = _config(tmp_path, n)
    proc = _start(tmp_path, cfg, "runs/a")
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    (tracked,) = find_runs(tmp_path / "tracking_logs")
    view = load_run(tracked, series=True)
    assert view.status == "finished"
    assert json.loads((tracked / "run.json").read_text())["pid"] == proc.pid  # tracked by the command itself
    records = [json.loads(line) for line in _whole_lines(tmp_path / "runs/a/records.jsonl")]
    timings = [json.loads(line) for line in _whole_lines(tmp_path / "runs/a/timings.jsonl")]
    series = view.state.series
    assert [s for s, _ in series["example/latency_ms"]] == list(range(n))
    assert [v for _, v in series["example/latency_ms"]] == [t["latency_ms"] for t in timings]
    assert [v for _, v in series["example/passed"]] == [float(r["passed"]) for r in records] and 1.0 in dict(series["example/passed"]).values()
    assert [v for _, v in series["example/f1"]] == [r["scores"]["f1"] for r in records]
    for name in ("records.jsonl", "timings.jsonl", "summary.json"):
        assert (tracked / "artifacts" / name).read_bytes() == (tmp_path / "runs/a" / name).read_bytes()
    # report.html is only ever replaced: the tracked one is the same file, not a second copy
    assert (tracked / "artifacts/report.html").stat().st_ino == (tmp_path / "runs/a/report.html").stat().st_ino


@pytest.mark.slow
def test_evaluation_killed_shows_killed_with_its_duration_and_sync_brings_it_up_to_the_run_directory(tmp_path: Path) -> None:
    cfg = _config(tmp_path, 2000, latency_ms=5)
    proc = _start(tmp_path, cfg, "runs/k")
    try:
        tracked = _wait_for_steps(tmp_path / "tracking_logs", 20, proc)
        time.sleep(0.3)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
    steps = _steps(tracked)
    assert len(steps) >= 20 and steps == list(range(len(steps)))  # every step that reached the journal, in order
    view = load_run(tracked)
    assert view.status == "killed" and view.state.status == "running"  # told by the dead pid, at read time
    assert view.ended_at is not None and view.ended_at >= read_journal(tracked).events[-1].ts
    assert view.duration_s is not None and view.duration_s > 0.1  # not the 0.0 s of a run that never said it ended

    shown = run_cli("tracking", "show", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in shown.stdout.splitlines()
            if line.count("│") >= 3}
    assert rows["status"] == "killed" and rows["ended"] != "—" and rows["duration"] not in ("—", "0.0s"), shown.stdout
    listed = run_cli("tracking", "list", cwd=tmp_path)
    assert "killed" in listed.stdout and "running" not in listed.stdout, listed.stdout

    # sync ends it for good, with every record the run directory holds as steps and artifacts
    synced = run_cli("tracking", "sync", str(tracked), cwd=tmp_path)
    assert synced.returncode == 0, synced.stderr
    records = _whole_lines(tmp_path / "runs/k/records.jsonl")
    timings = _whole_lines(tmp_path / "runs/k/timings.jsonl")
    assert len(records) > len(steps) - 1
    assert _steps(tracked) == list(range(min(len(records), len(timings))))
    assert [v for _, v in load_run(tracked, series=True).state.series["example/latency_ms"]] == [
        json.loads(t)["latency_ms"] for t in timings[:len(records)]]
    assert (tracked / "artifacts/records.jsonl").read_bytes() == b"".join(records)
    journal = read_journal(tracked)
    assert journal.events[-1].kind == "run_end" and journal.events[-1].data == {"status": "killed"}
    assert load_run(tracked).ended_at == view.ended_at  # when it died, not when it was synced
    again = run_cli("tracking", "sync", str(tracked), cwd=tmp_path)  # nothing more to add
    assert again.returncode == 0 and read_journal(tracked).last_seq == journal.last_seq


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code", "said"), [
    (signal.SIGINT, 130, "interrupted; continue with: insidellms run"),  # Ctrl-C
    (signal.SIGTERM, 143, "terminated (SIGTERM); continue with: insidellms run"),  # timeout, Kubernetes, Slurm, CI
])
def test_interrupted_then_resumed_run_is_tracked_from_where_it_stopped(
    tmp_path: Path, signum: int, code: int, said: str,
) -> None:
    total = 600
    cfg = _config(tmp_path, total, latency_ms=20)
    proc = _start(tmp_path, cfg, "runs/r")
    try:
        _wait_for_records(tmp_path / "runs/r/records.jsonl", 10, proc)
    finally:
        proc.send_signal(signum)  # the evaluation stops cleanly and ends its tracked run
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == code and said in err and "--run-dir runs/r --resume" in err, err
    assert "Traceback" not in err
    assert (tmp_path / "runs/r/.incomplete").exists()
    (first,) = find_runs(tmp_path / "tracking_logs")
    assert load_run(first).status == "interrupted"
    assert json.loads((first / "run.json").read_text())["status"] == "interrupted"
    done = len(_steps(first))
    assert done >= 10 and done == len(_whole_lines(tmp_path / "runs/r/records.jsonl"))

    resumed = run_cli("run", str(cfg), "--run-dir", "runs/r", "--resume", cwd=tmp_path, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    second = next(r for r in find_runs(tmp_path / "tracking_logs") if r != first)
    view = load_run(second, series=True)
    assert view.status == "finished" and view.state.tags["resumed_from"] == str(done)
    assert _steps(second) == list(range(done, total))  # each record once, numbered by its line
    assert (second / "artifacts/records.jsonl").read_bytes() == (tmp_path / "runs/r/records.jsonl").read_bytes()
    assert view.state.metrics["n"] == total


def test_tracking_that_cannot_work_never_harms_the_evaluation(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the tracking folder should go")
    cfg = _config(tmp_path, 30, output_dir=str(blocker))
    proc = run_cli("run", str(cfg), "--run-dir", "runs/t", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1 and warnings[0].startswith("! tracking: "), proc.stderr
    assert warnings[0].endswith("the evaluation goes on")
    plain = run_cli("run", str(cfg), "--run-dir", "runs/plain", "--no-track", cwd=tmp_path)
    assert plain.returncode == 0
    for name in ("records.jsonl", "manifest.json", "summary.json", "config.resolved.yaml"):
        tracked_bytes, plain_bytes = (tmp_path / "runs/t" / name).read_bytes(), (tmp_path / "runs/plain" / name).read_bytes()
        if name == "summary.json":  # its "volatile" section holds timings
            tracked_bytes, plain_bytes = (json.loads(b)["groups"] for b in (tracked_bytes, plain_bytes))
        assert tracked_bytes == plain_bytes, name
    assert sorted(p.name for p in (tmp_path / "runs/t").iterdir()) == sorted(p.name for p in (tmp_path / "runs/plain").iterdir())


class _Recorder:
    """A listener that notes what the runner tells it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def on_run_started(self, event: RunStarted) -> None:
        self.calls.append(("started", event.total))

    def on_example_finished(self, event: ExampleFinished) -> None:
        self.calls.append(("example", event.step))

    def on_run_finished(self, event: RunFinished) -> None:
        assert event.run_dir is not None
        self.calls.append(("finished", (sorted(event.artifacts), (event.run_dir / "report.html").exists())))


def test_runner_tells_a_listener_its_start_each_example_and_its_end_once_every_file_is_written(tmp_path: Path) -> None:
    from insideLLMs import ProbeRunner, get_model, get_probe

    recorder = _Recorder()
    probe = get_probe("logic")
    ProbeRunner(get_model("dummy"), probe, run_dir=tmp_path / "run", listeners=[recorder]).run(
        probe.load_default_dataset().head(3))
    files = ["config.resolved.yaml", "manifest.json", "records.jsonl", "report.html", "summary.json", "timings.jsonl"]
    assert recorder.calls == [("started", 3), ("example", 0), ("example", 1), ("example", 2), ("finished", (files, True))]
