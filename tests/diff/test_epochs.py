"""Diffing runs with epochs: pairs by (example, epoch), paired statistics clustered by example (checked against
statsmodels' cluster-robust errors on the same differences), runs with other epoch counts refused."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from statsmodels.regression.linear_model import OLS

from insideLLMs.diff import DiffInputError, diff_runs
from support.run_dirs import record

MakeRun = Callable[..., Path]
N, K = 30, 4


def _epochs_runs(make_run: MakeRun, seed: int = 3, cand_model: str = "dummy") -> tuple[Path, Path, dict[str, Any]]:
    """Two runs of N examples × K epochs with per-example pass chances (the candidate's a little higher) and an
    f1 score; the raw values per (example, epoch) for the independent check."""
    rng = random.Random(seed)
    base, cand, raw = [], [], {"d_pass": [], "d_f1": [], "example": []}
    for i in range(N):
        p_a = rng.random()
        p_b = min(1.0, p_a + rng.gauss(0.05, 0.2))
        for e in range(K):
            a, b = rng.random() < p_a, rng.random() < p_b
            fa, fb = round(rng.random() * p_a, 4), round(rng.random() * p_b, 4)
            ex = f"ex{i:03d}"
            base.append(record(ex, passed=a, scores={"f1": fa}) | {"epoch": e})
            cand.append(
                record(ex, passed=b, scores={"f1": fb}, run_id="run-b", model=cand_model, output="4" if a == b else "5")
                | {"epoch": e}
            )
            raw["d_pass"].append(float(b) - float(a))
            raw["d_f1"].append(fb - fa)
            raw["example"].append(i)
    return _with_epochs(make_run("base", base)), _with_epochs(make_run("cand", cand)), raw


def _with_epochs(run: Path, k: int = K) -> Path:
    manifest = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps(manifest | {"epochs": k}))
    return run


def _cluster_se(values: list[float], groups: list[int]) -> float:
    fit = OLS(np.asarray(values), np.ones(len(values))).fit(cov_type="cluster", cov_kwds={"groups": np.asarray(groups)})
    return float(fit.bse[0])


@pytest.mark.parametrize("match_on", ["key", "example"])
def test_epochs_pair_by_example_and_epoch_clustered_by_example(make_run: MakeRun, match_on: str) -> None:
    base, cand, raw = _epochs_runs(make_run, cand_model="dummy" if match_on == "key" else "other")
    result = diff_runs(base, cand, match_on=match_on)  # type: ignore[arg-type]
    assert result.epochs == K and result.to_dict()["epochs"] == K
    assert result.coverage.compared == N * K and result.counts["only-in-baseline"] == 0
    group = result.groups[0]
    for metric, diffs in (("pass_rate", raw["d_pass"]), ("f1", raw["d_f1"])):
        got = group.difference(metric)
        assert got is not None and got.n == N * K
        assert got.paired.method == "paired-cluster" and got.paired.clusters == N  # k epochs: one cluster
        assert got.paired.estimate == pytest.approx(np.mean(diffs), abs=1e-9)
        assert got.paired.se == pytest.approx(_cluster_se(diffs, raw["example"]), rel=1e-9)


def test_identical_epoch_pairs_count_in_their_example_cluster(make_run: MakeRun) -> None:
    """The hot path (pairs identical up to run id) keeps each pair's example as its cluster too."""
    records = [record(f"ex{i}", passed=(i + e) % 3 > 0) | {"epoch": e} for i in range(6) for e in range(3)]
    flipped = [dict(r, run_id="b") for r in records]
    flipped[0] = dict(flipped[0], passed=not flipped[0]["passed"], output="5")
    result = diff_runs(_with_epochs(make_run("base", records), 3), _with_epochs(make_run("cand", flipped), 3))
    assert result.counts["unchanged"] == 17
    got = result.groups[0].difference("pass_rate")
    diffs = [0.0] * 18
    diffs[0] = float(flipped[0]["passed"]) - float(records[0]["passed"])
    assert got is not None and got.paired.clusters == 6
    assert got.paired.se == pytest.approx(_cluster_se(diffs, [i for i in range(6) for _ in range(3)]), rel=1e-9)


def test_a_baseline_example_missing_an_epoch_is_only_in_the_baseline(make_run: MakeRun) -> None:
    base = _with_epochs(make_run("base", [record("a") | {"epoch": e} for e in range(2)]), 2)
    cand = _with_epochs(make_run("cand", [record("a", run_id="b") | {"epoch": 0}]), 2)
    result = diff_runs(base, cand)
    assert (result.counts["only-in-baseline"], result.coverage.compared) == (1, 1)
    assert result.epochs == 2 and result.to_dict()["epochs"] == 2  # the runs' epochs, not the candidate's one
    assert result.changes[0].kind == "only-in-baseline"


def test_runs_with_other_epoch_counts_are_refused_even_without_a_manifest(make_run: MakeRun) -> None:
    base = _with_epochs(make_run("base", [record("a") | {"epoch": e} for e in range(3)]), 3)
    cand = make_run("cand", [record("a", run_id="b") | {"epoch": e} for e in range(2)])
    (cand / "manifest.json").unlink()  # an interrupted candidate: its records say how many epochs
    with pytest.raises(DiffInputError, match=r"has 2 epoch\(s\) per example, the baseline .* has 3"):
        diff_runs(base, cand)


def test_epochs_counted_from_records_include_candidate_rows_read_before_identical_pairs(make_run: MakeRun) -> None:
    """Neither run has a manifest: each side's epochs come from its own records. The candidate's second epoch of
    e1, read alone before the identical pair of e1's first epoch, does not count as the baseline's."""
    base = make_run("base", [record(e) | {"epoch": 0} for e in ("e0", "e1")])
    cand = make_run("cand", [record(e, run_id="b") | {"epoch": k} for e, k in (("e0", 0), ("e0", 1), ("e1", 1),
                                                                               ("e1", 0))])
    for run in (base, cand):
        (run / "manifest.json").unlink()
    with pytest.raises(DiffInputError, match=r"cand: has 2 epoch\(s\) per example, the baseline .*base has 1"):
        diff_runs(base, cand)


def test_an_interrupted_baseline_without_epochs_is_a_run_of_one_epoch(make_run: MakeRun) -> None:
    """A baseline without a manifest (interrupted) and records without an epoch: one epoch, like the candidate's."""
    base = make_run("base", [record("a"), record("b")])
    (base / "manifest.json").unlink()
    cand = make_run("cand", [record("a", run_id="b"), record("b", run_id="b", output="5", passed=False)])
    result = diff_runs(base, cand)
    assert (result.epochs, result.counts["regression"], result.counts["unchanged"]) == (1, 1, 1)
    assert "epochs" not in result.to_dict()
