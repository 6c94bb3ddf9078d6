"""Tracking a run with epochs: the per-example table and ``tracking push`` find each record's timing by (model,
probe, example, epoch), so the epochs of one example keep their own latencies; a live-tracked run with epochs and
the same run pushed later log the same steps."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from insideLLMs.tracking.delivery._table import flat_rows
from support.cli import dummy_config, qa_rows, run_cli, write_config, write_jsonl
from support.run_dirs import record, timing, write_run_dir


def _epochs_run_dir(path: Path, n: int = 4, k: int = 3) -> tuple[Path, dict[tuple[str, int], float]]:
    records = [record(f"ex{i}", passed=(i + e) % 2 == 0) | {"epoch": e} for i in range(n) for e in range(k)]
    latencies = {(r["example_id"], r["epoch"]): 10.0 + 7 * j for j, r in enumerate(records)}
    timings = [timing(r, latencies[(r["example_id"], r["epoch"])]) | {"epoch": r["epoch"]} for r in records]
    random.Random(0).shuffle(timings)  # not line for line: matched by key, and the key has the epoch
    return write_run_dir(path, records, timings), latencies


def test_the_table_matches_timings_by_example_and_epoch(tmp_path: Path) -> None:
    run_dir, latencies = _epochs_run_dir(tmp_path / "run")
    rows = list(flat_rows(run_dir / "records.jsonl", run_dir / "timings.jsonl"))
    assert [(r["example_id"], r["epoch"]) for r in rows] == list(latencies)
    assert [r["latency_ms"] for r in rows] == list(latencies.values())


def test_push_matches_timings_by_example_and_epoch(tmp_path: Path) -> None:
    from insideLLMs.tracking._push import push_run_dir
    from insideLLMs.tracking.store import read_journal

    run_dir, latencies = _epochs_run_dir(tmp_path / "run")
    pushed = push_run_dir(run_dir, "local", {"output_dir": str(tmp_path / "pushed")}).folder
    steps = [
        e.data["metrics"] for e in read_journal(pushed).events if e.kind == "metrics" and e.data["step"] is not None
    ]
    assert [m["example/latency_ms"] for m in steps] == list(latencies.values())


@pytest.mark.slow
def test_a_run_with_epochs_tracked_live_and_pushed_logs_the_same(tmp_path: Path) -> None:
    from insideLLMs.tracking._push import push_run_dir
    from insideLLMs.tracking.store import load_run, read_journal

    write_jsonl(tmp_path / "data.jsonl", qa_rows(3))
    config = dummy_config(tracking={"enabled": True, "backend": "local"})
    config["runner"]["epochs"] = 2
    cfg = write_config(tmp_path / "eval.yaml", config)
    assert run_cli("run", str(cfg), "--run-dir", "runs/a", cwd=tmp_path).returncode == 0
    [live] = (tmp_path / "tracking_logs").iterdir()
    pushed = push_run_dir(tmp_path / "runs/a", "local", {"output_dir": str(tmp_path / "pushed")}).folder

    def metric_events(folder: Path) -> list[tuple[int | None, dict[str, float]]]:
        return [(e.data["step"], e.data["metrics"]) for e in read_journal(folder).events if e.kind == "metrics"]

    assert metric_events(pushed) == metric_events(live)
    assert [step for step, _ in metric_events(live)] == [*range(6), None]
    assert load_run(pushed).run_metrics == load_run(live).run_metrics
    for folder in (live, pushed):
        params = json.loads((folder / "params.json").read_text())
        assert (params["epochs"], params["reducer"], params["total_examples"]) == (2, "mean", 6)
