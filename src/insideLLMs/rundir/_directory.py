"""The run directory on disk: ``RunWriter`` (create, resume, stream, finalize) and ``RunReader``.

records.jsonl and timings.jsonl are append-only and flushed together as the run goes, timings
first: a crash can only leave a torn last line or timings ahead of records, which ``--resume`` cuts
off before continuing, so no record on disk (an answer paid for) is ever asked for again. The small JSON files are
written once at the end, atomically. ``.incomplete`` marks a run that has not finished.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterator

import orjson

from insideLLMs.canonical import dumps_bytes, dumps_pretty
from insideLLMs.jsonl import iter_objects
from insideLLMs.errors import UserError

RECORDS = "records.jsonl"
TIMINGS = "timings.jsonl"
MANIFEST = "manifest.json"
SUMMARY = "summary.json"
CONFIG = "config.resolved.yaml"
REPORT = "report.html"
INCOMPLETE = ".incomplete"
RUN_FILES = (RECORDS, TIMINGS, MANIFEST, SUMMARY, CONFIG, REPORT)
FLUSH_INTERVAL_S = 0.25


class RunDirError(UserError):
    """A run directory that cannot be used as asked (bad input); the message says what to do."""


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write the whole file to; it replaces ``path`` when the
    block ends without an error, and is removed when it raises. Readers see the old file or the
    new one, never a mix, and a crash leaves no half-written file under the real name."""
    tmp = path.with_name(f".{path.name}.{os.urandom(4).hex()}.tmp")
    open(tmp, "xb").close()  # not mkstemp: its file would be private (0600), not as the umask says
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes) -> None:
    """Write a whole file so that readers see the old or the new content, never a mix."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _valid_prefix(path: Path) -> tuple[int, int]:
    """(complete lines, byte length of them): what survives a crash mid-write."""
    if not path.exists():
        return 0, 0
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    return data.count(b"\n", 0, end), end


@dataclass
class RunWriter:
    run_dir: Path
    run_id: str
    resume: bool = False
    overwrite: bool = False

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        self._records: IO[bytes] | None = None
        self._timings: IO[bytes] | None = None
        self._last_flush = 0.0
        self._unflushed: tuple[bytearray, bytearray] = (bytearray(), bytearray())  # records, timings
        self.already_done = 0

    # -- lifecycle ------------------------------------------------------------------------------

    def prepare(self) -> int:
        """Make the directory ready; return how many records an interrupted run already holds."""
        try:
            return self._prepare()
        except OSError as exc:
            raise RunDirError(f"{exc.filename or self.run_dir}: cannot prepare the run directory ({exc.strerror}); "
                              "choose another --run-dir or fix its permissions") from None

    def _prepare(self) -> int:
        state = self._state()
        if state == "new":
            self.run_dir.mkdir(parents=True, exist_ok=True)
        elif self.overwrite:
            self._clear()
        elif state == "foreign":
            raise RunDirError(
                f"{self.run_dir}: exists and is not an insideLLMs run directory; choose another --run-dir"
            )
        elif not self.resume:
            what = "a finished run" if state == "complete" else "an interrupted run"
            hint = "--overwrite to replace it" + ("" if state == "complete" else ", or --resume to continue it")
            raise RunDirError(f"{self.run_dir}: already holds {what}; pass {hint}")
        else:
            stored = self._stored_run_id()
            if stored != self.run_id:
                raise RunDirError(
                    f"{self.run_dir}: holds run {stored}, but this config gives run {self.run_id} "
                    "(model, probe, data or generation settings changed); pass --overwrite to start over"
                )
        write_atomic(self.run_dir / INCOMPLETE, dumps_bytes({"run_id": self.run_id}) + b"\n")
        self.already_done = self._truncate_to_complete_lines()
        self._records = open(self.run_dir / RECORDS, "ab")
        self._timings = open(self.run_dir / TIMINGS, "ab")
        return self.already_done

    def _state(self) -> str:
        if not self.run_dir.exists() or not any(self.run_dir.iterdir()):
            return "new"
        if (self.run_dir / INCOMPLETE).exists():
            return "incomplete"
        if (self.run_dir / MANIFEST).exists() and (self.run_dir / RECORDS).exists():
            return "complete"
        return "foreign"

    def _stored_run_id(self) -> str | None:
        for name in (INCOMPLETE, MANIFEST):
            path = self.run_dir / name
            if path.exists():
                try:
                    return orjson.loads(path.read_bytes()).get("run_id")
                except orjson.JSONDecodeError:
                    return None
        return None

    def _clear(self) -> None:
        for name in (*RUN_FILES, INCOMPLETE):
            (self.run_dir / name).unlink(missing_ok=True)

    def _truncate_to_complete_lines(self) -> int:
        """Cut both files back to the records that have a timing too (a crash can split them)."""
        records_path, timings_path = self.run_dir / RECORDS, self.run_dir / TIMINGS
        count = min(_valid_prefix(records_path)[0], _valid_prefix(timings_path)[0])
        for path in (records_path, timings_path):
            if path.exists():
                with open(path, "rb") as fh:
                    size = sum(len(fh.readline()) for _ in range(count))
                os.truncate(path, size)
        return count

    # -- streaming ------------------------------------------------------------------------------

    def existing_records(self) -> Iterator[dict[str, Any]]:
        yield from read_jsonl(self.run_dir / RECORDS)

    def existing_timings(self) -> Iterator[dict[str, Any]]:
        yield from read_jsonl(self.run_dir / TIMINGS)

    def write(self, record_line: bytes, timing_line: bytes) -> None:
        assert self._records is not None and self._timings is not None
        self._unflushed[0].extend(record_line)
        self._unflushed[1].extend(timing_line)
        now = time.monotonic()
        if now - self._last_flush >= FLUSH_INTERVAL_S:
            self.flush()
            self._last_flush = now

    def flush(self) -> None:
        """Hand what was written to the OS: timings, then records (a record never outlives its timing)."""
        with self._writing():
            for fh, lines in ((self._timings, self._unflushed[1]), (self._records, self._unflushed[0])):
                if fh and lines:
                    data = bytes(lines)
                    lines.clear()
                    fh.write(data)
                    fh.flush()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            files, self._records, self._timings = (self._records, self._timings), None, None
            with self._writing():
                for fh in files:
                    if fh:
                        fh.close()

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """A full disk or a file-size limit mid-run: one line saying so (what is written stays resumable)."""
        try:
            yield
        except OSError as exc:
            raise RunDirError(f"{exc.filename or self.run_dir / RECORDS}: cannot write ({exc.strerror}); make room, "
                              "then continue with --resume") from None

    def finalize(self, manifest: dict[str, Any], summary: dict[str, Any], config_yaml: str) -> None:
        """Write the end-of-run files and drop the ``.incomplete`` mark."""
        self.close()
        write_atomic(self.run_dir / CONFIG, config_yaml.encode("utf-8"))
        write_atomic(self.run_dir / SUMMARY, dumps_pretty(summary))
        write_atomic(self.run_dir / MANIFEST, dumps_pretty(manifest))
        (self.run_dir / INCOMPLETE).unlink(missing_ok=True)


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Stream JSON objects from a file; a malformed line raises ``RunDirError`` naming file and line."""
    for _, obj in iter_objects(path, RunDirError):
        yield obj


