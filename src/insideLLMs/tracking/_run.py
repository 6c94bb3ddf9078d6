"""``TrackingRun``: one tracked run, a folder ``<output_dir>/run_<id>/`` with its journal and readable files.

Every call is redacted, appended to the run's journal and folded into the local view. Remote
backends are fed from the journal by the run's delivery process (delivery/_process.py), so the
evaluation's process never imports, waits on or competes with a backend library. A local-only run
imports nothing of the delivery machinery, and the file redaction only when it copies a file.
"""

from __future__ import annotations

import os
import sys
import hashlib
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Collection, Iterable, Literal, Mapping

import orjson

from insideLLMs.canonical import dumps_pretty
from insideLLMs.config import TrackingConfig
from insideLLMs.rundir import atomic_path, write_atomic
from insideLLMs.tracking.store._journal import FORMAT_VERSION, JOURNAL_FILE, JournalWriter
from insideLLMs.tracking.store._views import (
    ARTIFACTS_DIR,
    HEARTBEAT_S,
    PARAMS_FILE,
    RUN_FILE,
    RUN_PREFIX,
    RunState,
    process_info,
    run_json,
    write_views,
)
from insideLLMs.secrets import dumps_redacted, redact
from insideLLMs.tracking._loggable import Tags, flatten_params, normalize_tags, safe_artifact_name, sha256_file, to_jsonable
from insideLLMs.tracking.sink import RECORDS_FORMAT

if TYPE_CHECKING:
    from insideLLMs.tracking.delivery._process import DeliveryProcess
    from insideLLMs.tracking.sink import Pending

EndStatus = Literal["finished", "failed", "interrupted", "killed"]
_now = time.time  # looked up once: log_step runs once per evaluated example


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class TableWriter:
    """Streams rows (flat dicts, redacted) to ``artifacts/<name>.jsonl``; ``close`` logs the table."""

    def __init__(self, run: "TrackingRun", name: str) -> None:
        self._run = run
        self.name = name
        self.rel = f"{ARTIFACTS_DIR}/{name}.jsonl"
        self.path = run.dir / self.rel
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "wb", buffering=1 << 16)
        self.rows = 0
        self._closed = False

    def write(self, row: Mapping[str, Any]) -> None:
        self._fh.write(dumps_redacted(flatten_params(row), orjson.OPT_SORT_KEYS) + b"\n")
        self.rows += 1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._fh.close()
        self._run._log_file("table", self.name, self.rel, extra={"rows": self.rows})


