"""The run journal: an append-only JSON-lines file that is the source of truth of a tracked run.

Every tracked thing is appended here, with a dense sequence number, before any backend sees it.
Writes are buffered and flushed at least every ``flush_interval_s`` (and every
``flush_every`` events, and at the end), each flush being one ``write`` of whole lines, so a process
killed at any point leaves a file whose complete lines are all valid. A torn last line is reported
and skipped on read. The format is described in docs/journal-format.md.

A flush hands the lines to the operating system, which keeps them whatever happens to the process.
Only a crash of the machine itself can lose what it had not yet written to disk: ``sync`` (called
by the run every few seconds, off the evaluation's thread) bounds that window. The end of a run does
not wait for the disk (an ``fsync`` there would cost more than the rest of tracking a short run).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
import orjson

from insideLLMs.jsonl import iter_lines
from insideLLMs.tracking.sink import Event
from insideLLMs.errors import InsideLLMsError

JOURNAL_FILE = "journal.jsonl"
FORMAT_NAME = "insidellms-tracking-journal"
FORMAT_VERSION = "1.0"
_MAJOR = int(FORMAT_VERSION.split(".")[0])
_dumps, _monotonic = orjson.dumps, time.monotonic  # the per-event path looks them up once


class JournalError(InsideLLMsError):
    """The journal cannot be read (not a journal, a corrupt line in the middle, a newer format)."""


class JournalHeader(msgspec.Struct, frozen=True):
    """The first line of a journal: its format, version, run and creation time."""

    format: str
    version: str
    run_key: str
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "version": self.version, "run_key": self.run_key,
                "created_at": self.created_at}


class JournalContents(msgspec.Struct):
    """A journal read back: its header, every complete event in order, and a torn last line if any."""

    path: Path
    header: JournalHeader
    events: list[Event] = msgspec.field(default_factory=list)
    torn_tail: bytes | None = None  # the incomplete last line a crash left behind, if any

    @property
    def last_seq(self) -> int:
        return self.events[-1].seq if self.events else 0


def _check_header(obj: Any, path: Path) -> JournalHeader:
    if not isinstance(obj, dict) or obj.get("format") != FORMAT_NAME:
        raise JournalError(f"{path}:1: not an insideLLMs tracking journal (no format header)")
    version = str(obj.get("version", ""))
    try:
        major = int(version.split(".")[0])
    except ValueError:
        raise JournalError(f"{path}:1: unreadable journal format version {version!r}") from None
    if major > _MAJOR:
        raise JournalError(
            f"{path}: journal format {version} was written by a newer insideLLMs; this version reads "
            f"format {_MAJOR}.x. Upgrade with: pip install -U insidellms"
        )
    return JournalHeader(FORMAT_NAME, version, str(obj.get("run_key", "")), float(obj.get("created_at", 0.0)))


def _event(obj: Any) -> Event:
    return Event(seq=int(obj["seq"]), kind=obj["kind"], ts=float(obj["ts"]), data=obj["data"])


def read_journal(path: str | Path) -> JournalContents:
    """Read a journal (a run folder or its journal.jsonl) back: every complete event, in order.

    A torn last line (the process died mid-write) is skipped and returned as ``torn_tail``;
    anything else that does not parse raises ``JournalError`` naming the line.
    """
    path = Path(path)
    if path.is_dir():
        path = path / JOURNAL_FILE
    if not path.is_file():
        raise JournalError(f"{path}: no such journal (is this a tracking run folder?)")
    header: JournalHeader | None = None
    events: list[Event] = []
    torn: bytes | None = None
    expected = 1
    for lineno, _, line in iter_lines(path, JournalError):
        if not line.endswith(b"\n"):  # text after the last newline is an unfinished write
            torn = line
            break
        if header is None:
            try:
                header = _check_header(orjson.loads(line), path)
            except orjson.JSONDecodeError:
                raise JournalError(f"{path}:{lineno}: not an insideLLMs tracking journal") from None
            continue
        try:
            event = _event(orjson.loads(line))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise JournalError(f"{path}:{lineno}: corrupt journal line ({exc})") from None
        if event.seq < expected:
            continue  # a duplicate can only come from a hand-edited file; keep the first
        if event.seq != expected:
            raise JournalError(f"{path}:{lineno}: sequence jumps from {expected - 1} to {event.seq}")
        events.append(event)
        expected += 1
    if header is None:
        if torn is not None:
            raise JournalError(f"{path}:1: journal header is incomplete (the run was killed as it started)")
        raise JournalError(f"{path}: empty journal")
    return JournalContents(path=path, header=header, events=events, torn_tail=torn)


class JournalWriter:
    """Appends events with dense sequence numbers; thread-safe; buffered but crash-safe."""

    def __init__(
        self,
        path: Path,
        run_key: str,
        *,
        flush_every: int = 256,  # small batches: the buffered lines stay in the CPU caches
        flush_interval_s: float = 0.5,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        header = JournalHeader(FORMAT_NAME, FORMAT_VERSION, run_key, time.time())
        fh = open(path, "xb")
        fh.write(orjson.dumps(header.to_dict()) + b"\n")
        fh.flush()
        self._start(path, header, fh, 0, flush_every, flush_interval_s)

    def _start(self, path: Path, header: JournalHeader, fh: BinaryIO, seq: int, flush_every: int,
               flush_interval_s: float) -> None:
        self.path = path
        self.header = header
        self._fh = fh
        self._seq = seq
        self._flush_every = flush_every
        self._flush_interval_s = flush_interval_s
        self._lock = threading.Lock()
        self._buffer: list[bytes] = []  # serialized lines, without their newline
        self._closed = False
        self._listeners: list[threading.Event] = []
        self._last_flush = time.monotonic()

    @property
    def last_seq(self) -> int:
        return self._seq

    def notify(self, wakeup: threading.Event) -> None:
        """Set ``wakeup`` after every flush (how delivery workers learn there is something new)."""
        self._listeners.append(wakeup)

    def append(self, kind: str, data: dict[str, Any], ts: float | None = None) -> Event:
        ts = time.time() if ts is None else ts
        return Event(seq=self.append_raw(kind, data, ts), kind=kind, ts=ts, data=data)  # type: ignore[arg-type]

    def append_raw(self, kind: str, data: dict[str, Any], ts: float) -> int:
        """``append`` without building an ``Event`` (the hot path of ``log_metrics``); returns the seq."""
        with self._lock:
            if self._closed:
                raise JournalError(f"{self.path}: journal is closed (the run has ended)")
            self._seq = seq = self._seq + 1
            self._buffer.append(_dumps({"seq": seq, "kind": kind, "ts": ts, "data": data}))
            if len(self._buffer) >= self._flush_every or _monotonic() - self._last_flush >= self._flush_interval_s:
                self._flush_locked()
            return seq

    def flush(self) -> None:
        with self._lock:
            if not self._closed:
                self._flush_locked()

    def _flush_locked(self) -> None:
        self._last_flush = time.monotonic()
        if not self._buffer:
            return
        self._fh.write(b"\n".join(self._buffer) + b"\n")  # whole lines in one write
        self._fh.flush()
        self._buffer.clear()
        for wakeup in self._listeners:
            wakeup.set()

    def sync(self) -> None:
        """Make what has been flushed durable on disk (``fsync``); a no-op once closed. It waits for the
        disk, so call it from a background thread; appends are not blocked meanwhile."""
        with self._lock:
            if self._closed:
                return
            fd = os.dup(self._fh.fileno())  # stays valid if the journal is closed meanwhile
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        """Flush the rest and close (the lines are then the operating system's to keep; see ``sync``)."""
        with self._lock:
            if self._closed:
                return
            self._flush_locked()
            self._fh.close()
            self._closed = True
        for wakeup in self._listeners:
            wakeup.set()

    @classmethod
    def reopen(cls, path: Path) -> "JournalWriter":
        """Append to an existing journal whose writer died (to record how it ended).

        A torn last line is moved aside to ``journal.torn`` first, so the file stays valid.
        """
        contents = read_journal(path)
        if contents.torn_tail is not None:
            torn_file = path.with_suffix(".torn")
            with open(torn_file, "ab") as fh:
                fh.write(contents.torn_tail + b"\n")
            with open(path, "r+b") as fh:
                fh.truncate(path.stat().st_size - len(contents.torn_tail))
        self = cls.__new__(cls)
        # every event is written at once: a dead run gets one or two closing events, each of which must land
        self._start(path, contents.header, open(path, "ab"), contents.last_seq, flush_every=1, flush_interval_s=0.0)
        return self


class JournalTail:
    """Reads the events a live (or finished) journal has gained since the last call."""

    def __init__(self, path: Path, after_seq: int = 0) -> None:
        self.path = path
        self.after_seq = after_seq
        self._offset = 0
        self._partial = b""
        self._header_seen = False

    def poll(self) -> list[Event]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except FileNotFoundError:
            return []
        if not chunk:
            return []
        self._offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        events: list[Event] = []
        for line in lines:
            if not line.strip():
                continue
            obj = orjson.loads(line)
            if not self._header_seen:
                _check_header(obj, self.path)
                self._header_seen = True
                continue
            event = _event(obj)
            if event.seq > self.after_seq:
                events.append(event)
                self.after_seq = event.seq
        return events
