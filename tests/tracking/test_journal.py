"""The journal: dense sequence numbers, torn tails, versioning, and a run killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from insideLLMs.cli.tracking import tracking
from insideLLMs.tracking import get_tracker
from insideLLMs.tracking.store import JOURNAL_FILE, JournalError, JournalWriter, read_journal
from insideLLMs.tracking.store import _journal
from insideLLMs.tracking.store._journal import JournalHeader, JournalTail
from insideLLMs.tracking.store import find_runs, load_run
from insideLLMs.tracking.delivery import sync


def _run_with_events(tmp_path: Path, n: int = 10) -> Path:
    tracker = get_tracker("local", output_dir=str(tmp_path))
    with tracker.start_run(name="j") as run:
        for step in range(n):
            tracker.log_metrics({"m": step}, step=step)
    return run.dir


def test_read_back_whole(tmp_path: Path) -> None:
    run_dir = _run_with_events(tmp_path)
    contents = read_journal(run_dir)
    assert contents.header.version == "1.0" and contents.header.run_key == run_dir.name
    assert [e.seq for e in contents.events] == list(range(1, 13))
    assert contents.torn_tail is None


def test_torn_last_line_is_reported_and_skipped(tmp_path: Path) -> None:
    run_dir = _run_with_events(tmp_path)
    path = run_dir / JOURNAL_FILE
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 20])  # cut the run_end line mid-record
    contents = read_journal(run_dir)
    assert [e.seq for e in contents.events] == list(range(1, 12))
    assert contents.torn_tail is not None and contents.torn_tail.startswith(b'{"seq":12')
    result = CliRunner().invoke(tracking, ["show", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "torn last line skipped" in result.output
    # appending later (to close a dead run) first moves the torn tail aside
    torn = contents.torn_tail
    writer = JournalWriter.reopen(path)
    assert writer.header == contents.header and writer.path == path
    woken = threading.Event()
    writer.notify(woken)
    writer.append("run_end", {"status": "killed"})
    # on disk at once, before close: the process that closes a dead run may itself be cut short
    reread = read_journal(run_dir)
    assert reread.torn_tail is None and reread.events[-1].seq == 12
    assert reread.events[-1].data == {"status": "killed"}
    assert woken.is_set()
    writer.close()
    assert read_journal(run_dir).events == reread.events
    assert (run_dir / "journal.torn").read_bytes() == torn + b"\n"


def test_newer_major_version_is_rejected(tmp_path: Path) -> None:
    run_dir = _run_with_events(tmp_path)
    path = run_dir / JOURNAL_FILE
    lines = path.read_bytes().split(b"\n")
    header = orjson.loads(lines[0])
    header["version"] = "2.0"
    path.write_bytes(b"\n".join([orjson.dumps(header), *lines[1:]]))
    with pytest.raises(JournalError, match=r"format 2.0 was written by a newer insideLLMs.*pip install -U insidellms"):
        read_journal(run_dir)
    result = CliRunner().invoke(tracking, ["show", str(run_dir)])
    assert result.exit_code == 1 and "newer insideLLMs" in result.output and "Traceback" not in result.output
    header["version"] = "1.7"  # a newer minor version stays readable
    path.write_bytes(b"\n".join([orjson.dumps(header), *lines[1:]]))
    assert len(read_journal(run_dir).events) == 12


def test_corrupt_middle_line_names_the_line(tmp_path: Path) -> None:
    run_dir = _run_with_events(tmp_path)
    path = run_dir / JOURNAL_FILE
    lines = path.read_bytes().split(b"\n")
    lines[4] = b"{garbage"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(JournalError, match=r"journal.jsonl:5: corrupt journal line"):
        read_journal(run_dir)


def test_not_a_journal(tmp_path: Path) -> None:
    (tmp_path / JOURNAL_FILE).write_text('{"hello": 1}\n')
    with pytest.raises(JournalError, match="not an insideLLMs tracking journal"):
        read_journal(tmp_path)


def test_buffered_writes_flush_on_time(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path / JOURNAL_FILE, "run_x", flush_every=10_000, flush_interval_s=3600)
    writer.append("metrics", {"metrics": {"a": 1.0}, "step": 0})
    assert len(read_journal(tmp_path).events) == 0  # buffered
    writer.flush()
    assert len(read_journal(tmp_path).events) == 1
    writer.close()


def test_sync_works_on_an_open_journal_and_is_a_no_op_once_closed(tmp_path: Path) -> None:
    """The run's ticker calls ``sync`` (fsync) every few seconds; a call racing the end of the run is harmless."""
    writer = JournalWriter(tmp_path / JOURNAL_FILE, "run_x")
    writer.append("metrics", {"metrics": {"a": 1.0}, "step": 0})
    writer.flush()
    writer.sync()
    writer.append("metrics", {"metrics": {"a": 2.0}, "step": 1})
    writer.close()
    writer.sync()
    assert [e.data["metrics"]["a"] for e in read_journal(tmp_path).events] == [1.0, 2.0]


