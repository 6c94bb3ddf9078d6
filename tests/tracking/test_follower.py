"""`insidellms run` tracks from a process of its own that follows the run directory: the steps it
logs are the run directory's records, it survives the evaluation being killed or interrupted, a
resumed run goes on from where the records stop, and it never outlives the command."""

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
from insideLLMs.tracking._follow_listener import FOLLOW_FROM, FollowingListener
from insideLLMs.tracking.store import read_journal
from insideLLMs.tracking.store import find_runs, load_run
from insideLLMs.tracking._run_tail import RunDirTail
from support.cli import INSIDELLMS, qa_rows, run_cli, write_config, write_jsonl


def _config(tmp_path: Path, n: int, latency_ms: float = 0, concurrency: int = 4) -> Path:
    """``n`` examples; from FOLLOW_FROM on, the follower tracks the run whether or not it is ready."""
    write_jsonl(tmp_path / "data.jsonl", qa_rows(n))
    return write_config(tmp_path / "eval.yaml", {
        "model": {"type": "dummy", "args": {"model_name": "dummy", "latency_ms": latency_ms}},
        "probe": {"type": "factuality"},
        "dataset": {"format": "jsonl", "path": "data.jsonl"},
        "runner": {"concurrency": concurrency, "max_retries": 0},
        "tracking": {"backend": "local"},
    })


def _whole_lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    return data[:data.rfind(b"\n") + 1].splitlines(keepends=True)


