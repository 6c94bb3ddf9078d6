"""Delivery of journal events to remote sinks: batched, retried with backoff, resumable.

One ``Delivery`` per (run, sink) reads the events after the sink's delivered mark, hands them to
``Sink.deliver`` in batches, and after each successful batch saves the new mark and the sink's
state to ``run_<id>/sinks/<sink>.json``. ``DeliveryWorker`` runs it on a thread of the run's
delivery process (delivery_process.py); ``insidellms tracking sync`` runs it in the foreground later. A sink that cannot be built,
fails or hangs never raises into the caller: its events stay pending in the journal.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import threading
import time
from pathlib import Path
from typing import Any

import msgspec

from insideLLMs.tracking.store._journal import JOURNAL_FILE, JournalTail
from insideLLMs.backoff import backoff_s
from insideLLMs.canonical import dumps_pretty
from insideLLMs.rundir import write_atomic
from insideLLMs.tracking.store._views import SINKS_DIR, read_json
from insideLLMs.secrets import redact
from insideLLMs.tracking.sink import Event, Sink, SinkContext, SinkError
from insideLLMs.tracking.delivery._table import rows_event
from insideLLMs.config import BACKENDS as TABLE, Backend
from insideLLMs.errors import InsideLLMsError, UserError

# derived from the one table of backends (config.BACKENDS)
REMOTE_BACKENDS: dict[str, Backend] = {name: b for name, b in TABLE.items() if b.sink is not None}
BACKENDS = tuple(TABLE)
SINK_OPTIONS: dict[str, tuple[str, ...]] = {name: b.options for name, b in REMOTE_BACKENDS.items()}

BATCH_SIZE = 1000
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 30.0


class BackendUnavailable(UserError, ImportError):
    """A backend whose library (or sink module) is not installed."""


def check_backend(name: str) -> None:
    """Raise a clear error for an unknown backend or one whose library is missing (cheap: no import)."""
    if name == "local":
        return
    if ":" in name:
        module = name.partition(":")[0]
        if importlib.util.find_spec(module) is None:
            raise BackendUnavailable(f"tracking backend {name!r}: cannot find module {module!r}")
        return
    if name not in REMOTE_BACKENDS:
        raise ValueError(
            f"unknown tracking backend {name!r}; choose from: {', '.join(BACKENDS)} "
            f"(or a custom sink as 'package.module:SinkClass')"
        )
    spec = REMOTE_BACKENDS[name]
    library, extra = spec.library, spec.extra
    if library is not None and importlib.util.find_spec(library) is None:
        raise BackendUnavailable(
            f"the {name} tracking backend needs the {library} package: pip install 'insidellms[{extra}]'"
        )


def sink_class(backend: str) -> type[Sink]:
    """The Sink class for a backend name (or a 'module:Class' path), imported only now."""
    spec = REMOTE_BACKENDS.get(backend)
    path = spec.sink if spec is not None and spec.sink else backend
    module_name, _, attr = path.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise BackendUnavailable(f"tracking backend {backend!r} is not available: {exc}") from None


def preflight(backend: str, options: dict[str, Any], *, timeout_s: float | None = None) -> None:
    """Raise ``SinkError`` at once when a built-in backend's server refuses connections (importing
    neither its library nor its sink module; custom sinks are not checked here)."""
    spec = REMOTE_BACKENDS.get(backend)
    if spec is None or spec.preflight is None:
        return
    module, _, attr = spec.preflight.partition(":")
    check = getattr(importlib.import_module(module), attr)
    check(options if timeout_s is None else {**options, "preflight_timeout_s": timeout_s})


def sink_name(backend: str) -> str:
    """The name a backend's delivery state is filed under (sinks/<name>.json)."""
    if backend in REMOTE_BACKENDS:
        return backend
    return getattr(sink_class(backend), "name", backend.rpartition(":")[2].lower())


