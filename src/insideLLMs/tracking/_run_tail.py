"""Following a run directory while the evaluation writes it: each new example, once, in order.

records.jsonl and timings.jsonl get one line per example, in the same order, appended by the
evaluation in buffered pieces (artifacts.RunWriter). ``RunDirTail.poll`` reads what was appended
since the last call, keeps only whole lines (a piece can end mid-line), pairs the n-th record with
the n-th timing, and hands each pair out once with its step: its 0-based line number, as the
runner's ``ExampleFinished.step``. The lines before ``first_step`` (a resumed run's earlier
records) are not handed out. Every whole line also goes to an optional sink per file (the
tracking run's artifact copy), so the files are copied as they grow, not all at the end.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import msgspec

from insideLLMs.rundir import RECORDS, TIMINGS

_READ = 1 << 20


class RecordFields(msgspec.Struct):
    """What tracking reads of a records.jsonl line; the other fields are skipped, not parsed."""

    status: str = ""
    passed: bool | None = None
    scores: dict[str, Any] = {}


class TimingFields(msgspec.Struct):
    """What tracking reads of a timings.jsonl line."""

    latency_ms: float | None = None


class Example(msgspec.Struct, frozen=True):
    """One evaluated example as the run directory holds it: its step, record and timing."""

    step: int
    record: RecordFields
    timing: TimingFields


_DECODERS = {RECORDS: msgspec.json.Decoder(RecordFields), TIMINGS: msgspec.json.Decoder(TimingFields)}


class _Appended:
    """Whole lines appended to one file since the last ``read``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._offset = 0
        self._rest = b""

    def read(self) -> bytes:
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                return b""
        pieces = [self._rest]
        while True:
            data = os.pread(self._fd, _READ, self._offset)
            if not data:
                break
            pieces.append(data)
            self._offset += len(data)
        buf = b"".join(pieces)
        cut = buf.rfind(b"\n") + 1
        self._rest = buf[cut:]
        return buf[:cut]

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class RunDirTail:
    """Hands out each example appended to a run directory once (see the module docstring)."""

    def __init__(self, run_dir: Path, first_step: int = 0,
                 sinks: dict[str, Callable[[bytes], None]] | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.first_step = first_step
        self._files = {name: _Appended(self.run_dir / name) for name in (RECORDS, TIMINGS)}
        self._sinks = sinks or {}
        self._pending: dict[str, list[Any]] = {RECORDS: [], TIMINGS: []}  # decoded, not yet paired
        self._seen = {RECORDS: 0, TIMINGS: 0}  # lines read so far, per file
        self.step = first_step  # the next step handed out

    def poll(self) -> list[Example]:
        """The examples whose record and timing lines are both whole now, in order."""
        for name, appended in self._files.items():
            chunk = appended.read()
            if not chunk:
                continue
            sink = self._sinks.get(name)
            if sink is not None:
                sink(chunk)
            skip = max(0, self.first_step - self._seen[name])  # a resumed run's earlier lines
            self._seen[name] += chunk.count(b"\n")
            if skip:
                chunk = chunk[_after_lines(chunk, skip):]
            if chunk:
                self._pending[name] += _DECODERS[name].decode_lines(chunk)
        records, timings = self._pending[RECORDS], self._pending[TIMINGS]
        ready = min(len(records), len(timings))
        if not ready:
            return []
        out = [Example(self.step + i, records[i], timings[i]) for i in range(ready)]
        del records[:ready], timings[:ready]
        self.step += ready
        return out

    def close(self) -> None:
        for appended in self._files.values():
            appended.close()


def _after_lines(chunk: bytes, count: int) -> int:
    """The offset just past the first ``count`` lines of ``chunk`` (its length if it has fewer)."""
    pos = 0
    for _ in range(count):
        pos = chunk.find(b"\n", pos) + 1
        if pos == 0:
            return len(chunk)
    return pos
