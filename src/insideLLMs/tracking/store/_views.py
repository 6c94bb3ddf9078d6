"""The local backend: a run folder of small JSON files a person can read, derived from the journal.

```
tracking_logs/run_<id>/
  journal.jsonl   every event, append-only (the history; see docs/journal-format.md)
  run.json        name, status, tags, start/end, backends, pid/host/heartbeat
  params.json     every parameter
  metrics.json    the latest value of every metric (a tracked evaluation's per-example series are
                  named ``example/…``, its run-level metrics bare)
  artifacts/      logged objects (<name>.json) and copied files
  sinks/          per remote backend: how far it has been delivered (<backend>.json)
```

The small files are rewritten atomically (temp file + ``os.replace``) at flush points; the journal
is the truth, so a run killed mid-write is rebuilt from it on read.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

import msgspec
import orjson

from insideLLMs.canonical import dumps_pretty
from insideLLMs.rundir import write_atomic
from insideLLMs.tracking.store._journal import JOURNAL_FILE, JournalError, read_journal
from insideLLMs.tracking.sink import Event
from insideLLMs.errors import UserError

RUN_FILE = "run.json"
PARAMS_FILE = "params.json"
METRICS_FILE = "metrics.json"
ARTIFACTS_DIR = "artifacts"
SINKS_DIR = "sinks"
RUN_PREFIX = "run_"
HEARTBEAT_S = 5.0
STALE_AFTER_S = 600.0  # a running run whose heartbeat is older than this is taken as killed



def read_json(path: Path, default: Any = None) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return default


class RunState(msgspec.Struct):
    """What the events of one run add up to. ``keep_series`` also keeps every (step, value) point.
    ``stepped``: the names whose latest value was logged with a step (a series point); the others
    are run-level metrics."""

    key: str = ""
    name: str = ""
    status: str = "running"
    tags: dict[str, str] = msgspec.field(default_factory=dict)
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    metrics: dict[str, float] = msgspec.field(default_factory=dict)
    series: dict[str, list[tuple[int, float]]] = msgspec.field(default_factory=dict)
    stepped: set[str] = msgspec.field(default_factory=set)
    artifacts: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)  # path -> artifact/table event data
    started_at: float | None = None
    ended_at: float | None = None
    last_seq: int = 0
    last_ts: float | None = None  # the time of the last event (a killed run's last sign of life)
    keep_series: bool = False

    def apply(self, event: Event) -> None:
        self.last_seq = event.seq
        self.last_ts = event.ts
        kind, data = event.kind, event.data
        if kind == "metrics":
            self.metrics.update(data["metrics"])
            step = data.get("step")
            if step is not None:
                self.stepped.update(data["metrics"])
                if self.keep_series:
                    for name, value in data["metrics"].items():
                        self.series.setdefault(name, []).append((step, value))
            else:
                self.stepped.difference_update(data["metrics"])
        elif kind == "params":
            self.params.update(data["params"])
        elif kind == "tags":
            self.tags.update(data["tags"])
        elif kind == "artifact":
            self.artifacts[data["path"]] = {"kind": kind, **data}
        elif kind == "table":  # a table over an artifact's file (format "records") is listed beside it
            key = data["path"] if data.get("format") is None else f"{data['path']}#{data.get('name')}"
            self.artifacts[key] = {"kind": kind, **data}
        elif kind == "run_start":
            self.key = data.get("run_key", self.key)
            self.name = data.get("name", "")
            self.tags.update(data.get("tags") or {})
            self.started_at = event.ts
        elif kind == "run_end":
            self.status = data["status"]
            self.ended_at = event.ts


def write_views(run_dir: Path, state: RunState, info: dict[str, Any], *, params: bool = True) -> None:
    """(Re)write run.json, params.json and metrics.json from ``state``; ``info`` adds pid, backends…
    ``params=False``: params.json is already current (a live run writes it on every ``log_params``)."""
    write_atomic(run_dir / RUN_FILE, dumps_pretty(run_json(state, info)))
    if params:
        write_atomic(run_dir / PARAMS_FILE, dumps_pretty(state.params))
    write_atomic(run_dir / METRICS_FILE, dumps_pretty(state.metrics))


def run_json(state: RunState, info: dict[str, Any]) -> dict[str, Any]:
    return {
        **info,
        "key": state.key,
        "name": state.name,
        "status": state.status,
        "tags": state.tags,
        "started_at": state.started_at,
        "ended_at": state.ended_at,
        "events": state.last_seq,
    }


def process_info() -> dict[str, Any]:
    """Who writes the run (liveness is checked by pid) and from where (a relative run_dir param's base)."""
    return {"pid": os.getpid(), "host": platform.node(), "cwd": os.getcwd(), "heartbeat_at": time.time()}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child not yet reaped is a zombie: dead for our purposes
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


def writer_is_dead(info: dict[str, Any], now: float | None = None) -> bool:
    """True if the process that wrote a 'running' run is gone (same host: pid check; else stale heartbeat)."""
    now = time.time() if now is None else now
    heartbeat = info.get("heartbeat_at") or 0.0
    if info.get("host") == platform.node() and info.get("pid"):
        if not _pid_alive(int(info["pid"])):
            return True
    return now - heartbeat > STALE_AFTER_S


class RunView(msgspec.Struct):
    """A run folder as the CLI shows it: the folded journal plus run.json's process info."""

    dir: Path
    state: RunState
    info: dict[str, Any]
    torn_tail: bool = False

    @property
    def key(self) -> str:
        return self.state.key or self.dir.name

    @property
    def status(self) -> str:
        """finished / failed / killed from the journal; a 'running' run whose process died is 'killed'."""
        if self.state.status == "running" and writer_is_dead(self.info):
            return "killed"
        return self.state.status

    @property
    def run_metrics(self) -> dict[str, float]:
        """The run-level metrics: those whose latest value was logged without a step (not a series point)."""
        stepped = self.state.stepped
        return {k: v for k, v in self.state.metrics.items() if k not in stepped}

    @property
    def backends(self) -> list[str]:
        return list(self.info.get("backends") or ["local"])

    @property
    def ended_at(self) -> float | None:
        """When the run ended; for a run whose process died without saying so, its last sign of life
        (its last event or heartbeat, whichever is later)."""
        if self.state.ended_at is not None:
            return self.state.ended_at
        if self.status == "killed":
            return max(self.state.last_ts or 0.0, self.info.get("heartbeat_at") or 0.0) or None
        return None

    @property
    def duration_s(self) -> float | None:
        if self.state.started_at is None:
            return None
        end = self.ended_at or self.info.get("heartbeat_at") or self.state.started_at
        return max(0.0, end - self.state.started_at)


def load_run(run_dir: str | Path, *, series: bool = False) -> RunView:
    """Read a run folder back from its journal (the small JSON files may lag a killed run)."""
    run_dir = Path(run_dir)
    contents = read_journal(run_dir)
    state = RunState(key=contents.header.run_key, keep_series=series)
    for event in contents.events:
        state.apply(event)
    info = read_json(run_dir / RUN_FILE, {}) or {}
    return RunView(dir=run_dir, state=state, info=info, torn_tail=contents.torn_tail is not None)


def is_run_dir(path: Path) -> bool:
    return (path / JOURNAL_FILE).is_file()


def find_runs(path: str | Path) -> list[Path]:
    """The run folders at ``path``: itself if it is one, else its ``run_*`` children, oldest first."""
    path = Path(path)
    if is_run_dir(path):
        return [path]
    if not path.is_dir():
        return []
    runs = [p for p in path.iterdir() if p.is_dir() and is_run_dir(p)]
    return sorted(runs, key=_started_at)


def _started_at(run_dir: Path) -> tuple[float, str]:
    info = read_json(run_dir / RUN_FILE, {}) or {}
    started = info.get("started_at")
    if started is None:
        try:
            started = (run_dir / JOURNAL_FILE).stat().st_mtime
        except OSError:
            started = 0.0
    return (float(started), run_dir.name)


class RunNotFound(UserError, LookupError):
    pass


def resolve_run(ref: str | None, root: str | Path = "tracking_logs") -> Path:
    """A run folder from a path, a run key (or a unique prefix of one), a run name, or None (the latest)."""
    root = Path(root)
    if ref is not None and is_run_dir(Path(ref)):
        return Path(ref)
    runs = find_runs(root)
    if not runs:
        raise RunNotFound(f"no tracked runs in {root} (track a run first, or pass --dir)")
    if ref is None:
        return runs[-1]
    matches = [r for r in runs if r.name == ref or r.name == f"{RUN_PREFIX}{ref}"]
    matches = matches or [r for r in runs if r.name.startswith(ref) or r.name.startswith(f"{RUN_PREFIX}{ref}")]
    if not matches:
        matches = [r for r in runs if (read_json(r / RUN_FILE, {}) or {}).get("name") == ref]
        if matches:
            return matches[-1]  # the latest run of that name
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RunNotFound(f"no run {ref!r} in {root}; see: insidellms tracking list {root}")
    raise RunNotFound(f"{ref!r} matches {len(matches)} runs in {root}: {', '.join(m.name for m in matches[:5])}")


__all__ = [
    "ARTIFACTS_DIR", "JournalError", "METRICS_FILE", "PARAMS_FILE", "RUN_FILE", "SINKS_DIR", "RunNotFound",
    "RunState", "RunView", "find_runs", "load_run", "read_json", "resolve_run",
    "write_views", "writer_is_dead",
]