class DeliveryMark(msgspec.Struct):
    """sinks/<sink>.json: how far one sink got, its saved state, and what went wrong last."""

    sink: str
    backend: str
    options: dict[str, Any] = msgspec.field(default_factory=dict)
    delivered_seq: int = 0
    state: dict[str, Any] = msgspec.field(default_factory=dict)
    failures: int = 0
    last_error: str | None = None
    gave_up: bool = False
    updated_at: float = 0.0

    @staticmethod
    def path(run_dir: Path, sink: str) -> Path:
        return run_dir / SINKS_DIR / f"{sink}.json"

    @classmethod
    def load(cls, run_dir: Path, sink: str) -> "DeliveryMark | None":
        data = read_json(cls.path(run_dir, sink))
        if not isinstance(data, dict):
            return None
        known = set(cls.__struct_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, run_dir: Path) -> None:
        self.updated_at = time.time()
        path = self.path(run_dir, self.sink)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = msgspec.structs.asdict(self)
        data["options"] = redact(data["options"])  # kept in memory as given; never written in clear
        data["state"] = redact(data["state"])
        write_atomic(path, dumps_pretty(data))


def all_marks(run_dir: Path) -> list[DeliveryMark]:
    folder = run_dir / SINKS_DIR
    if not folder.is_dir():
        return []
    marks = [DeliveryMark.load(run_dir, p.stem) for p in sorted(folder.glob("*.json"))]
    return [m for m in marks if m is not None]


class SinkBusy(InsideLLMsError):
    """Another process (a live run or another sync) is delivering to this sink right now."""


class SinkLock:
    """An advisory lock so one process at a time delivers a run's events to a sink. The operating
    system drops it when its holder dies, so a killed sync never leaves a stale lock behind."""

    def __init__(self, run_dir: Path, sink: str) -> None:
        self.path = run_dir / SINKS_DIR / f"{sink}.lock"
        self._fh: Any = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")
        try:
            _lock_file(fh.fileno())
        except (BlockingIOError, PermissionError):
            fh.close()
            raise SinkBusy(f"{self.path.parent.parent}: {self.path.stem} is being delivered by another process") from None
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            _unlock_file(self._fh.fileno())
            self._fh.close()
            self._fh = None


# fcntl is POSIX only and msvcrt Windows only: each is imported where it is used, so this module
# (and every remote backend) imports on both
def _lock_file(fd: int) -> None:
    """Take an exclusive lock on ``fd`` without waiting (BlockingIOError/PermissionError if held)."""
    try:
        import fcntl
    except ImportError:
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        return
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _unlock_file(fd: int) -> None:
    try:
        import fcntl
    except ImportError:
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    fcntl.flock(fd, fcntl.LOCK_UN)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