class RunReader:
    """Read a run directory without loading it whole: records and timings stream."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        if not self.run_dir.is_dir():
            raise RunDirError(f"{self.run_dir}: no such run directory")
        if not (self.run_dir / RECORDS).exists():
            raise RunDirError(f"{self.run_dir}: not a run directory (no {RECORDS})")

    @property
    def complete(self) -> bool:
        return not (self.run_dir / INCOMPLETE).exists() and (self.run_dir / MANIFEST).exists()

    def records(self) -> Iterator[dict[str, Any]]:
        """Each record; a line that is not JSON or not a record raises ``RunDirError`` naming file and line."""
        path = self.run_dir / RECORDS
        for lineno, rec in iter_objects(path, RunDirError):
            model, probe = rec.get("model"), rec.get("probe")
            if not (isinstance(model, dict) and "id" in model and isinstance(probe, dict) and "id" in probe
                    and "example_id" in rec):
                raise RunDirError(f"{path}:{lineno}: not a record (it needs model.id, probe.id and example_id)")
            yield rec

    def timings(self) -> Iterator[dict[str, Any]]:
        path = self.run_dir / TIMINGS
        return read_jsonl(path) if path.exists() else iter(())

    def _json(self, name: str) -> dict[str, Any] | None:
        path = self.run_dir / name
        if not path.exists():
            return None
        try:
            return orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise RunDirError(f"{path}: malformed JSON: {exc.args[0]}") from None

    @property
    def manifest(self) -> dict[str, Any] | None:
        return self._json(MANIFEST)

    @property
    def summary(self) -> dict[str, Any] | None:
        return self._json(SUMMARY)

