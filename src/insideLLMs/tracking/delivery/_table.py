"""The per-example table: flat rows built from the run directory's records, at delivery time.

A tracked evaluation does no per-example table work. Its ``table`` event points at the (redacted)
``records.jsonl`` artifact with ``"format": "records"``, plus the ``timings.jsonl`` artifact for
latencies. Whoever needs rows (the delivery to W&B, MLflow or TensorBoard, in the delivery process
or in ``tracking sync``) calls ``rows_event`` first: it writes the flat rows once, to
``sinks/tables/<name>-<seq>.jsonl``, and returns the event sinks have always been given (``path`` of a file
of flat rows), so sinks, including custom ones, see no difference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping

import orjson

from insideLLMs.rundir import atomic_path, read_jsonl, record_key
from insideLLMs.tracking.store._views import SINKS_DIR
from insideLLMs.secrets import dumps_redacted
from insideLLMs.tracking.sink import RECORDS_FORMAT, Event
from insideLLMs.tracking._loggable import flatten_params, sha256_file



def record_row(step: int, record: Mapping[str, Any], latency_ms: float | None = None) -> dict[str, Any]:
    """One flat row of the per-example table, from a ``records.jsonl`` record (``Record.to_dict``)."""
    output = record.get("output")
    error = record.get("error")
    usage = record.get("usage")
    row: dict[str, Any] = {
        "step": step,
        "model": (record.get("model") or {}).get("id"),
        "probe": (record.get("probe") or {}).get("id"),
        "example_id": record.get("example_id"),
        **({"epoch": record["epoch"]} if record.get("epoch") is not None else {}),
        "status": record.get("status"),
        "passed": record.get("passed"),
        "latency_ms": None if latency_ms is None else round(latency_ms, 3),
        "input": record.get("input"),
        "output": "\n---\n".join(map(str, output)) if isinstance(output, list) else output,
        "error": f"{error.get('type')}: {error.get('message')}" if isinstance(error, dict) else None,
    }
    if isinstance(usage, dict):
        row["prompt_tokens"] = usage.get("prompt_tokens")
        row["completion_tokens"] = usage.get("completion_tokens")
    for name, value in (record.get("scores") or {}).items():
        row[f"score.{name}"] = value
    return row


def flat_rows(records: Path, timings: Path | None = None) -> Iterator[dict[str, Any]]:
    """Flat rows from a records file, with each row's latency from the timings file beside it (the
    run directory writes both line for line; a timing on another line is found by its key)."""
    lines: list[dict[str, Any]] = []
    if timings is not None and timings.is_file():
        lines = list(read_jsonl(timings))
    by_key = {record_key(t): t for t in lines}  # (model, probe, example, epoch): epochs of one example differ
    for step, record in enumerate(read_jsonl(records)):
        key = record_key(record)
        timing = lines[step] if step < len(lines) else None
        if timing is None or record_key(timing) != key:
            timing = by_key.get(key)
        yield flatten_params(record_row(step, record, timing.get("latency_ms") if timing else None))


def rows_event(run_dir: Path, event: Event) -> Event:
    """``event`` as sinks expect it: a ``records``-format table becomes a file of flat rows
    (written now if it is not there yet); any other event is returned as it is. A table whose
    records file is missing keeps pointing at nothing, and sinks skip it."""
    data = event.data
    if event.kind != "table" or data.get("format") != RECORDS_FORMAT:
        return event
    name = Path(str(data.get("name") or "examples")).name
    rel = f"{SINKS_DIR}/tables/{name}-{event.seq}.jsonl"
    dest = run_dir / rel
    source = run_dir / str(data.get("path", ""))
    if not dest.is_file() and source.is_file():
        timings = run_dir / str(data["timings"]) if data.get("timings") else None
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(dest) as tmp, open(tmp, "wb") as fh:  # complete or absent: a second delivery reuses it
            for row in flat_rows(source, timings):
                fh.write(dumps_redacted(row, orjson.OPT_SORT_KEYS) + b"\n")
    out = {k: v for k, v in data.items() if k not in ("format", "timings")}
    out["path"] = rel
    if dest.is_file():
        out.update(sha256=sha256_file(dest), size=dest.stat().st_size)
    return Event(seq=event.seq, kind=event.kind, ts=event.ts, data=out)