class Delivery:
    """Feeds one sink from one run's journal. Not thread-safe: one thread drives it."""

    def __init__(self, run_dir: Path, mark: DeliveryMark, *, batch_size: int = BATCH_SIZE) -> None:
        self.run_dir = run_dir
        self.mark = mark
        self.batch_size = batch_size
        self.tail = JournalTail(run_dir / JOURNAL_FILE, after_seq=mark.delivered_seq)
        self.pending: list[Event] = []
        self.sink: Sink | None = None
        self.consecutive_failures = 0
        self.ended = False  # run_end has been delivered

    def _open_sink(self) -> None:
        cls = sink_class(self.mark.backend)
        preflight = getattr(cls, "preflight", None)
        if callable(preflight):  # e.g. is the server listening at all: fail fast, before a slow import
            preflight(self.mark.options)
        ctx = SinkContext(run_dir=self.run_dir, options=dict(self.mark.options), state=self.mark.state)
        self.sink = cls(ctx)

    def read_new(self) -> int:
        self.pending.extend(self.tail.poll())
        return len(self.pending)

    def step(self) -> bool:
        """Deliver one batch (opening the sink first if needed). True on success or nothing to do.

        On failure the error is recorded in the mark; ``mark.gave_up`` is set when retrying is useless.
        """
        if not self.pending:
            return True
        try:
            if self.sink is None:
                self._open_sink()
            batch = [rows_event(self.run_dir, e) if e.kind == "table" else e for e in self.pending[: self.batch_size]]
            assert self.sink is not None
            self.sink.deliver(batch)
        except SinkError as exc:
            self._failed(exc, give_up=not exc.retryable)
            return False
        except BackendUnavailable as exc:
            self._failed(exc, give_up=True)
            return False
        except Exception as exc:  # a sink bug or an unexpected library error: retry, bounded
            self._failed(exc, give_up=self.consecutive_failures >= 5)
            return False
        del self.pending[: len(batch)]
        self.ended = self.ended or batch[-1].kind == "run_end"
        self.mark.delivered_seq = batch[-1].seq
        self.mark.state = self.sink.ctx.state
        self.mark.last_error = None
        self.consecutive_failures = 0
        self.mark.save(self.run_dir)
        return True

    def _failed(self, exc: BaseException, *, give_up: bool) -> None:
        self.consecutive_failures += 1
        self.mark.failures += 1
        self.mark.last_error = redact(_describe(exc))
        self.mark.gave_up = give_up
        if self.sink is not None:
            self.mark.state = self.sink.ctx.state
        self.mark.save(self.run_dir)

    def backoff_s(self) -> float:
        """Seconds to wait before the next try."""
        return backoff_s(self.consecutive_failures, BACKOFF_BASE_S, BACKOFF_MAX_S)

    def close(self) -> None:
        if self.sink is not None:
            try:
                self.sink.close()
            except Exception as exc:
                self.mark.last_error = redact(_describe(exc))
            self.mark.state = self.sink.ctx.state  # a sink may record its final state (a URL) on close
            self.mark.save(self.run_dir)
            self.sink = None


class DeliveryWorker(threading.Thread):
    """Delivers a live run's journal to one sink (on a thread of the delivery process) until the run's
    ``run_end`` is delivered, or ``finish`` was called and the sink is drained or failed once more."""

    def __init__(self, run_dir: Path, mark: DeliveryMark, *, poll_s: float = 0.1) -> None:
        super().__init__(name=f"insidellms-tracking-{mark.sink}", daemon=True)
        self.run_dir = run_dir
        self.mark = mark
        self.poll_s = poll_s
        self.kick = threading.Event()  # cuts an idle or backoff wait short
        self._finishing = threading.Event()  # the run has ended: drain, stop at the first failure
        self._abandon = threading.Event()  # out of time: stop at the next chance, without closing the sink
        self._lock = SinkLock(run_dir, mark.sink)
        self.delivery = Delivery(run_dir, mark)

    def run(self) -> None:
        try:
            self._lock.acquire()
        except (SinkBusy, OSError) as exc:
            self.mark.last_error = _describe(exc)
            return
        try:
            self._loop()
        except Exception as exc:  # never let a sink take the thread down silently
            self.mark.last_error = redact(_describe(exc))
            self.mark.save(self.run_dir)
        finally:
            if not self._abandon.is_set():
                self.delivery.close()
            self._lock.release()

    def _loop(self) -> None:
        d = self.delivery
        while not self._abandon.is_set():
            finishing = self._finishing.is_set()  # read before polling, so no event is missed
            d.read_new()
            if not d.pending:
                if finishing or d.ended:
                    return
                self.kick.wait(self.poll_s)
                self.kick.clear()
                continue
            if d.step():
                continue
            if self.mark.gave_up or self._finishing.is_set():
                return  # after the run ended, one failed attempt is enough: the rest is for `tracking sync`
            self.kick.wait(d.backoff_s())
            self.kick.clear()

    def finish(self) -> None:
        """The run has ended: deliver what is left, but give up at the first failure."""
        self._finishing.set()
        self.kick.set()

    def abandon(self) -> None:
        self._abandon.set()
        self.kick.set()
