"""``insidellms tracking push``: replay an existing run directory into a backend, after the fact.

The run directory (records, timings, summary, manifest, config) becomes the same journal events a
live tracked run would have written: params, one metrics step per record, the final metrics, tags,
the run's files as artifacts, the per-example table and the end. The journal goes in a run folder
under ``output_dir`` named after the run's deterministic run_id and the backend, and is delivered by
the normal sync, so pushing the same run again finds its delivered marks and sends nothing twice
(``new_run=True`` makes a new folder, hence a new remote run).
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from insideLLMs.events import RunStarted
from insideLLMs.rundir import RUN_FILES, Record, RunReader, Timing, record_key
from insideLLMs.tracking.store._journal import JOURNAL_FILE, JournalWriter, read_journal
from insideLLMs.tracking._evaluation import (
    default_run_name,
    environment_tags,
    example_metrics,
    final_metrics,
    run_params,
    shard_suffix,
    shard_tags,
)
from insideLLMs.tracking._listener import REPLACED_FILES, TABLE_NAME
from insideLLMs.tracking.store._views import ARTIFACTS_DIR, RunState, process_info, write_views
from insideLLMs.secrets import redact
from insideLLMs.tracking.store._artifact_copy import copy_redacted
from insideLLMs.tracking.sink import RECORDS_FORMAT
from insideLLMs.tracking._loggable import flatten_params, sha256_file
from insideLLMs.tracking.delivery._worker import check_backend

DEFAULT_OUTPUT_DIR = "./tracking_logs"


@dataclass(frozen=True)
class PushResult:
    folder: Path  # the tracking run folder holding the journal
    backend: str
    events: int
    sent: int  # events delivered by this push
    pending: int  # events the backend still lacks (deliver with `tracking sync`)
    reused: bool  # True when this run directory had been pushed to this backend before
    error: str | None = None
    url: str | None = None


def _timing(d: dict[str, Any]) -> Timing:
    return Timing(model_id=d.get("model", ""), probe_id=d.get("probe", ""), example_id=d.get("example_id", ""),
                  latency_ms=float(d.get("latency_ms") or 0.0), attempts=int(d.get("attempts") or 1),
                  cache_hit=bool(d.get("cache_hit")), started_at=float(d.get("started_at") or 0.0),
                  finished_at=float(d.get("finished_at") or 0.0), epoch=d.get("epoch"))


def _config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "config.resolved.yaml"
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: malformed YAML ({exc})") from None
    return data if isinstance(data, dict) else {}


def _run_started(run_dir: Path, manifest: dict[str, Any], config: dict[str, Any], total: int) -> RunStarted:
    runner = config.get("runner") if isinstance(config.get("runner"), dict) else {}
    models, probes = manifest.get("models"), manifest.get("probes")
    if not models or not probes:  # an older or hand-made manifest: take them from the records
        seen_models: dict[str, Any] = {}
        seen_probes: dict[str, Any] = {}
        for rec in RunReader(run_dir).records():
            seen_models.setdefault(str((rec.get("model") or {}).get("id")), rec.get("model") or {})
            seen_probes.setdefault(str((rec.get("probe") or {}).get("id")), rec.get("probe") or {})
        models, probes = models or list(seen_models.values()), probes or list(seen_probes.values())
    return RunStarted(
        run_id=str(manifest.get("run_id") or run_dir.name), run_dir=run_dir.resolve(), name=config.get("name"),
        models=models, probes=probes,
        datasets=manifest.get("datasets") or [], generation=manifest.get("generation") or {},
        runner={k: runner[k] for k in ("concurrency", "max_retries", "timeout_s") if k in runner}
        | {k: manifest[k] for k in ("epochs", "reducer") if k in manifest},  # as a live-tracked run logs them
        total=total, library_version=str(manifest.get("library_version") or ""), config=config,
        shard=_shard(manifest),
    )


def _shard(manifest: dict[str, Any]) -> str | None:
    shard = manifest.get("shard")
    return f"{shard.get('index')}/{shard.get('count')}" if isinstance(shard, dict) else None


def write_push_journal(run_dir: Path, folder: Path, key: str, *, experiment: str | None = None,
                       project: str | None = None) -> int:
    """Write the journal (and the local view files) a tracked run of ``run_dir`` would have left.

    Built in a temp folder and moved into place, so ``folder`` is either complete or absent.
    Returns the number of events.
    """
    reader = RunReader(run_dir)
    manifest = reader.manifest or {}
    summary = reader.summary
    config = _config(run_dir)
    timings = {record_key(t): t for t in reader.timings()}  # (model, probe, example, epoch)
    total = sum(1 for _ in reader.records())
    started = _run_started(run_dir, manifest, config, total)
    times = [t.get("started_at") for t in timings.values() if t.get("started_at")]
    start_ts = min(times) if times else (run_dir / "records.jsonl").stat().st_mtime
    tracking = config.get("tracking") if isinstance(config.get("tracking"), dict) else {}
    cfg_tags = tracking.get("tags") or []
    tags = {**({str(k): str(v) for k, v in cfg_tags.items()} if isinstance(cfg_tags, dict) else {str(t): "" for t in cfg_tags}),
            "experiment": experiment or tracking.get("experiment_name") or project or tracking.get("project")
            or started.name or default_run_name(started),
            "insidellms_version": started.library_version, **environment_tags(), "pushed": "true"}
    if started.shard:
        tags.update(shard_tags(started))

    tmp = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.mkdir(parents=True)
    try:
        journal = JournalWriter(tmp / JOURNAL_FILE, key, flush_every=5000, flush_interval_s=3600)
        state = RunState(key=key)

        def add(kind: str, data: dict[str, Any], ts: float) -> None:
            state.apply(journal.append(kind, data, ts=ts))

        name = (started.name or default_run_name(started)) + shard_suffix(started)
        add("run_start", {"name": name, "run_key": key, "tags": redact(tags),
                          "project": project or tracking.get("project"),
                          "experiment": experiment or tracking.get("experiment_name")}, start_ts)
        add("params", {"params": redact(flatten_params(run_params(started)))}, start_ts)
        (tmp / ARTIFACTS_DIR).mkdir()
        latencies: list[float] = []
        end_ts = start_ts
        for step, rec in enumerate(reader.records()):
            record = Record.from_dict(rec)
            t = timings.get(record_key(rec))
            timing = _timing(t or {"model": record.model.get("id"), "probe": record.probe.get("id"),
                                   "example_id": record.example_id, "epoch": record.epoch})
            metrics = example_metrics(record.status, record.passed, record.scores or {},
                                      timing.latency_ms if t is not None else None)
            if t is not None:
                latencies.append(timing.latency_ms)
            ts = timing.finished_at or start_ts
            end_ts = max(end_ts, ts)
            add("metrics", {"metrics": metrics, "step": step}, ts)
        if summary is not None:
            finals = {k: float(v) for k, v in final_metrics(summary, latencies).items()
                      if isinstance(v, (int, float)) and not isinstance(v, bool)}
            add("metrics", {"metrics": finals, "step": None}, end_ts)
        for name in RUN_FILES:
            src = run_dir / name
            if src.is_file():
                dest = tmp / ARTIFACTS_DIR / name
                digest = copy_redacted(src, dest, link=name in REPLACED_FILES)
                add("artifact", {"name": name, "path": f"{ARTIFACTS_DIR}/{name}", "sha256": digest,
                                 "size": dest.stat().st_size}, end_ts)
        records = tmp / ARTIFACTS_DIR / "records.jsonl"
        table = {"name": TABLE_NAME, "path": f"{ARTIFACTS_DIR}/records.jsonl", "format": RECORDS_FORMAT,
                 "sha256": sha256_file(records), "size": records.stat().st_size, "rows": total}
        if (tmp / ARTIFACTS_DIR / "timings.jsonl").is_file():
            table["timings"] = f"{ARTIFACTS_DIR}/timings.jsonl"
        add("table", table, end_ts)
        add("run_end", {"status": "finished"}, end_ts)
        journal.close()
        write_views(tmp, state, {"backends": [], "journal": JOURNAL_FILE, "pushed_from": str(run_dir.resolve()),
                                 **process_info()})
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return state.last_seq


def push_run_dir(run_dir: str | Path, backend: str, options: dict[str, Any] | None = None,
                 new_run: bool = False, *, echo: Callable[[str], None] = lambda _m: None) -> PushResult:
    """Log the run directory ``run_dir`` to ``backend`` (a name in ``config.BACKENDS``, or a custom sink).

    ``options``: the backend's options (tracking_uri, experiment_name, project, entity, log_dir, mode,
    …) and ``output_dir`` (where the journal goes, default ./tracking_logs).
    """
    from insideLLMs.tracking.delivery._sync import sync
    from insideLLMs.tracking.delivery._worker import DeliveryMark, sink_name

    check_backend(backend)
    run_dir = Path(run_dir)
    options = {k: v for k, v in (options or {}).items() if v is not None}
    output_dir = Path(options.pop("output_dir", None) or DEFAULT_OUTPUT_DIR).resolve()
    manifest = RunReader(run_dir).manifest or {}
    run_id = str(manifest.get("run_id") or run_dir.resolve().name)
    safe_backend = backend.replace(":", "-").replace(".", "-")
    shard = _shard(manifest)  # a shard is a run of its own, apart from the merged run (same run_id)
    part = f"_shard-{shard.replace('/', '-of-')}" if shard else ""
    key = f"run_{run_id}{part}_{safe_backend}" + (f"_{uuid.uuid4().hex[:8]}" if new_run else "")
    folder = output_dir / key
    reused = (folder / JOURNAL_FILE).is_file()
    if not reused:
        output_dir.mkdir(parents=True, exist_ok=True)
        write_push_journal(run_dir, folder, key, experiment=options.get("experiment_name"),
                           project=options.get("project"))
        echo(f"{run_dir} → {folder} ({'new tracked run' if new_run else 'journal written'})")
    else:
        echo(f"{run_dir} was pushed to {backend} before ({folder}); sending only what is missing")
    from insideLLMs.tracking.store._journal import read_journal

    events = read_journal(folder).last_seq
    if backend == "local":
        return PushResult(folder, backend, events, 0, 0, reused)
    outcomes = sync(folder, backends=[backend], options=options, echo=echo)
    sent = sum(o.sent for o in outcomes)
    pending = sum(o.pending for o in outcomes)
    error = next((o.error for o in outcomes if o.error), None)
    mark = DeliveryMark.load(folder, sink_name(backend))
    url = (mark.state or {}).get("url") if mark is not None else None
    return PushResult(folder, backend, events, sent, pending, reused, error, url)


def push_run(run_dir: str | Path, *, backend: str, options: dict[str, Any] | None = None, new_run: bool = False,
             echo: Callable[[str], None] = print) -> PushResult:
    """What the CLI calls: push, report, and raise ``ValueError`` (one line, exit 1) if events are left pending."""
    started = time.monotonic()
    result = push_run_dir(run_dir, backend, options, new_run, echo=echo)
    if result.pending:
        raise ValueError(
            f"{backend}: {result.pending:,} of {result.events:,} events not delivered"
            f"{f' ({result.error})' if result.error else ''}; they are kept in {result.folder}. "
            f"Deliver them with: insidellms tracking sync {result.folder}"
        )
    took = time.monotonic() - started
    what = f"{result.sent:,} events delivered" if result.sent else "already delivered: nothing sent"
    echo(f"pushed {run_dir} to {backend}: {what} in {took:.1f}s" + (f"\n{backend}: {result.url}" if result.url else ""))
    return result


def catch_up_killed_run(folder: Path) -> bool:
    """Close a tracked evaluation whose process died (SIGKILL, a crash) with what its run directory
    holds: the records written after the journal's last flush become their steps, records.jsonl and
    timings.jsonl (whole lines) its artifacts and table, and the run ends ``killed`` at its last sign
    of life. False (nothing done) unless ``folder`` is such a run. ``insidellms tracking sync`` calls it."""
    import hashlib

    import orjson

    from insideLLMs.rundir import RECORDS, TIMINGS, write_atomic
    from insideLLMs.tracking.store._artifact_copy import redacted_bytes
    from insideLLMs.tracking.store._views import load_run

    view = load_run(folder)
    if view.state.status != "running" or view.status != "killed":
        return False
    ended = view.ended_at or time.time()
    state = view.state
    journal = JournalWriter.reopen(folder / JOURNAL_FILE)

    def add(kind: str, data: dict[str, Any]) -> None:
        state.apply(journal.append(kind, data, ts=ended))

    try:
        source = state.params.get("run_dir")
        run_dir = Path(view.info.get("cwd") or ".") / source if source else None
        if run_dir is not None and run_dir.is_dir():
            steps = [e.data["step"] for e in read_journal(folder).events
                     if e.kind == "metrics" and e.data.get("step") is not None]
            first = max(steps) + 1 if steps else int(state.tags.get("resumed_from") or 0)
            lines = {name: _whole_lines(run_dir / name) for name in (RECORDS, TIMINGS)}
            for step in range(first, min(len(lines[RECORDS]), len(lines[TIMINGS]))):
                rec, tim = orjson.loads(lines[RECORDS][step]), orjson.loads(lines[TIMINGS][step])
                add("metrics", {"metrics": example_metrics(rec.get("status", ""), rec.get("passed"),
                                                           rec.get("scores") or {}, tim.get("latency_ms")),
                                "step": step})
            logged: dict[str, dict[str, Any]] = {}
            for name, content in lines.items():
                if content:
                    data = redacted_bytes(b"".join(content), ".jsonl")
                    (folder / ARTIFACTS_DIR).mkdir(exist_ok=True)
                    write_atomic(folder / ARTIFACTS_DIR / name, data)
                    logged[name] = {"name": name, "path": f"{ARTIFACTS_DIR}/{name}",
                                    "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
                    add("artifact", logged[name])
            if RECORDS in logged:
                table = {"name": TABLE_NAME, "path": logged[RECORDS]["path"], "format": RECORDS_FORMAT,
                         "sha256": logged[RECORDS]["sha256"], "size": logged[RECORDS]["size"]}
                if TIMINGS in logged:
                    table["timings"] = logged[TIMINGS]["path"]
                add("table", table)
        add("run_end", {"status": "killed"})
    finally:
        journal.close()
    write_views(folder, state, view.info)
    return True


def _whole_lines(path: Path) -> list[bytes]:
    """A run-directory JSONL file's complete lines (a killed writer may have left a torn last one)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return data[:data.rfind(b"\n") + 1].splitlines(keepends=True)
