"""``merge_shards``: the partial run directories of ``--shard 0/N`` … ``--shard N-1/N`` joined into the run
directory the unsharded run would have written, byte for byte.

Every part is checked before anything is written (the same run and config, every shard once, each one
finished). The records are then merged k-way by their position in the whole run (each timings.jsonl line of a
part carries it), one line of each part in memory at a time, into a temporary folder beside the output that
takes the output's name only when everything is written: a refused or failed merge leaves nothing behind.
summary.json and report.html are rebuilt from the merged stream exactly as the engine builds them while it
writes, so they come out the same; only their ``volatile`` parts (latencies, wall time) differ between runs.
"""

from __future__ import annotations

import heapq
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import orjson

from insideLLMs.canonical import dumps_bytes, dumps_pretty
from insideLLMs.jsonl import iter_lines, parse_object
from insideLLMs.rundir import (
    CONFIG,
    INCOMPLETE,
    MANIFEST,
    RECORDS,
    REPORT,
    SUMMARY,
    TIMINGS,
    RunDirError,
    SummaryBuilder,
    summary_settings,
    write_atomic,
)
from insideLLMs.run._engine import _report_data, _write_report
from insideLLMs.run._shards import POSITION, ShardError

__all__ = ["merge_shards"]


@dataclass(frozen=True)
class _Part:
    path: Path
    manifest: dict[str, Any]

    @property
    def index(self) -> int:
        return self.manifest["shard"]["index"]

    @property
    def count(self) -> int:
        return self.manifest["shard"]["count"]


def merge_shards(parts: Sequence[str | Path], out: str | Path, *, overwrite: bool = False) -> Path:
    """Write the run directory ``out`` from the partial run directories ``parts`` (any order); return ``out``.

    Raises ``ShardError`` (nothing written) for parts of different runs or configs, a shard given twice or
    missing, an interrupted part, or an existing ``out`` without ``overwrite``.
    """
    out = Path(out)
    checked = _check_parts([Path(p) for p in parts])
    _check_output(out, overwrite, checked)
    tmp = out.with_name(f".{out.name}.merging-{os.urandom(4).hex()}")
    tmp.mkdir(parents=True)
    try:
        report = _write(checked, tmp)
        if out.exists():  # --overwrite of a run directory: the old one goes only once the new one is whole
            old = out.with_name(f".{out.name}.replaced-{os.urandom(4).hex()}")
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if report is not None:  # the page names its folder, so it is written in place, as the engine does
        _write_report(out, report)
    return out


def _check_parts(paths: list[Path]) -> list[_Part]:
    if not paths:
        raise ShardError("merge: give the partial run directories to merge (insidellms merge PART... -o RUN_DIR)")
    parts = [_read_part(path) for path in paths]
    first = parts[0]
    for part in parts[1:]:
        for key, what in (("run_id", "run"), ("config_hash", "config")):
            if part.manifest.get(key) != first.manifest.get(key):
                raise ShardError(
                    f"{part.path}: is shard of {what} {part.manifest.get(key)}, but {first.path} of {what} "
                    f"{first.manifest.get(key)}; merge only the shards of one run (same config, data and models)"
                )
        if part.count != first.count:
            raise ShardError(
                f"{part.path}: is shard {part.index}/{part.count}, but {first.path} is shard "
                f"{first.index}/{first.count}; merge shards of one split (the same N)"
            )
    by_index: dict[int, _Part] = {}
    for part in parts:
        if part.index in by_index:
            raise ShardError(
                f"{part.path}: shard {part.index}/{part.count} is also in {by_index[part.index].path}; "
                "give each shard once"
            )
        by_index[part.index] = part
    missing = [i for i in range(first.count) if i not in by_index]
    if missing:
        shown = ", ".join(f"{i}/{first.count}" for i in missing[:5]) + (", …" if len(missing) > 5 else "")
        raise ShardError(
            f"merge: shard {shown} missing ({len(parts)} of {first.count} given); run it with "
            f"--shard {missing[0]}/{first.count}, then merge every shard"
        )
    return [by_index[i] for i in range(first.count)]


