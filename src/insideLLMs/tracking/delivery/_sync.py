"""``insidellms tracking sync`` and ``status``: deliver what remote backends are missing, and say what that is.

Sync resumes every sink of every run from its delivered mark, so with idempotent sinks each event
arrives exactly once however often sync runs or is killed midway. A run whose process died while
it was ``running`` is first closed in its journal as ``killed``, so remote runs end too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from insideLLMs.tracking.store._journal import JournalError, JournalWriter, read_journal
from insideLLMs.tracking.store._views import RunState, find_runs, load_run, read_json, write_views, RUN_FILE
from insideLLMs.tracking.delivery._worker import (
    Delivery,
    DeliveryMark,
    SinkBusy,
    SinkLock,
    all_marks,
    sink_name,
)


@dataclass(frozen=True)
class SinkStatus:
    sink: str
    delivered: int
    pending: int
    failures: int
    last_error: str | None
    gave_up: bool

    @property
    def state(self) -> str:
        if self.pending == 0:
            return "delivered"
        if self.gave_up:
            return "gave up"
        return "failing" if self.last_error else "pending"


@dataclass(frozen=True)
class RunDelivery:
    run_dir: Path
    key: str
    name: str
    status: str
    events: int
    sinks: list[SinkStatus]
    torn_tail: bool = False
    error: str | None = None  # the journal could not be read


def delivery_status(path: str | Path) -> list[RunDelivery]:
    """Per run under ``path`` (a run folder or a tracking_logs root) and per sink: delivered / pending / failed."""
    out = []
    for run_dir in find_runs(path):
        try:
            view = load_run(run_dir)
        except JournalError as exc:
            out.append(RunDelivery(run_dir, run_dir.name, "", "unreadable", 0, [], error=str(exc)))
            continue
        total = view.state.last_seq
        sinks = [
            SinkStatus(m.sink, min(m.delivered_seq, total), max(0, total - m.delivered_seq), m.failures,
                       m.last_error, m.gave_up)
            for m in all_marks(run_dir)
        ]
        out.append(RunDelivery(run_dir, view.key, view.state.name, view.status, total, sinks, view.torn_tail))
    return out


def close_dead_run(run_dir: Path) -> bool:
    """If the process writing a 'running' run is gone, append ``run_end: killed`` and rebuild its files."""
    view = load_run(run_dir)
    if view.state.status != "running" or view.status != "killed":
        return False
    writer = JournalWriter.reopen(run_dir / "journal.jsonl")
    writer.append("run_end", {"status": "killed"})
    writer.close()
    state = RunState()
    for event in read_journal(run_dir).events:
        state.apply(event)
    write_views(run_dir, state, read_json(run_dir / RUN_FILE, {}) or {})
    return True


@dataclass(frozen=True)
class SyncOutcome:
    run_dir: Path
    sink: str
    sent: int  # events delivered by this sync
    pending: int  # events still missing afterwards
    error: str | None = None
    note: str | None = None  # "up to date", "busy", …


def sync(
    path: str | Path,
    *,
    backends: list[str] | None = None,
    options: dict[str, Any] | None = None,
    attempts: int = 3,
    echo: Callable[[str], None] = lambda _msg: None,
) -> list[SyncOutcome]:
    """Deliver every pending event of every run under ``path``.

    ``backends`` limits sync to those sinks, and adds them to runs that never had them (a local-only
    run can be sent to MLflow later). ``options`` override the stored sink options (a new
    ``tracking_uri``, credentials that were redacted from disk).
    """
    outcomes = []
    for run_dir in find_runs(path):
        try:
            if close_dead_run(run_dir):
                echo(f"{run_dir.name}: its process died while running; marked killed")
            total = read_journal(run_dir).last_seq
        except JournalError as exc:
            outcomes.append(SyncOutcome(run_dir, "-", 0, 0, error=str(exc)))
            continue
        marks = {m.sink: m for m in all_marks(run_dir)}
        wanted = marks
        if backends:
            wanted = {}
            for backend in backends:
                name = sink_name(backend)
                wanted[name] = marks.get(name) or DeliveryMark(sink=name, backend=backend)
        for mark in wanted.values():
            outcomes.append(_sync_sink(run_dir, mark, total, options or {}, attempts))
            last = outcomes[-1]
            if last.sent or last.error:
                echo(_describe(last))
    return outcomes


def _sync_sink(run_dir: Path, mark: DeliveryMark, total: int, options: dict[str, Any], attempts: int) -> SyncOutcome:
    if mark.delivered_seq >= total:
        return SyncOutcome(run_dir, mark.sink, 0, 0, note="up to date")
    lock = SinkLock(run_dir, mark.sink)
    try:
        lock.acquire()
    except SinkBusy:
        return SyncOutcome(run_dir, mark.sink, 0, total - mark.delivered_seq, note="busy: another process is delivering")
    try:
        # options given now win over the stored (redacted) ones
        mark.options = {**mark.options, **{k: v for k, v in options.items() if v is not None}}
        mark.gave_up = False
        before = mark.delivered_seq
        delivery = Delivery(run_dir, mark)
        delivery.read_new()
        tries = 0
        while delivery.pending:
            if delivery.step():
                tries = 0
                continue
            tries += 1
            if mark.gave_up or tries >= attempts:
                break
            time.sleep(min(delivery.backoff_s(), 5.0))
        delivery.close()
        mark.save(run_dir)
        error = mark.last_error if mark.delivered_seq < total else None
        return SyncOutcome(run_dir, mark.sink, mark.delivered_seq - before, total - mark.delivered_seq, error=error)
    finally:
        lock.release()


def _describe(o: SyncOutcome) -> str:
    text = f"{o.run_dir.name} → {o.sink}: delivered {o.sent:,} events"
    if o.pending:
        text += f", {o.pending:,} still pending"
    if o.error:
        text += f" ({o.error})"
    return text
