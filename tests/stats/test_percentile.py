"""One percentile definition (nearest rank), checked against numpy and used by summary.json and tracking alike."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy
import pytest

from insideLLMs.rundir import summarize
from insideLLMs.stats import percentile
from insideLLMs.tracking.store import find_runs, load_run
from support.cli import run_cli, write_config, write_jsonl
from support.run_dirs import record, timing


def _on_a_rank_boundary(n: int, p: float) -> bool:
    """Where p / 100 * n is a whole number: numpy's float arithmetic may land just above it there."""
    x = p * n / 100
    return abs(x - round(x)) < 1e-9


@pytest.mark.slow
def test_matches_numpy_inverted_cdf_on_random_samples() -> None:
    rng = random.Random(20261204)
    checked = 0
    for _ in range(3000):
        n = rng.choice([1, 2, 3, 4, 5, rng.randint(6, 60), rng.randint(61, 2000)])
        if rng.random() < 0.3:  # ties
            xs = [float(rng.randint(0, 5)) for _ in range(n)]
        else:
            xs = [rng.lognormvariate(3, 1) * rng.choice([1, -1]) for _ in range(n)]
        for p in (0, 100, rng.uniform(0, 100), rng.choice([1, 5, 25, 50, 75, 90, 95, 99, 99.9])):
            if _on_a_rank_boundary(n, p) and p not in (0, 100):
                continue
            assert percentile(xs, p) == numpy.percentile(xs, p, method="inverted_cdf"), (xs, p)
            checked += 1
    assert checked > 8000


@pytest.mark.parametrize("n, p, rank", [(25, 28, 7), (50, 14, 7), (100, 7, 7), (20, 95, 19), (1000, 99.9, 999)])
def test_whole_ranks_are_exact(n: int, p: float, rank: int) -> None:
    """Where p % of n is a whole number k, the percentile is the k-th value (numpy gives the k+1-th for some)."""
    assert percentile(range(1, n + 1), p) == rank


def test_values_observed_in_any_order() -> None:
    assert percentile([40, 10, 30, 20], 50) == 20
    assert percentile([40, 10, 30, 20], 95) == 40
    assert percentile([40, 10, 30, 20], 0) == 10
    assert percentile([40, 10, 30, 20], 100) == 40
    assert percentile([7.5], 99) == 7.5
    with pytest.raises(ValueError, match="^percentile of no values$"):
        percentile([], 50)
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1.0], 101)
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1.0], math.nan)


def test_summary_uses_it() -> None:
    recs = [record(f"e{i}") for i in range(4)]
    summary = summarize(recs, [timing(r, ms) for r, ms in zip(recs, [10.0, 40.0, 30.0, 20.0])])
    (group,) = [v for k, v in summary["volatile"]["latency_ms"].items() if k != "all"]
    assert group == summary["volatile"]["latency_ms"]["all"] == {"p50": 20.0, "p95": 40.0, "mean": 25.0}


def test_tracked_p50_equals_the_summary_p50(tmp_path: Path) -> None:
    """Two models, so the tracked overall latency is worked out from every example's latency."""
    rows = [{"id": f"q{i}", "prompt": f"What is {i} plus {i}?", "answer": str(2 * i)} for i in range(2)]
    write_jsonl(tmp_path / "data.jsonl", rows)
    write_config(tmp_path / "eval.yaml", {
        "models": [{"type": "dummy", "args": {"model_name": "fast", "latency_ms": 10}},
                   {"type": "dummy", "args": {"model_name": "slow", "latency_ms": 30}}],
        "probes": [{"type": "factuality"}],
        "dataset": {"format": "jsonl", "path": "data.jsonl"},
        "runner": {"concurrency": 1, "max_retries": 0},
        "tracking": {"enabled": True, "backend": "local", "output_dir": "tracking_logs"},
    })
    proc = run_cli("harness", "eval.yaml", "--run-dir", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "out/summary.json").read_text())
    latency = summary["volatile"]["latency_ms"]["all"]
    timings = [json.loads(line)["latency_ms"] for line in (tmp_path / "out/timings.jsonl").read_text().splitlines()]
    assert latency["p50"] == sorted(timings)[1] and latency["p95"] == sorted(timings)[3]
    (run,) = find_runs(tmp_path / "tracking_logs")
    metrics = load_run(run).state.metrics
    assert (metrics["latency_p50_ms"], metrics["latency_p95_ms"]) == (latency["p50"], latency["p95"])
    assert 10 <= metrics["latency_p50_ms"] < 30 <= metrics["latency_p95_ms"]