def _read_part(path: Path) -> _Part:
    if not path.is_dir():
        raise ShardError(f"{path}: no such run directory")
    if (path / INCOMPLETE).exists():
        raise ShardError(f"{path}: is an interrupted shard; finish it with --resume (and the same --shard), then merge")
    if not (path / MANIFEST).is_file() or not (path / RECORDS).is_file():
        raise ShardError(f"{path}: not a run directory (no {MANIFEST} or {RECORDS})")
    try:
        manifest = orjson.loads((path / MANIFEST).read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ShardError(f"{path / MANIFEST}: malformed JSON: {exc.args[0]}") from None
    shard = manifest.get("shard") if isinstance(manifest, dict) else None
    if not isinstance(shard, dict) or not {"index", "count", "run_records"} <= shard.keys():
        raise ShardError(
            f"{path}: is not a shard (its manifest names none); merge the run directories of "
            "insidellms run/harness --shard I/N"
        )
    return _Part(path, manifest)


def _check_output(out: Path, overwrite: bool, parts: list[_Part]) -> None:
    if out.exists() and not out.is_dir():
        raise ShardError(f"{out}: is a file; choose another -o")
    if out.exists() and not overwrite:
        raise ShardError(f"{out}: already exists; pass --overwrite to replace it, or choose another -o")
    if (
        out.exists()
        and any(out.iterdir())
        and not any((out / name).exists() for name in (RECORDS, MANIFEST, INCOMPLETE))
    ):
        raise ShardError(f"{out}: exists and is not an insideLLMs run directory; choose another -o")
    resolved = out.resolve()
    for part in parts:
        if part.path.resolve() == resolved:
            raise ShardError(f"{out}: is one of the shards being merged; choose another -o")


def _lines(part: _Part) -> Iterator[tuple[int, bytes, dict[str, Any], dict[str, Any]]]:
    """(position in the whole run, the record's line as written, the record, its timing without the position),
    in file order."""
    records, timings = part.path / RECORDS, part.path / TIMINGS
    if not timings.is_file():
        raise ShardError(f"{part.path}: has no {TIMINGS} (it says where each record goes); run the shard again")
    timing_lines = iter_lines(timings, RunDirError)
    for lineno, _, line in iter_lines(records, RunDirError):
        record = parse_object(records, lineno, line, RunDirError)
        got = next(timing_lines, None)
        if got is None:
            raise ShardError(f"{records}:{lineno}: has no line in {TIMINGS}; run the shard again")
        timing = parse_object(timings, got[0], got[2], RunDirError)
        position = timing.pop(POSITION, None)
        if not isinstance(position, int):
            raise ShardError(f"{timings}:{got[0]}: no '{POSITION}' (not written by --shard); run the shard again")
        yield position, line.rstrip(b"\r\n") + b"\n", record, timing
    if next(timing_lines, None) is not None:
        raise ShardError(f"{timings}: has more lines than {RECORDS}; run the shard again")


def _write(parts: list[_Part], out: Path) -> Any:
    """Every file but report.html; returns what the report needs (None when the shards wrote none)."""
    first = parts[0]
    run_id = first.manifest["run_id"]
    total = first.manifest["shard"]["run_records"]
    manifest = first.manifest
    summary = SummaryBuilder(run_id, **summary_settings(manifest))
    report = _report_data() if any((p.path / REPORT).exists() for p in parts) else None
    expected = 0
    with open(out / RECORDS, "wb") as records, open(out / TIMINGS, "wb") as timings:
        for position, line, record, timing in heapq.merge(*(_lines(p) for p in parts), key=lambda item: item[0]):
            if position != expected:
                what = "twice" if position < expected else f"but position {expected} is in no shard"
                raise ShardError(
                    f"merge: the record at position {position} of run {run_id} comes {what}; "
                    "the shards do not add up to one run (run them again)"
                )
            expected += 1
            records.write(line)
            timings.write(dumps_bytes(timing) + b"\n")
            summary.add_record(record)
            summary.add_timing(timing)
            if report is not None:
                report.add_record(record)
    if expected != total:
        raise ShardError(f"merge: the shards hold {expected} of the run's {total} records; run them again")
    walls = [((_json(p.path / SUMMARY).get("volatile") or {}).get("wall_time_s")) for p in parts]
    built = summary.build(wall_time_s=max((w for w in walls if w is not None), default=None))
    manifest = {k: v for k, v in manifest.items() if k != "shard"}
    manifest["counts"] = {"records": built["totals"]["n"], "by_status": built["totals"]["status_counts"]}
    shutil.copyfile(first.path / CONFIG, out / CONFIG)
    write_atomic(out / SUMMARY, dumps_pretty(built))
    write_atomic(out / MANIFEST, dumps_pretty(manifest))
    if report is not None:
        report.use_latencies(summary.latencies())
    return report


def _json(path: Path) -> dict[str, Any]:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}