def _start(tmp_path: Path, cfg: Path, run_dir: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([INSIDELLMS, "run", str(cfg), "--run-dir", run_dir, "--no-progress", *extra], cwd=tmp_path,
                            env={**os.environ, "NO_COLOR": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_records(path: Path, count: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if path.exists() and len(_whole_lines(path)) >= count:
            return
        if proc.poll() is not None:
            pytest.fail(f"the run ended early: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.05)
    pytest.fail("the run did not get going")


def _wait_for_status(logs: Path, status: str) -> Path:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        runs = find_runs(logs)
        if runs and load_run(runs[0]).state.status == status:
            return runs[0]
        time.sleep(0.05)
    pytest.fail(f"the tracked run never became {status!r}")


def _pid_gone(pid: int, within_s: float = 10) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _steps(run_dir: Path, name: str = "example/latency_ms") -> list[int]:
    return [s for s, _ in load_run(run_dir, series=True).state.series[name]]


def test_each_record_is_one_step_and_the_follower_is_gone_when_the_command_returns(tmp_path: Path) -> None:
    cfg = _config(tmp_path, FOLLOW_FROM)
    proc = run_cli("run", str(cfg), "--run-dir", "runs/a", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (tracked,) = find_runs(tmp_path / "tracking_logs")
    view = load_run(tracked, series=True)
    assert view.status == "finished"
    records = [json.loads(line) for line in _whole_lines(tmp_path / "runs/a/records.jsonl")]
    timings = [json.loads(line) for line in _whole_lines(tmp_path / "runs/a/timings.jsonl")]
    series = view.state.series
    assert [s for s, _ in series["example/latency_ms"]] == list(range(FOLLOW_FROM))
    assert [v for _, v in series["example/latency_ms"]] == [t["latency_ms"] for t in timings]
    assert [v for _, v in series["example/passed"]] == [float(r["passed"]) for r in records]
    assert 1.0 in dict(series["example/passed"]).values()
    assert [v for _, v in series["example/f1"]] == [r["scores"]["f1"] for r in records]
    assert (tracked / "artifacts/timings.jsonl").read_bytes() == (tmp_path / "runs/a/timings.jsonl").read_bytes()
    # report.html is only ever replaced: the tracked one is the same file, not a second copy
    assert (tracked / "artifacts/report.html").stat().st_ino == (tmp_path / "runs/a/report.html").stat().st_ino
    # the follower (the process that wrote the tracked run) ended with the command
    follower_pid = json.loads((tracked / "run.json").read_text())["pid"]
    assert _pid_gone(follower_pid)


def test_evaluation_killed_midway_leaves_a_tracked_run_ended_killed_with_what_it_wrote(tmp_path: Path) -> None:
    cfg = _config(tmp_path, FOLLOW_FROM, latency_ms=20)
    proc = _start(tmp_path, cfg, "runs/k")
    try:
        _wait_for_records(tmp_path / "runs/k/records.jsonl", 15, proc)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
    tracked = _wait_for_status(tmp_path / "tracking_logs", "killed")
    records = _whole_lines(tmp_path / "runs/k/records.jsonl")
    timings = _whole_lines(tmp_path / "runs/k/timings.jsonl")
    assert 15 <= len(records) < FOLLOW_FROM
    assert _steps(tracked) == list(range(min(len(records), len(timings))))
    journal = read_journal(tracked)
    assert journal.events[-1].kind == "run_end" and journal.events[-1].data == {"status": "killed"}
    # the files as far as they were whole, copied as they grew
    assert (tracked / "artifacts/records.jsonl").read_bytes() == b"".join(records)
    assert load_run(tracked).state.tags.get("error") == "the evaluation process ended"


def test_interrupted_then_resumed_run_is_tracked_from_where_it_stopped(tmp_path: Path) -> None:
    cfg = _config(tmp_path, FOLLOW_FROM + 100, latency_ms=20)
    proc = _start(tmp_path, cfg, "runs/r")
    try:
        _wait_for_records(tmp_path / "runs/r/records.jsonl", 10, proc)
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C: for the evaluation only, which then ends the tracking
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "--resume" in err, err
    (first,) = find_runs(tmp_path / "tracking_logs")
    assert load_run(first).status == "killed"
    done = len(_steps(first))
    assert done >= 10

    resumed = run_cli("run", str(cfg), "--run-dir", "runs/r", "--resume", cwd=tmp_path, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    second = next(r for r in find_runs(tmp_path / "tracking_logs") if r != first)
    view = load_run(second, series=True)
    assert view.status == "finished" and view.state.tags["resumed_from"] == str(done)
    assert _steps(second) == list(range(done, FOLLOW_FROM + 100))  # each record once, numbered by its line
    assert (second / "artifacts/records.jsonl").read_bytes() == (tmp_path / "runs/r/records.jsonl").read_bytes()
    assert view.state.metrics["n"] == FOLLOW_FROM + 100


def test_tracking_process_killed_midway_never_harms_the_evaluation(tmp_path: Path) -> None:
    cfg = _config(tmp_path, FOLLOW_FROM, latency_ms=10)
    proc = _start(tmp_path, cfg, "runs/t")
    try:
        _wait_for_records(tmp_path / "runs/t/records.jsonl", 10, proc)
        tracked = _wait_for_status(tmp_path / "tracking_logs", "running")
        os.kill(json.loads((tracked / "run.json").read_text())["pid"], signal.SIGKILL)
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("! tracking")]
    assert warnings == ["! tracking: the tracking process stopped (BrokenPipeError); the evaluation goes on"], err
    assert "Traceback" not in err
    assert len(_whole_lines(tmp_path / "runs/t/records.jsonl")) == FOLLOW_FROM
    assert (tmp_path / "runs/t/manifest.json").is_file() and (tmp_path / "runs/t/report.html").is_file()
    plain = run_cli("run", str(cfg), "--run-dir", "runs/plain", "--no-track", cwd=tmp_path, timeout=120)
    assert plain.returncode == 0
    assert (tmp_path / "runs/t/records.jsonl").read_bytes() == (tmp_path / "runs/plain/records.jsonl").read_bytes()


def _followers() -> list[int]:
    """Pids of follower processes now running on this machine."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and b"insideLLMs.tracking._follower" in (proc / "cmdline").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def test_small_quick_run_is_tracked_in_process_and_the_follower_stopped(tmp_path: Path) -> None:
    cfg = _config(tmp_path, 20)
    proc = _start(tmp_path, cfg, "runs/s")
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    (tracked,) = find_runs(tmp_path / "tracking_logs")
    view = load_run(tracked, series=True)
    assert view.status == "finished" and _steps(tracked) == list(range(20))
    assert json.loads((tracked / "run.json").read_text())["pid"] == proc.pid  # tracked by the command itself
    assert (tracked / "artifacts/records.jsonl").read_bytes() == (tmp_path / "runs/s/records.jsonl").read_bytes()
    deadline = time.monotonic() + 10
    while _followers() and time.monotonic() < deadline:  # the follower it started is gone
        time.sleep(0.05)
    assert _followers() == []


def test_a_ready_follower_tracks_even_a_small_run(tmp_path: Path) -> None:
    from insideLLMs import ProbeRunner, get_model, get_probe
    from insideLLMs.config import TrackingConfig

    listener = FollowingListener(TrackingConfig(output_dir=str(tmp_path / "logs")), echo=lambda _m: None)
    deadline = time.monotonic() + 30
    while not listener._ready():
        assert time.monotonic() < deadline, "the follower never got ready"
        time.sleep(0.02)
    probe = get_probe("logic")
    ProbeRunner(get_model("dummy"), probe, run_dir=tmp_path / "run", listeners=[listener]).run(
        probe.load_default_dataset().head(5))
    assert listener.close() == [] and listener.local is None
    (tracked,) = find_runs(tmp_path / "logs")
    assert load_run(tracked).status == "finished" and _steps(tracked) == [0, 1, 2, 3, 4]
    assert json.loads((tracked / "run.json").read_text())["pid"] == listener.proc.pid


def test_run_tail_hands_out_whole_pairs_once(tmp_path: Path) -> None:
    records, timings = tmp_path / "records.jsonl", tmp_path / "timings.jsonl"
    rec = [json.dumps({"status": "success", "passed": i % 2 == 0, "scores": {"f1": i / 10}, "x": [1, {"y": 2}]}) + "\n"
           for i in range(6)]
    tim = [json.dumps({"latency_ms": float(i), "example_id": f"e{i}"}) + "\n" for i in range(6)]
    records.write_text(rec[0] + rec[1])  # two examples from an earlier, resumed-from run
    timings.write_text(tim[0] + tim[1])
    copied: dict[str, list[bytes]] = {"records.jsonl": [], "timings.jsonl": []}
    tail = RunDirTail(tmp_path, first_step=2, sinks={k: v.append for k, v in copied.items()})
    assert tail.poll() == []  # the earlier lines are copied, not handed out

    with open(records, "a") as r, open(timings, "a") as t:
        r.write(rec[2] + rec[3][:10])  # a torn line: not yet
        r.flush()
        t.write(tim[2])
        t.flush()
        [ex] = tail.poll()
        assert (ex.step, ex.record.passed, ex.record.scores, ex.timing.latency_ms) == (2, True, {"f1": 0.2}, 2.0)
        r.write(rec[3][10:] + rec[4])
        r.flush()
        assert tail.poll() == []  # no timing for them yet
        t.write(tim[3] + tim[4] + tim[5])
        t.flush()
        assert [e.step for e in tail.poll()] == [3, 4]
        r.write(rec[5])
    assert [(e.step, e.timing.latency_ms) for e in tail.poll()] == [(5, 5.0)]
    assert tail.poll() == []
    tail.close()
    assert b"".join(copied["records.jsonl"]) == records.read_bytes()
    assert b"".join(copied["timings.jsonl"]) == timings.read_bytes()


class _Recorder:
    """A listener that reads examples from the run directory itself, and notes what it is told."""

    wants_examples = False

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def on_run_started(self, event: RunStarted) -> None:
        self.calls.append(("started", None))

    def on_example_finished(self, event: ExampleFinished) -> None:
        self.calls.append(("example", event.step))

    def on_run_ending(self, event: RunFinished) -> None:
        assert event.run_dir is not None
        self.calls.append(("ending", (sorted(event.artifacts), (event.run_dir / "report.html").exists())))

    def on_run_finished(self, event: RunFinished) -> None:
        self.calls.append(("finished", sorted(event.artifacts)))


def test_runner_tells_a_following_listener_no_examples_and_the_end_before_the_report(tmp_path: Path) -> None:
    from insideLLMs import ProbeRunner, get_model, get_probe

    recorder = _Recorder()
    probe = get_probe("logic")
    ProbeRunner(get_model("dummy"), probe, run_dir=tmp_path / "run", listeners=[recorder]).run(
        probe.load_default_dataset().head(5))
    files = ["config.resolved.yaml", "manifest.json", "records.jsonl", "summary.json", "timings.jsonl"]
    assert recorder.calls == [("started", None), ("ending", (files, False)), ("finished", sorted([*files, "report.html"]))]


def test_no_tracking_process_falls_back_to_tracking_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from insideLLMs import ProbeRunner, get_model, get_probe
    from insideLLMs.config import TrackingConfig
    from insideLLMs.tracking._follow_listener import start_tracking
    from insideLLMs.tracking._listener import TrackingListener

    def no_processes(*_args: object, **_kwargs: object) -> None:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(subprocess, "Popen", no_processes)
    messages: list[str] = []
    listener = start_tracking(TrackingConfig(output_dir=str(tmp_path / "logs")), echo=messages.append)
    assert isinstance(listener, TrackingListener)
    assert messages == ["! tracking: cannot start the tracking process ([Errno 11] Resource temporarily unavailable); "
                        "tracking in the evaluation's process"]
    probe = get_probe("logic")
    ProbeRunner(get_model("dummy"), probe, run_dir=tmp_path / "run", listeners=[listener]).run(
        probe.load_default_dataset().head(3))
    listener.close()
    (tracked,) = find_runs(tmp_path / "logs")
    assert load_run(tracked).status == "finished" and _steps(tracked) == [0, 1, 2]