class TrackingRun:
    """One tracked run: a folder ``<output_dir>/run_<id>/`` with its journal and readable files.

    Use it as a context manager (ends ``finished``, or ``failed`` if the body raises) or call
    ``end(status)``. Its ``log_*`` methods are what ``Tracker.log_*`` call on the current run.
    """

    def __init__(
        self,
        config: TrackingConfig,
        *,
        name: str | None = None,
        tags: Tags = None,
        echo: Callable[[str], None] = _stderr,
        on_end: Callable[["TrackingRun"], None] | None = None,
    ) -> None:
        self.config = config
        self.key = f"{RUN_PREFIX}{uuid.uuid4().hex[:12]}"
        self.dir = Path(config.output_dir).resolve() / self.key
        self.name = name or self.key
        self._echo = echo
        self._on_end = on_end
        self._lock = threading.RLock()
        self._ended = False
        self._delivery_done = False
        self._warned: set[str] = set()
        self._delivery: DeliveryProcess | None = None
        self.pending: list[Pending] = []

        self.dir.mkdir(parents=True, exist_ok=False)
        self.journal = JournalWriter(self.dir / JOURNAL_FILE, self.key)
        self.state = RunState(key=self.key)
        self._info = {
            "backends": config.backends,
            "journal": JOURNAL_FILE,
            "journal_format": FORMAT_VERSION,
            **process_info(),
        }
        self._append("run_start", {
            "name": self.name,
            "run_key": self.key,
            "tags": redact(normalize_tags(config.tags) | normalize_tags(tags)),
            "project": config.project,
            "experiment": config.experiment_name,
        })
        self._write_views()  # every file exists (and parses) from the start
        self.journal.flush()

        remote = [b for b in config.backends if b != "local"]
        if remote:  # only a remote backend needs a process; local tracking is the journal itself
            from insideLLMs.tracking.delivery._process import DeliveryProcess

            self._delivery = DeliveryProcess.start(self.dir, {b: self._sink_options(b) for b in remote})
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name=f"insidellms-tracking-{self.key}", daemon=True)
        self._ticker.start()

    # -- logging -----------------------------------------------------------------------------

    @property
    def status(self) -> str:
        return self.state.status

    @property
    def ended(self) -> bool:
        return self._ended

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Log numeric metrics, optionally at an integer ``step`` (non-finite values are skipped)."""
        clean: dict[str, float] = {}
        for key, value in metrics.items():
            if type(value) is float:
                number = value
            else:
                try:
                    number = float(value)
                except (TypeError, ValueError):
                    raise TypeError(f"metric {key!r} must be a number, not {type(value).__name__}") from None
            if number - number == 0.0:  # finite (inf - inf and nan - nan are nan)
                clean[key if type(key) is str else str(key)] = number
            else:
                self._warn_once(f"nan:{key}", f"! tracking: metric {key!r} is {number}; skipped")
        if step is not None and type(step) is not int:
            if isinstance(step, bool) or not float(step).is_integer():
                raise TypeError(f"step must be an integer, not {step!r}")
            step = int(step)
        if not clean:
            return
        self.log_step(clean, step)  # type: ignore[arg-type]

    def log_step(self, metrics: dict[str, float], step: int | None) -> None:
        """``log_metrics`` for values already known to be finite floats at an int ``step``, without the
        checks: the evaluation's per-example series (a few microseconds per example). The dict is kept
        as given: do not change it afterwards.

        The hot path takes only the journal's lock (which orders the events); the local view's latest
        values are one dict update, and its event count is read from the journal when written."""
        if self._ended:
            raise RuntimeError(f"tracking run {self.key} has ended; start a new run to log more")
        self.journal.append_raw("metrics", {"metrics": metrics, "step": step}, _now())
        self.state.metrics.update(metrics)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log parameters; nested dicts become dotted keys, secrets become ``[REDACTED]``."""
        if params:
            self._append("params", {"params": redact(flatten_params(params))})
            with self._lock:
                write_atomic(self.dir / PARAMS_FILE, dumps_pretty(self.state.params))

    def set_tags(self, tags: Tags = None, **more: Any) -> None:
        """Add tags: a list of names, a dict, or keyword arguments."""
        merged = normalize_tags(tags) | normalize_tags(more)
        if merged:
            self._append("tags", {"tags": redact(merged)})
            with self._lock:
                self.state.last_seq = self.journal.last_seq
                write_atomic(self.dir / RUN_FILE, dumps_pretty(run_json(self.state, self._info)))

    def log_artifact(self, name: str, obj: Any) -> Path:
        """Save an artifact: an object as ``artifacts/<name>.json``; a ``Path`` is copied (a folder, file by file).

        Every artifact is redacted. Returns the path written in the run folder.
        """
        name = safe_artifact_name(name)
        if isinstance(obj, os.PathLike):
            src = Path(obj)
            if src.is_dir():
                files = sorted(p for p in src.rglob("*") if p.is_file())
                for f in files:
                    self.log_artifact(f"{name}/{f.relative_to(src).as_posix()}", f)
                return self.dir / ARTIFACTS_DIR / name
            if not src.is_file():
                raise FileNotFoundError(f"artifact {name!r}: no such file: {src}")
            from insideLLMs.tracking.store._artifact_copy import copy_redacted

            rel = f"{ARTIFACTS_DIR}/{name if Path(name).suffix else name + src.suffix}"
            digest = self._write_file(rel, lambda tmp: copy_redacted(src, tmp))
        else:
            rel = f"{ARTIFACTS_DIR}/{name if name.endswith('.json') else name + '.json'}"
            data = redact(to_jsonable(obj))
            payload = orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS) + b"\n"
            self._write_file(rel, lambda tmp: tmp.write_bytes(payload))
            digest = hashlib.sha256(payload).hexdigest()
        self._log_file("artifact", name, rel, sha256=digest)
        return self.dir / rel

    def log_files(self, files: Mapping[str, str | os.PathLike[str]], *, replaced_only: Collection[str] = ()) -> dict[str, Path]:
        """``log_artifact(name, path)`` for each file that exists (the others are skipped), in the
        order given; returns name -> path in the run folder. If a copy fails, the files copied are
        logged and the first error is raised. ``replaced_only``: names of files their writer only
        ever replaces, never changes in place; a clean one is hard-linked (``copy_redacted``)."""
        from insideLLMs.tracking.store._artifact_copy import copy_redacted

        written: dict[str, Path] = {}
        failed: list[BaseException] = []
        for name, path in files.items():
            src = Path(path)
            if not src.is_file():
                continue
            name = safe_artifact_name(name)
            rel = f"{ARTIFACTS_DIR}/{name if Path(name).suffix else name + src.suffix}"
            try:
                link = name in replaced_only
                digest = self._write_file(rel, lambda tmp, src=src, link=link: copy_redacted(src, tmp, link=link))
            except Exception as exc:
                failed.append(exc)
                continue
            self._log_file("artifact", name, rel, sha256=digest)
            written[name] = self.dir / rel
        if failed:
            raise failed[0]
        return written

    def log_artifact_bytes(self, name: str, payload: bytes) -> str:
        """Save ``payload`` (redacted by the rules for its file type) as ``artifacts/<name>``; returns
        its path in the run folder."""
        name = safe_artifact_name(name)
        rel = f"{ARTIFACTS_DIR}/{name}"
        suffix = Path(name).suffix.lower()
        digest = self._write_file(rel, lambda tmp: _write_redacted(tmp, payload, suffix))
        self._log_file("artifact", name, rel, sha256=digest)
        return rel

    def log_records_table(self, name: str, records: str, timings: str | None = None) -> None:
        """Log the per-example table as a pointer to a run-directory ``records.jsonl`` artifact (path in
        the run folder) and its ``timings.jsonl``; the rows are flattened only where a backend shows
        them, at delivery time (table.py)."""
        logged = self.state.artifacts.get(records) or {}
        data: dict[str, Any] = {"name": safe_artifact_name(name), "path": records, "format": RECORDS_FORMAT}
        if timings:
            data["timings"] = timings
        if "sha256" in logged:
            data.update(sha256=logged["sha256"], size=logged.get("size"))
        self._append("table", data)

    def log_table(self, name: str, rows: Iterable[Mapping[str, Any]]) -> Path:
        """Save rows (flat dicts) as ``artifacts/<name>.jsonl`` and log them as a table."""
        table = self.open_table(name)
        for row in rows:
            table.write(row)
        table.close()
        return table.path

    def open_table(self, name: str) -> TableWriter:
        """A writer to stream a table row by row (e.g. one row per evaluated example)."""
        return TableWriter(self, safe_artifact_name(name))

    def _write_file(self, rel: str, write: Callable[[Path], Any]) -> Any:
        dest = self.dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(dest) as tmp:
            return write(tmp)

    def _log_file(self, kind: str, name: str, rel: str, extra: dict[str, Any] | None = None,
                  sha256: str | None = None) -> None:
        path = self.dir / rel
        data = {"name": name, "path": rel, "sha256": sha256 or sha256_file(path), "size": path.stat().st_size}
        self._append(kind, data | (extra or {}))

    def _append(self, kind: str, data: dict[str, Any]) -> None:
        with self._lock:
            if self._ended:
                raise RuntimeError(f"tracking run {self.key} has ended; start a new run to log more")
            self.state.apply(self.journal.append(kind, data))

    # -- ending ------------------------------------------------------------------------------

    def end(self, status: EndStatus = "finished", *, wait: bool = True) -> list[Pending]:
        """End the run and write its final files; with ``wait`` also ``finish_delivery()``."""
        if status not in ("finished", "failed", "interrupted", "killed"):
            raise ValueError(f"status must be finished, failed, interrupted or killed, not {status!r}")
        with self._lock:
            if self._ended:
                return self.finish_delivery() if wait else self.pending
            self.state.apply(self.journal.append("run_end", {"status": status}))
            self._ended = True
        if self._delivery is not None:
            self._delivery.run_ended()
        self._stop.set()  # not joined: once the run has ended the ticker writes nothing (see _tick)
        self.journal.close()
        if self.deleted:
            self._warn_once("deleted", f"! tracking: {self.dir} was deleted during the run, so it is not tracked (its "
                                       "run directory is whole); track it again with: insidellms tracking push RUN_DIR "
                                       "--backend local")
            return []
        self._info.update(process_info())
        self._write_views(params=False)
        if self._on_end is not None:
            self._on_end(self)
        return self.finish_delivery() if wait else []

    def finish_delivery(self) -> list[Pending]:
        """Give remote backends up to ``flush_timeout_s`` to catch up (a sink that fails once more
        after the end is not waited for), then report (via ``echo``) what is still pending and how
        to deliver it. Returns the pending counts; runs once."""
        with self._lock:
            if not self._ended:
                raise RuntimeError("end the run before finishing its delivery")
            if self._delivery_done:
                return self.pending
            self._delivery_done = True
        self.pending = self._finish_workers()
        return self.pending

    def _finish_workers(self) -> list[Pending]:
        delivery = self._delivery
        if delivery is None:
            return []
        from insideLLMs.tracking.sink import Pending

        timeout = self.config.flush_timeout_s
        delivery.finish(timeout)
        pending = []
        where = _display_path(self.dir)
        for mark in delivery.marks():
            count = self.journal.last_seq - mark.delivered_seq
            url = (mark.state or {}).get("url")
            if count <= 0:
                if url:
                    self._echo(f"{mark.sink}: {url}")
                continue
            reason = mark.last_error or delivery.error or f"still sending after {timeout:g} s"
            pending.append(Pending(mark.sink, count, reason))
            self._echo(
                f"! {mark.sink}: {count:,} events not delivered ({reason}); they are kept in {where}\n"
                f"  deliver them later with: insidellms tracking sync {where}"
            )
        return pending

    def __enter__(self) -> "TrackingRun":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc_type is None:
            self.end("finished")
        elif issubclass(exc_type, KeyboardInterrupt):  # Ctrl-C, or SIGTERM through the CLI
            self.end("interrupted")
        elif issubclass(exc_type, SystemExit) and getattr(exc, "code", None) in (None, 0):
            self.end("finished")
        else:
            self.end("failed")

    # -- background upkeep -------------------------------------------------------------------

    def _sink_options(self, backend: str) -> dict[str, Any]:
        from insideLLMs.config import BACKENDS

        cfg = self.config
        spec = BACKENDS.get(backend)  # a custom sink ("module:Class") is given every remote backend's options
        names = spec.options if spec else tuple(dict.fromkeys(n for b in BACKENDS.values() if b.sink for n in b.options))
        options = {n: getattr(cfg, n, None) for n in names if n != "run_name"}
        if "run_name" in names:
            options["run_name"] = self.name
        if options.get("log_dir"):
            options["log_dir"] = str(Path(options["log_dir"]).resolve())
        if backend == "mlflow" and not options.get("experiment_name") and cfg.project:
            options["experiment_name"] = cfg.project
        return {k: v for k, v in options.items() if v is not None}

    def _tick(self) -> None:
        last_views = time.monotonic()
        while not self._stop.wait(0.5):
            try:
                self.journal.flush()
                if time.monotonic() - last_views >= HEARTBEAT_S:
                    last_views = time.monotonic()
                    self._info.update(process_info())
                    with self._lock:
                        if not self._ended and not self.deleted:
                            self._write_views(params=False)
                    self.journal.sync()  # on disk within seconds, off the evaluation's thread
            except Exception as exc:  # a full disk must not kill the thread silently
                self._warn_once("tick", f"! tracking: cannot write {self.dir}: {exc}")

    def _write_views(self, *, params: bool = True) -> None:
        """run.json, params.json, metrics.json from the state (its event count from the journal)."""
        self.state.last_seq = self.journal.last_seq
        write_views(self.dir, self.state, self._info, params=params)

    @property
    def deleted(self) -> bool:
        """The run's folder was removed while it ran (the journal lives on in an unlinked file): writing the
        views or artifacts would leave a folder without a journal, which no command can read."""
        return not self.journal.path.exists()

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self._echo(message)

    def __repr__(self) -> str:
        return f"TrackingRun(key={self.key!r}, name={self.name!r}, status={self.status!r})"


def _write_redacted(path: Path, payload: bytes, suffix: str) -> str:
    from insideLLMs.tracking.store._artifact_copy import redacted_bytes

    out = redacted_bytes(payload, suffix)
    path.write_bytes(out)
    return hashlib.sha256(out).hexdigest()


def _display_path(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel
