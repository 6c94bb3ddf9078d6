"""Background delivery to remote sinks and `tracking sync`: never blocks, never loses, never duplicates.

The sink here is the test double in tests/support/tracking_sinks.py (our Sink interface, writing JSONL);
the real MLflow/W&B/TensorBoard sinks are tested against real backends in their own test files.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from insideLLMs.cli.tracking import tracking
from insideLLMs.tracking import get_tracker
from insideLLMs.tracking.store import read_journal
from insideLLMs.tracking.delivery import delivery_status, sync
from insideLLMs.tracking.delivery import DeliveryMark
from support.tracking_sinks import BACKEND, delivered, receipts

TESTS_DIR = Path(__file__).parents[1]  # tests/: where support/ is


def _journal_view(run_dir: Path) -> list[dict]:
    return [{"seq": e.seq, "kind": e.kind, "data": e.data} for e in read_journal(run_dir).events]


def _tracked_run(tmp_path: Path, sink_dir: Path, steps: int = 50, **options) -> tuple[object, list[str]]:
    messages: list[str] = []
    tracker = get_tracker(["local", BACKEND], output_dir=str(tmp_path / "logs"), log_dir=str(sink_dir),
                          echo=messages.append, **options)
    with tracker.start_run(name="delivered", params={"model": "dummy"}) as run:
        for step in range(steps):
            tracker.log_metrics({"latency_ms": step * 1.0, "success": 1}, step=step)
        tracker.log_artifact("results", {"ok": True})
    return run, messages


def test_healthy_sink_gets_every_event_once(tmp_path: Path, sink_dir: Path) -> None:
    run, messages = _tracked_run(tmp_path, sink_dir, steps=2500)
    assert delivered(sink_dir, run.dir) == _journal_view(run.dir)
    assert max(len(batch) for batch in receipts(sink_dir, run.dir)) <= 1000  # batched
    mark = DeliveryMark.load(run.dir, "jsonl")
    assert mark is not None and mark.delivered_seq == read_journal(run.dir).last_seq
    assert mark.state["remote_run"] == run.dir.name and mark.state["closed"] is True
    assert mark.options["log_dir"] == str(sink_dir)
    assert messages == [f"jsonl: file://{sink_dir / (run.dir.name + '.jsonl')}"]
    assert json.loads((run.dir / "run.json").read_text())["backends"] == ["local", BACKEND]


@pytest.mark.slow
def test_sink_down_for_the_whole_run_then_sync(tmp_path: Path, sink_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (sink_dir / "FAIL").touch()
    # a failing sink ends delivery at its first attempt; the generous limit is for a loaded machine
    run, messages = _tracked_run(tmp_path, sink_dir, steps=1200, flush_timeout_s=30.0)
    total = read_journal(run.dir).last_seq
    rel = f"logs/{run.dir.name}"
    assert messages == [
        f"! jsonl: {total:,} events not delivered (server unreachable); they are kept in {rel}\n"
        f"  deliver them later with: insidellms tracking sync {rel}"
    ]
    assert delivered(sink_dir, run.dir) == []
    (status,) = delivery_status(tmp_path / "logs")
    (sink,) = status.sinks
    assert (sink.delivered, sink.pending, sink.last_error, sink.state) == (0, total, "server unreachable", "failing")
    assert sink.failures >= 1

    # still down: sync reports, exits 1, loses nothing
    result = CliRunner().invoke(tracking, ["sync", str(tmp_path / "logs")])
    assert result.exit_code == 1 and f"{total:,} still pending" in result.output

    (sink_dir / "FAIL").unlink()
    result = CliRunner().invoke(tracking, ["sync", str(tmp_path / "logs")])
    assert result.exit_code == 0, result.output
    assert f"{total:,} events delivered; nothing pending" in result.output
    assert delivered(sink_dir, run.dir) == _journal_view(run.dir)
    result = CliRunner().invoke(tracking, ["sync", str(tmp_path / "logs")])
    assert result.exit_code == 0 and "nothing to deliver" in result.output
    assert delivered(sink_dir, run.dir) == _journal_view(run.dir)
    assert sum(len(b) for b in receipts(sink_dir, run.dir)) == total  # sent exactly once in all
    (status,) = delivery_status(run.dir)
    assert status.sinks[0].pending == 0 and status.sinks[0].state == "delivered"


@pytest.mark.slow
def test_hanging_sink_does_not_stall_the_run(tmp_path: Path, sink_dir: Path) -> None:
    (sink_dir / "HANG").touch()
    run, messages = _tracked_run(tmp_path, sink_dir, steps=100, flush_timeout_s=0.5)
    assert "still sending after 0.5 s" in messages[0]  # the run stopped waiting at its time limit
    assert "closed" not in DeliveryMark.load(run.dir, "jsonl").state  # abandoned, not closed
    (sink_dir / "HANG").unlink()  # the abandoned delivery may now finish; sync completes the rest
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if sync(run.dir)[0].note != "busy: another process is delivering":
            break
        time.sleep(0.1)
    assert delivered(sink_dir, run.dir) == _journal_view(run.dir)


def test_sink_that_cannot_be_built_never_raises(tmp_path: Path, sink_dir: Path) -> None:
    (sink_dir / "FATAL_INIT").touch()
    run, messages = _tracked_run(tmp_path, sink_dir, steps=10)
    assert "bad configuration" in messages[0]
    mark = DeliveryMark.load(run.dir, "jsonl")
    assert mark is not None and mark.gave_up and mark.delivered_seq == 0
    (sink_dir / "FATAL_INIT").unlink()
    sync(run.dir)  # fixed configuration: sync delivers everything
    assert delivered(sink_dir, run.dir) == _journal_view(run.dir)


@pytest.mark.slow
def test_sink_recovers_during_the_run(tmp_path: Path, sink_dir: Path) -> None:
    (sink_dir / "FAIL").touch()
    messages: list[str] = []
    tracker = get_tracker(["local", BACKEND], output_dir=str(tmp_path / "logs"), log_dir=str(sink_dir),
                          echo=messages.append, flush_timeout_s=20)
    with tracker.start_run() as run:
        tracker.log_metrics({"a": 1}, step=0)
        time.sleep(1.0)  # a few failed attempts
        (sink_dir / "FAIL").unlink()
        tracker.log_metrics({"a": 2}, step=1)
    assert delivered(sink_dir, run.dir) == _journal_view(run.dir)
    assert DeliveryMark.load(run.dir, "jsonl").failures >= 1
    assert not any(m.startswith("!") for m in messages)


def test_sync_adds_a_backend_to_a_local_only_run(tmp_path: Path, sink_dir: Path) -> None:
    tracker = get_tracker("local", output_dir=str(tmp_path / "logs"))
    with tracker.start_run(name="local only") as run:
        tracker.log_metrics({"a": 1}, step=0)
    result = CliRunner().invoke(
        tracking, ["sync", str(run.dir), "--backend", BACKEND, "--log-dir", str(sink_dir)]
    )
    assert result.exit_code == 0, result.output
    assert delivered(sink_dir, run.dir) == _journal_view(run.dir)


SYNC_SCRIPT = """
import sys
sys.path.insert(0, sys.argv[2])
from insideLLMs.tracking.delivery import sync
sync(sys.argv[1])
"""


@pytest.mark.slow
def test_sync_killed_midway_and_rerun_delivers_exactly_once(tmp_path: Path, sink_dir: Path) -> None:
    (sink_dir / "FAIL").touch()
    run, _ = _tracked_run(tmp_path, sink_dir, steps=6000, flush_timeout_s=0.2)
    total = read_journal(run.dir).last_seq
    (sink_dir / "FAIL").unlink()
    (sink_dir / "SLOW").touch()  # 0.2 s per 1000-event batch: time to kill it in the middle
    proc = subprocess.Popen([sys.executable, "-c", SYNC_SCRIPT, str(run.dir), str(TESTS_DIR)])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(delivered(sink_dir, run.dir)) < 2000:
            time.sleep(0.02)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    got = len(delivered(sink_dir, run.dir))
    assert 0 < got < total
    (sink_dir / "SLOW").unlink()
    sync(run.dir)
    assert delivered(sink_dir, run.dir) == _journal_view(run.dir)
    sent = [seq for batch in receipts(sink_dir, run.dir) for seq in batch]
    assert len(sent) - len(set(sent)) <= 1000  # at most the batch in flight at the kill is re-sent
    assert sorted(set(sent)) == list(range(1, total + 1))


def test_status_cli(tmp_path: Path, sink_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (sink_dir / "FAIL").touch()
    # an unreachable sink ends delivery after its first failed attempt, so the generous limit costs nothing; a short
    # one could end the run before a loaded machine had started the delivery child (status: "pending")
    run, _ = _tracked_run(tmp_path, sink_dir, steps=5, flush_timeout_s=60)
    total = read_journal(run.dir).last_seq
    monkeypatch.setenv("COLUMNS", "100")  # the narrowest table the CLI draws: the run's key stays whole
    narrow = CliRunner().invoke(tracking, ["status", str(tmp_path / "logs")])
    assert narrow.exit_code == 0 and any(run.dir.name in line for line in narrow.output.splitlines())
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(tracking, ["status", str(tmp_path / "logs")])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if run.dir.name in line)
    cells = [c.strip() for c in row.split("│")]
    assert cells[1:-1] == [run.dir.name, "delivered", "finished", str(total), "jsonl", "0", str(total), "1", "failing",
                           "server unreachable"]
    assert "server unreachable" in result.output


def test_unreachable_sink_costs_one_attempt_not_the_flush_timeout(tmp_path: Path, sink_dir: Path) -> None:
    (sink_dir / "FAIL").touch()
    run, messages = _tracked_run(tmp_path, sink_dir, steps=100, flush_timeout_s=60)
    assert "server unreachable" in messages[0] and "insidellms tracking sync" in messages[0]
    # the sink failed again after the end, so delivery stopped (and closed the sink) by itself,
    # without waiting for the 60 s time limit, which would have abandoned it unclosed
    assert DeliveryMark.load(run.dir, "jsonl").state.get("closed") is True


def test_delivery_runs_in_a_child_that_gets_secrets_on_stdin_and_exits(tmp_path: Path, sink_dir: Path) -> None:
    secret = "sk-proj-Ab3dEf6hIj9kLmN0pQrStUvWxYz123456"
    tracker = get_tracker(["local", BACKEND], output_dir=str(tmp_path / "logs"), log_dir=str(sink_dir),
                          echo=lambda _m: None, tracking_uri=f"http://user:{secret}@127.0.0.1:9")
    with tracker.start_run(name="child") as run:
        deadline = time.monotonic() + 20
        while run._delivery.proc is None and time.monotonic() < deadline:  # started in the background
            time.sleep(0.02)
        proc = run._delivery.proc
        assert proc is not None and proc.pid != os.getpid()
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[1:4] == [b"-m", b"insideLLMs.tracking.delivery._process", str(run.dir).encode()]
        assert secret.encode() not in b" ".join(cmdline)
        tracker.log_metrics({"a": 1.0}, step=0)
    assert proc.poll() is not None  # gone once the run has ended
    assert delivered(sink_dir, run.dir) == _journal_view(run.dir)
    for path in run.dir.rglob("*"):  # nothing in the run folder holds the secret
        assert path.is_dir() or secret.encode() not in path.read_bytes(), path


def test_no_delivery_process_while_the_server_refuses_connections(tmp_path: Path) -> None:
    """MLflow at a port nobody listens on: the evaluation notes why and never starts a child for it."""
    messages: list[str] = []
    port = _free_port()
    tracker = get_tracker("mlflow", output_dir=str(tmp_path / "logs"), tracking_uri=f"http://127.0.0.1:{port}",
                          echo=messages.append, flush_timeout_s=5)
    with tracker.start_run(name="down") as run:
        for step in range(50):
            tracker.log_metrics({"a": float(step)}, step=step)
    assert run._delivery.proc is None
    assert not any("still sending" in m for m in messages)  # refused at once, not waited out
    (pending,) = run.pending
    assert pending.sink == "mlflow" and pending.count == read_journal(run.dir).last_seq
    assert "server unreachable" in pending.reason and "insidellms tracking sync" in messages[-1]
    mark = json.loads((run.dir / "sinks" / "mlflow.json").read_text())
    assert mark["delivered_seq"] == 0 and mark["failures"] >= 2 and "server unreachable" in mark["last_error"]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_delivery_imports_where_fcntl_does_not_exist() -> None:
    """Windows has no fcntl: the delivery modules (every remote backend goes through them) still import."""
    code = ("import sys; sys.modules['fcntl'] = None\n"
            "import insideLLMs.tracking.delivery._worker, insideLLMs.tracking.delivery._process, insideLLMs.tracking.delivery\n"
            "from insideLLMs.tracking import get_tracker\n"
            "print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_a_backend_thread_that_never_ends_does_not_keep_the_delivery_child_alive(tmp_path: Path, sink_dir: Path) -> None:
    (sink_dir / "LINGER").touch()
    run, _messages = _tracked_run(tmp_path, sink_dir, steps=5, flush_timeout_s=30)
    proc = run._delivery.proc
    assert proc is not None
    assert proc.returncode == 0  # it exited on its own once done, not stopped by SIGTERM/SIGKILL
    assert delivered(sink_dir, run.dir) == _journal_view(run.dir)
