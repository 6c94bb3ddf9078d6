"""Write run directories directly (records.jsonl, timings.jsonl, manifest.json, summary.json).

Diff and report tests need exact control over records (flip one verdict, drop one example) and
sometimes a hundred thousand of them in a second, so they write the files the runner would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import orjson
import pytest

from insideLLMs.canonical import dumps_bytes, dumps_pretty
from insideLLMs.rundir import summarize


def record(
    example_id: str,
    *,
    model: str = "dummy",
    probe: str = "factuality",
    output: str | list[str] = "4",
    passed: bool | None = True,
    scores: dict[str, Any] | None = None,
    status: str = "success",
    error: dict[str, str] | None = None,
    prompt: str | None = None,
    expected: str = "4",
    run_id: str = "run-a",
) -> dict[str, Any]:
    """A record dict as ``Record.to_dict`` writes it."""
    prompt = prompt if prompt is not None else f"question {example_id}"
    return {
        "run_id": run_id,
        "model": {"id": model, "provider": "dummy", "params": {}},
        "probe": {"id": probe, "version": "1", "params": {}},
        "example_id": example_id,
        "input": {"prompt": prompt, "answer": expected},
        "messages": [{"role": "user", "content": prompt}],
        "output": output,
        # as the engine writes them: a failed example has no scores
        "scores": scores if scores is not None else ({"correct": passed is True} if status == "success" else {}),
        "passed": passed,
        "status": status,
        "error": error,
        "usage": {"prompt_tokens": 5, "completion_tokens": 1},
    }


def timing(rec: dict[str, Any], latency_ms: float) -> dict[str, Any]:
    return {
        "model": rec["model"]["id"], "probe": rec["probe"]["id"], "example_id": rec["example_id"],
        "latency_ms": latency_ms, "attempts": 1, "cache_hit": False,
        "started_at": 1000.0, "finished_at": 1000.0 + latency_ms / 1000,
    }


def write_run_dir(
    run_dir: Path,
    records: list[dict[str, Any]],
    timings: list[dict[str, Any]] | None = None,
    *,
    summary: bool = True,
    prices: dict[str, Any] | None = None,
) -> Path:
    """Write a complete run directory; timings default to a deterministic spread of latencies. ``prices``:
    each model's price, recorded in the manifest as a run records them, and used for summary.json's costs."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "records.jsonl").write_bytes(b"".join(dumps_bytes(r) + b"\n" for r in records))
    if timings is None:
        timings = [timing(r, 20.0 + (i * 37) % 180) for i, r in enumerate(records)]
    (run_dir / "timings.jsonl").write_bytes(b"".join(orjson.dumps(t) + b"\n" for t in timings))
    run_id = records[0]["run_id"] if records else "empty"
    statuses: dict[str, int] = {}
    for r in records:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    manifest: dict[str, Any] = {"run_id": run_id, "schema_version": "1", "counts": statuses, "files": ["records.jsonl"]}
    if prices is not None:
        manifest["pricing"] = {"models": prices}
    (run_dir / "manifest.json").write_bytes(dumps_pretty(manifest))
    if summary:
        (run_dir / "summary.json").write_bytes(dumps_pretty(summarize(records, timings, run_id=run_id, prices=prices)))
    return run_dir


def write_big_run(run_dir: Path, n: int, *, run_id: str, flip_every: int = 0, models: int = 1) -> Path:
    """``n`` records fast (no summary), by formatting one line template; every ``flip_every``-th
    example (if any) fails with a different output instead of passing."""
    run_dir.mkdir(parents=True, exist_ok=True)
    per_model = n // models
    with open(run_dir / "records.jsonl", "wb") as fh:
        for m in range(models):
            head = (
                '{"error":null,"example_id":"ex%07d","input":{"answer":"4","prompt":"What is 2 plus 2? #%d"},'
                '"messages":[{"content":"What is 2 plus 2? #%d","role":"user"}],'
                f'"model":{{"id":"model-{m}","params":{{}},"provider":"dummy"}},'
            )
            ok = head + '"output":"4","passed":true,"probe":{"id":"factuality","params":{},"version":"1"},' \
                f'"run_id":"{run_id}","scores":{{"correct":true}},"status":"success",' \
                '"usage":{"completion_tokens":1,"prompt_tokens":9}}\n'
            bad = ok.replace('"output":"4","passed":true', '"output":"5","passed":false').replace(
                '"correct":true', '"correct":false')
            lines = []
            for i in range(per_model):
                template = bad if flip_every and i % flip_every == 0 else ok
                lines.append(template % (i, i, i))
                if len(lines) >= 50_000:
                    fh.write("".join(lines).encode())
                    lines.clear()
            fh.write("".join(lines).encode())
    (run_dir / "manifest.json").write_bytes(dumps_pretty({"run_id": run_id, "schema_version": "1"}))
    return run_dir


@pytest.fixture
def make_run(tmp_path: Path) -> Callable[..., Path]:
    """``make_run("base", records)`` writes ``tmp_path/base`` as a run directory."""

    def make(name: str, records: list[dict[str, Any]], **kwargs: Any) -> Path:
        return write_run_dir(tmp_path / name, records, **kwargs)

    return make