@pytest.mark.slow
def test_idle_run_is_flushed_by_the_background_ticker(tmp_path: Path) -> None:
    tracker = get_tracker("local", output_dir=str(tmp_path))
    run = tracker.start_run()
    tracker.log_metrics({"a": 1}, step=0)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(read_journal(run.dir).events) < 2:
        time.sleep(0.05)
    assert [e.kind for e in read_journal(run.dir).events] == ["run_start", "metrics"]
    tracker.end_run()


KILLED_SCRIPT = """
import sys, time
from insideLLMs.tracking import get_tracker
tracker = get_tracker("local", output_dir=sys.argv[1])
with tracker.start_run(name="doomed", params={"model": "dummy"}):
    step = 0
    while True:
        tracker.log_metrics({"loss": 1.0 / (step + 1), "acc": step % 7}, step=step)
        step += 1
        if step % 50 == 0:
            time.sleep(0.01)
"""


@pytest.mark.slow
def test_sigkill_mid_run_leaves_a_readable_run(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", KILLED_SCRIPT, str(tmp_path)])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            runs = find_runs(tmp_path)
            if runs and len(read_journal(runs[0]).events) > 2000:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the tracked process did not get going")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    (run_dir,) = find_runs(tmp_path)
    for name in ("run.json", "params.json", "metrics.json"):
        json.loads((run_dir / name).read_text())  # every small file is whole
    contents = read_journal(run_dir)
    seqs = [e.seq for e in contents.events]
    assert seqs == list(range(1, len(seqs) + 1))
    steps = [e.data["step"] for e in contents.events if e.kind == "metrics"]
    assert steps == list(range(len(steps)))  # the complete prefix, nothing missing in between
    view = load_run(run_dir)
    assert view.state.status == "running" and view.status == "killed"
    assert view.state.params == {"model": "dummy"}
    assert view.state.metrics["loss"] == pytest.approx(1.0 / len(steps))

    result = CliRunner().invoke(tracking, ["list", str(tmp_path)])
    assert result.exit_code == 0 and "killed" in result.output, result.output

    sync(tmp_path)  # closes the dead run in its journal
    contents = read_journal(run_dir)
    assert contents.events[-1].kind == "run_end" and contents.events[-1].data == {"status": "killed"}
    assert json.loads((run_dir / "run.json").read_text())["status"] == "killed"
    assert json.loads((run_dir / "metrics.json").read_text())["loss"] == pytest.approx(1.0 / len(steps))


def test_live_run_in_another_process_is_running(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import sys, time
        from insideLLMs.tracking import get_tracker
        t = get_tracker("local", output_dir=sys.argv[1])
        t.log_metrics({"a": 1})
        print("ready", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        (run_dir,) = find_runs(tmp_path)
        assert load_run(run_dir).status == "running"
        sync(tmp_path)
        assert load_run(run_dir).status == "running"  # sync does not close a live run
    finally:
        proc.kill()
        proc.communicate()  # reaps it and closes its stdout
    assert load_run(run_dir).status == "killed"


def _write_journal(path: Path, header: dict, *events: dict, tail: bytes = b"") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [orjson.dumps(header), *(orjson.dumps(e) for e in events)]
    path.write_bytes(b"\n".join(lines) + b"\n" + tail)


def _ev(seq: int, ts: float = 10.0) -> dict:
    return {"seq": seq, "kind": "metrics", "ts": ts + seq, "data": {"metrics": {"m": float(seq)}, "step": seq}}


HEADER = {"format": "insidellms-tracking-journal", "version": "1.0", "run_key": "run_k", "created_at": 1234.5}


def test_header_and_events_read_back_field_by_field(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL_FILE
    _write_journal(path, HEADER, _ev(1), _ev(2))
    contents = read_journal(tmp_path)
    assert contents.path == path
    assert contents.header == JournalHeader("insidellms-tracking-journal", "1.0", "run_k", 1234.5)
    assert contents.header.to_dict() == HEADER
    assert [(e.seq, e.kind, e.ts, e.data) for e in contents.events] == [
        (1, "metrics", 11.0, {"metrics": {"m": 1.0}, "step": 1}),
        (2, "metrics", 12.0, {"metrics": {"m": 2.0}, "step": 2}),
    ]
    # a header with only its format and version: no run key, created at 0
    _write_journal(path, {"format": "insidellms-tracking-journal", "version": "1.2"}, _ev(1))
    assert read_journal(path).header == JournalHeader("insidellms-tracking-journal", "1.2", "", 0.0)


def test_a_new_journal_starts_with_its_header_and_makes_its_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / JOURNAL_FILE
    writer = JournalWriter(path, "run_new")
    assert writer.header.format == "insidellms-tracking-journal" and writer.header.run_key == "run_new"
    event = writer.append("metrics", {"metrics": {"a": 1.0}, "step": 0}, ts=42.5)
    assert (event.seq, event.ts) == (1, 42.5)
    writer.close()
    first = orjson.loads(path.read_bytes().split(b"\n")[0])
    assert first == writer.header.to_dict() and first["created_at"] > 0
    assert read_journal(path).events[0].ts == 42.5
    with pytest.raises(JournalError) as err:
        writer.append("metrics", {"metrics": {"a": 2.0}, "step": 1})
    assert str(err.value) == f"{path}: journal is closed (the run has ended)"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({"format": "insidellms-tracking-journal"}, "{path}:1: unreadable journal format version ''"),
        (
            {"format": "insidellms-tracking-journal", "version": "x.1"},
            "{path}:1: unreadable journal format version 'x.1'",
        ),
        (
            {"format": "insidellms-tracking-journal", "version": "3.0"},
            "{path}: journal format 3.0 was written by a newer insideLLMs; this version reads format 1.x. "
            "Upgrade with: pip install -U insidellms",
        ),
        ({"hello": 1}, "{path}:1: not an insideLLMs tracking journal (no format header)"),
    ],
)
def test_bad_headers_are_named_with_the_file(tmp_path: Path, header: dict, message: str) -> None:
    path = tmp_path / JOURNAL_FILE
    _write_journal(path, header, _ev(1))
    with pytest.raises(JournalError) as err:
        read_journal(path)
    assert str(err.value) == message.format(path=path)
    with pytest.raises(JournalError) as err:
        JournalTail(path).poll()
    assert str(err.value) == message.format(path=path)


def test_unreadable_journals_say_why(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL_FILE

    def error(target: Path) -> str:
        with pytest.raises(JournalError) as err:
            read_journal(target)
        return str(err.value)

    assert error(tmp_path) == f"{path}: no such journal (is this a tracking run folder?)"
    for content, message in (
        (b"not json\n", ":1: not an insideLLMs tracking journal"),
        (b'{"format": "insidellms-tra', ":1: journal header is incomplete (the run was killed as it started)"),
        (b"\n", ": empty journal"),
    ):
        path.write_bytes(content)
        assert error(path) == f"{path}{message}"
    _write_journal(path, HEADER, _ev(1), _ev(2), _ev(5))
    assert error(path) == f"{path}:4: sequence jumps from 2 to 5"


def test_a_duplicated_event_is_read_once_and_the_rest_still_follows(tmp_path: Path) -> None:
    _write_journal(tmp_path / JOURNAL_FILE, HEADER, _ev(1), _ev(2), _ev(2, ts=99.0), _ev(3), _ev(4))
    events = read_journal(tmp_path).events
    assert [(e.seq, e.ts) for e in events] == [(1, 11.0), (2, 12.0), (3, 13.0), (4, 14.0)]


def test_appends_are_written_in_batches_of_256_when_time_stands_still(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_journal, "_monotonic", lambda: float("-inf"))  # the time limit never passes
    writer = JournalWriter(tmp_path / JOURNAL_FILE, "run_x")
    for step in range(255):
        writer.append_raw("metrics", {"metrics": {"a": 1.0}, "step": step}, 1.0)
    assert read_journal(tmp_path).events == []
    writer.append_raw("metrics", {"metrics": {"a": 1.0}, "step": 255}, 1.0)
    assert len(read_journal(tmp_path).events) == 256
    writer.close()


def test_appends_are_flushed_once_half_a_second_has_passed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = JournalWriter(tmp_path / JOURNAL_FILE, "run_x")
    monkeypatch.setattr(_journal, "_monotonic", lambda: writer._last_flush + 0.5)
    writer.append_raw("metrics", {"metrics": {"a": 1.0}, "step": 0}, 1.0)
    assert len(read_journal(tmp_path).events) == 1
    monkeypatch.setattr(_journal, "_monotonic", lambda: writer._last_flush + 0.4)
    writer.append_raw("metrics", {"metrics": {"a": 1.0}, "step": 1}, 1.0)
    assert len(read_journal(tmp_path).events) == 1
    writer.close()


def test_tail_returns_each_new_event_once_across_partial_writes(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL_FILE
    _write_journal(path, HEADER, _ev(1), _ev(2))
    tail = JournalTail(path)
    assert [e.seq for e in tail.poll()] == [1, 2]
    assert tail.poll() == []
    line3 = orjson.dumps(_ev(3)) + b"\n"
    with open(path, "ab") as fh:
        fh.write(b"\n" + line3[:7])  # a blank line, then half an event
    assert tail.poll() == []
    with open(path, "ab") as fh:
        fh.write(line3[7:])
    (event,) = tail.poll()
    assert (event.seq, event.ts, event.data) == (3, 13.0, _ev(3)["data"])
    with open(path, "ab") as fh:
        fh.write(orjson.dumps(_ev(4)) + b"\n" + orjson.dumps(_ev(5)) + b"\n")
    assert [e.seq for e in tail.poll()] == [4, 5]
    assert tail.poll() == []
    assert [e.seq for e in JournalTail(path, after_seq=3).poll()] == [4, 5]


WRITE_ONLY = Path("/proc/sys/vm/drop_caches")  # a regular file nobody may read, root included


@pytest.mark.skipif(not WRITE_ONLY.is_file(), reason="needs Linux /proc/sys")
def test_a_journal_that_cannot_be_opened_says_why(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL_FILE
    path.symlink_to(WRITE_ONLY)
    with pytest.raises(JournalError) as err:
        read_journal(tmp_path)
    assert str(err.value) == f"{path}: cannot read (Permission denied)"
