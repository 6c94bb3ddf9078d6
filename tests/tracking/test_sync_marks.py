"""`tracking sync` and `status` in process: the outcomes, the echoed lines, the marks, and a dead run closed as killed.

The sink is the test double in tests/support/tracking_sinks.py (our Sink interface, writing JSONL).
"""

from __future__ import annotations

import json
from functools import partial
from types import SimpleNamespace
from pathlib import Path

import pytest

from insideLLMs.tracking import get_tracker
from insideLLMs.tracking.delivery import DeliveryMark, delivery_status, sync
from insideLLMs.tracking.delivery import _sync, _worker
from insideLLMs.tracking.delivery._sync import RunDelivery, SinkStatus, SyncOutcome
from insideLLMs.tracking.delivery._worker import SinkLock
from insideLLMs.tracking.store import JournalWriter, find_runs, read_journal
from support.tracking_sinks import BACKEND, delivered, receipts


def _local_run(root: Path, name: str = "local", steps: int = 3) -> Path:
    tracker = get_tracker("local", output_dir=str(root))
    with tracker.start_run(name=name) as run:
        for step in range(steps):
            tracker.log_metrics({"m": step}, step=step)
    return run.dir


def _journal_view(run_dir: Path) -> list[dict]:
    return [{"seq": e.seq, "kind": e.kind, "data": e.data} for e in read_journal(run_dir).events]


def _make_dead(run_dir: Path) -> None:
    """Turn a finished run into one whose writer died while running: no run_end, a stale heartbeat elsewhere."""
    journal = run_dir / "journal.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    assert json.loads(lines[-1])["kind"] == "run_end"
    journal.write_text("".join(lines[:-1]))
    info = json.loads((run_dir / "run.json").read_text())
    info.update(host="another-host", pid=1, heartbeat_at=1.0, status="running", tags={"team": "a"})
    info.pop("ended_at", None)
    (run_dir / "run.json").write_text(json.dumps(info))


def test_sync_sends_a_local_run_to_a_new_backend_and_says_so(tmp_path: Path, sink_dir: Path) -> None:
    run_dir = _local_run(tmp_path / "logs")
    total = read_journal(run_dir).last_seq
    echoed: list[str] = []
    outcomes = sync(
        tmp_path / "logs", backends=[BACKEND], options={"log_dir": str(sink_dir), "unused": None}, echo=echoed.append
    )
    assert outcomes == [SyncOutcome(run_dir, "jsonl", total, 0)]
    assert echoed == [f"{run_dir.name} → jsonl: delivered {total:,} events"]
    assert delivered(sink_dir, run_dir) == _journal_view(run_dir)
    mark = DeliveryMark.load(run_dir, "jsonl")
    assert (mark.delivered_seq, mark.gave_up, mark.options) == (total, False, {"log_dir": str(sink_dir)})

    # again: nothing to send, nothing echoed, the sink's own name as the outcome's
    echoed.clear()
    assert sync(run_dir, echo=echoed.append) == [SyncOutcome(run_dir, "jsonl", 0, 0, note="up to date")]
    assert sync(run_dir, backends=[BACKEND]) == [SyncOutcome(run_dir, "jsonl", 0, 0, note="up to date")]
    assert echoed == []
    assert sum(len(b) for b in receipts(sink_dir, run_dir)) == total

    (status,) = delivery_status(tmp_path / "logs")
    assert status == RunDelivery(
        run_dir, run_dir.name, "local", "finished", total, [SinkStatus("jsonl", total, 0, 0, None, False)], False
    )
    assert status.sinks[0].state == "delivered"


def test_sync_of_a_sink_that_stays_down_reports_what_is_pending(
    tmp_path: Path, sink_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = _local_run(tmp_path / "logs", steps=5)
    total = read_journal(run_dir).last_seq
    monkeypatch.setattr(_sync, "Delivery", partial(_worker.Delivery, batch_size=4))  # two batches
    (sink_dir / "FAIL").touch()
    echoed: list[str] = []
    outcomes = sync(run_dir, backends=[BACKEND], options={"log_dir": str(sink_dir)}, attempts=1, echo=echoed.append)
    assert outcomes == [SyncOutcome(run_dir, "jsonl", 0, total, error="server unreachable")]
    assert echoed == [f"{run_dir.name} → jsonl: delivered 0 events, {total:,} still pending (server unreachable)"]
    mark = DeliveryMark.load(run_dir, "jsonl")
    assert (mark.delivered_seq, mark.failures, mark.last_error) == (0, 1, "server unreachable")
    (status,) = delivery_status(run_dir)
    assert status.sinks == [SinkStatus("jsonl", 0, total, 1, "server unreachable", False)]
    assert status.sinks[0].state == "failing"

    # the sink is back: everything arrives once, the echo says how many
    (sink_dir / "FAIL").unlink()
    echoed.clear()
    assert sync(run_dir, echo=echoed.append) == [SyncOutcome(run_dir, "jsonl", total, 0)]
    assert echoed == [f"{run_dir.name} → jsonl: delivered {total:,} events"]
    assert delivered(sink_dir, run_dir) == _journal_view(run_dir)


def test_sync_leaves_a_sink_another_process_is_delivering(tmp_path: Path, sink_dir: Path) -> None:
    run_dir = _local_run(tmp_path / "logs")
    total = read_journal(run_dir).last_seq
    DeliveryMark(sink="jsonl", backend=BACKEND, options={"log_dir": str(sink_dir)}, delivered_seq=2).save(run_dir)
    lock = SinkLock(run_dir, "jsonl")
    lock.acquire()
    try:
        echoed: list[str] = []
        assert sync(run_dir, echo=echoed.append) == [
            SyncOutcome(run_dir, "jsonl", 0, total - 2, note="busy: another process is delivering")
        ]
        assert echoed == []
    finally:
        lock.release()
    assert delivered(sink_dir, run_dir) == []
    assert sync(run_dir) == [SyncOutcome(run_dir, "jsonl", total - 2, 0)]  # from its mark on


def test_sync_retries_a_sink_that_gave_up_before(tmp_path: Path, sink_dir: Path) -> None:
    run_dir = _local_run(tmp_path / "logs")
    total = read_journal(run_dir).last_seq
    DeliveryMark(
        sink="jsonl", backend=BACKEND, options={"log_dir": str(sink_dir)}, gave_up=True, last_error="bad configuration"
    ).save(run_dir)
    (status,) = delivery_status(run_dir)
    assert status.sinks == [SinkStatus("jsonl", 0, total, 0, "bad configuration", True)]
    assert status.sinks[0].state == "gave up"
    assert sync(run_dir) == [SyncOutcome(run_dir, "jsonl", total, 0)]
    assert delivered(sink_dir, run_dir) == _journal_view(run_dir)
    assert DeliveryMark.load(run_dir, "jsonl").gave_up is False


def test_sync_closes_a_run_whose_process_died_and_rebuilds_its_files(tmp_path: Path) -> None:
    run_dir = _local_run(tmp_path / "logs", name="crashed", steps=2)
    _make_dead(run_dir)
    before = read_journal(run_dir).last_seq
    (status,) = delivery_status(run_dir)
    assert (status.status, status.events) == ("killed", before)

    echoed: list[str] = []
    assert sync(tmp_path / "logs", echo=echoed.append) == []
    assert echoed == [f"{run_dir.name}: its process died while running; marked killed"]
    contents = read_journal(run_dir)
    assert contents.last_seq == before + 1
    assert (contents.events[-1].kind, contents.events[-1].data) == ("run_end", {"status": "killed"})
    info = json.loads((run_dir / "run.json").read_text())
    assert (info["status"], info["events"], info["name"], info["host"]) == (
        "killed",
        before + 1,
        "crashed",
        "another-host",
    )
    assert json.loads((run_dir / "metrics.json").read_text())["m"] == 1.0

    # closed once: a second sync appends nothing and says nothing
    echoed.clear()
    assert sync(run_dir, echo=echoed.append) == []
    assert echoed == [] and read_journal(run_dir).last_seq == before + 1


def test_a_finished_run_is_not_closed_again(tmp_path: Path) -> None:
    run_dir = _local_run(tmp_path / "logs")
    journal = (run_dir / "journal.jsonl").read_bytes()
    run_json = (run_dir / "run.json").read_bytes()
    echoed: list[str] = []
    assert sync(run_dir, echo=echoed.append) == [] and echoed == []
    assert (run_dir / "journal.jsonl").read_bytes() == journal and (run_dir / "run.json").read_bytes() == run_json


def test_unreadable_journals_are_reported_and_the_other_runs_still_synced(tmp_path: Path, sink_dir: Path) -> None:
    root = tmp_path / "logs"
    first = _local_run(root, name="first")
    broken = _local_run(root, name="broken")
    last = _local_run(root, name="last")
    (broken / "journal.jsonl").write_text("not json\n")
    runs = find_runs(root)
    assert sorted(runs) == sorted([first, broken, last])
    error = f"{broken / 'journal.jsonl'}:1: not an insideLLMs tracking journal"

    statuses = delivery_status(root)
    assert [s.run_dir for s in statuses] == runs
    bad = next(s for s in statuses if s.run_dir == broken)
    assert bad == RunDelivery(broken, broken.name, "", "unreadable", 0, [], error=error)

    outcomes = sync(root, backends=[BACKEND], options={"log_dir": str(sink_dir)})
    assert [o.run_dir for o in outcomes] == runs
    assert next(o for o in outcomes if o.run_dir == broken) == SyncOutcome(broken, "-", 0, 0, error=error)
    for run_dir in (first, last):
        assert delivered(sink_dir, run_dir) == _journal_view(run_dir)


@pytest.mark.parametrize("attempts", [None, 1, 2])
def test_sync_tries_a_failing_sink_as_often_as_asked_waiting_at_most_5_s(
    tmp_path: Path, sink_dir: Path, monkeypatch: pytest.MonkeyPatch, attempts: int | None
) -> None:
    run_dir = _local_run(tmp_path / "logs", steps=1)
    (sink_dir / "FAIL").touch()
    slept: list[float] = []
    monkeypatch.setattr(_sync, "time", SimpleNamespace(sleep=slept.append))
    monkeypatch.setattr(_worker, "BACKOFF_BASE_S", 60.0)  # every backoff is longer than the cap
    kwargs = {} if attempts is None else {"attempts": attempts}
    (outcome,) = sync(run_dir, backends=[BACKEND], options={"log_dir": str(sink_dir)}, **kwargs)
    assert outcome.error == "server unreachable"
    tries = attempts or 3  # three by default
    assert DeliveryMark.load(run_dir, "jsonl").failures == tries
    assert slept == [5.0] * (tries - 1)


def test_each_delivered_batch_gives_a_flaky_sink_its_attempts_again(
    tmp_path: Path, sink_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = _local_run(tmp_path / "logs", steps=5)
    total = read_journal(run_dir).last_seq

    class DownAfterEachBatch(_worker.Delivery):
        def __init__(self, run_dir: Path, mark: DeliveryMark) -> None:
            super().__init__(run_dir, mark, batch_size=4)  # two batches

        def step(self) -> bool:
            ok = super().step()
            if ok:
                (sink_dir / "FAIL").touch()  # the sink goes down right after each batch it takes...
            return ok

    def sleep(_seconds: float) -> None:
        (sink_dir / "FAIL").unlink()  # ...and is back after the wait

    monkeypatch.setattr(_sync, "Delivery", DownAfterEachBatch)
    monkeypatch.setattr(_sync, "time", SimpleNamespace(sleep=sleep))
    outcomes = sync(run_dir, backends=[BACKEND], options={"log_dir": str(sink_dir)}, attempts=2)
    assert outcomes == [SyncOutcome(run_dir, "jsonl", total, 0)]
    assert delivered(sink_dir, run_dir) == _journal_view(run_dir)


def test_events_written_during_sync_do_not_count_against_it(
    tmp_path: Path, sink_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = _local_run(tmp_path / "logs", steps=998)  # run_start + 998 metrics + run_end: one full batch
    total = read_journal(run_dir).last_seq
    assert total == 1000

    class JournalGrowsMeanwhile(_worker.Delivery):
        def read_new(self) -> int:
            writer = JournalWriter.reopen(run_dir / "journal.jsonl")
            writer.append("metrics", {"metrics": {"late": 1.0}, "step": None})
            writer.close()
            return super().read_new()

        def step(self) -> bool:
            ok = super().step()
            (sink_dir / "FAIL").touch()  # down once the batch of the events sync was asked for is in
            return ok

    monkeypatch.setattr(_sync, "Delivery", JournalGrowsMeanwhile)
    outcomes = sync(run_dir, backends=[BACKEND], options={"log_dir": str(sink_dir)}, attempts=1)
    assert outcomes == [SyncOutcome(run_dir, "jsonl", total, 0)]
    mark = DeliveryMark.load(run_dir, "jsonl")
    assert (mark.delivered_seq, mark.last_error) == (total, "server unreachable")


def test_status_reports_a_torn_last_line_and_counts_only_whole_events(tmp_path: Path, sink_dir: Path) -> None:
    """A writer that died mid-line leaves a torn tail: status says so, and it is neither counted nor delivered."""
    run_dir = _local_run(tmp_path / "logs")
    total = read_journal(run_dir).last_seq
    with (run_dir / "journal.jsonl").open("ab") as fh:
        fh.write(b'{"seq": ' + str(total + 1).encode() + b', "kind": "metr')
    (status,) = delivery_status(tmp_path / "logs")
    assert (status.events, status.sinks, status.torn_tail) == (total, [], True)
    assert sync(run_dir, backends=[BACKEND], options={"log_dir": str(sink_dir)}) == [SyncOutcome(run_dir, "jsonl", total, 0)]
    assert [e["seq"] for e in delivered(sink_dir, run_dir)] == list(range(1, total + 1))
