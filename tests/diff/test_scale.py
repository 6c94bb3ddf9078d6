"""Diff at scale (100,000 records per side) and the McNemar arithmetic."""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path

import pytest

from insideLLMs.diff import DiffInputError, diff_runs
from insideLLMs.diff import binomial_upper_tail, mcnemar_drop
from support.cli import run_cli
from support.run_dirs import write_big_run

N = 100_000


@pytest.fixture(scope="module")
def big_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("big")
    base = write_big_run(tmp / "base", N, run_id="base-run", models=2)
    cand = write_big_run(tmp / "cand", N, run_id="cand-run", models=2, flip_every=100)
    return base, cand


@pytest.mark.slow
def test_100k_records_per_side(big_runs: tuple[Path, Path], tmp_path: Path) -> None:
    base, cand = big_runs
    out = tmp_path / "diff.json"
    result = run_cli("diff", str(base), str(cand), "--format", "json", "-o", str(out),
                     "--fail-on-significant-regression")
    assert result.returncode == 2, result.stderr
    diff = json.loads(out.read_text())
    assert diff["counts"] == {"regression": 1000, "improvement": 0, "changed": 0, "only-in-baseline": 0,
                              "only-in-candidate": 0, "unchanged": 99_000}
    assert [(g["model"], g["mcnemar"]["b"], g["mcnemar"]["c"]) for g in diff["groups"]] == [
        ("model-0", 500, 0), ("model-1", 500, 0)]
    assert [(g["baseline"]["pass_rate"], g["candidate"]["pass_rate"]) for g in diff["groups"]] == [(1.0, 0.99)] * 2
    assert diff["changes_total"] == 1000 and len(diff["changes"]) == 1000 and not diff["changes_truncated"]
    assert diff["changes"][0]["example_id"] == "ex0000000"
    assert diff["changes"][0]["candidate"]["output"] == "5"


@pytest.mark.slow
def test_100k_with_a_block_missing_from_the_middle(big_runs: tuple[Path, Path], tmp_path: Path) -> None:
    """10,000 examples moved to the front and 10,000 dropped: the merge waits for the files to line up again."""
    base, cand = big_runs
    lines = (cand / "records.jsonl").read_bytes().splitlines(keepends=True)
    gapped = tmp_path / "gapped"
    gapped.mkdir()
    (gapped / "records.jsonl").write_bytes(b"".join(lines[20_000:30_000] + lines[:20_000] + lines[40_000:]))
    result = diff_runs(base, gapped, limit=50)
    assert result.counts == {"regression": 900, "improvement": 0, "changed": 0, "only-in-baseline": 10_000,
                             "only-in-candidate": 0, "unchanged": 89_100}
    assert len(result.changes) == 50 and result.total_changes == 10_900
    assert result.to_dict()["changes_truncated"] is True


def test_binomial_tail_matches_the_definition() -> None:
    for n in (0, 1, 5, 17, 40):
        for k in range(n + 2):
            expected = sum(math.comb(n, i) for i in range(k, n + 1)) / 2**n if k <= n else 0.0
            assert binomial_upper_tail(k, n) == pytest.approx(expected, rel=1e-12, abs=1e-300)


def test_binomial_tail_large_n_agrees_with_exact() -> None:
    exact = binomial_upper_tail(5_080, 10_000)
    n, k = 10_002, 5_081  # just past the exact limit: the log-space sum takes over
    approx = binomial_upper_tail(k, n)
    assert approx == pytest.approx(exact, rel=0.02)
    assert 1e-12 < binomial_upper_tail(51_000, 100_000) < 1e-8
    assert binomial_upper_tail(49_000, 100_000) == pytest.approx(1.0)


@pytest.mark.parametrize(("k", "n"), [(5_001, 10_000), (5_081, 10_002), (10_150, 20_000), (50_400, 100_000),
                                    (10_000, 20_000), (10_001, 10_002), (10_002, 10_002)])
def test_binomial_tail_on_both_sides_of_the_exact_limit_matches_scipy(k: int, n: int) -> None:
    from scipy.stats import binom  # the test extra's independent implementation

    assert binomial_upper_tail(k, n) == pytest.approx(binom.sf(k - 1, n, 0.5), rel=1e-9, abs=1e-300)
    assert binomial_upper_tail(0, n) == 1.0
    # a probability, even where the log-space sum overshoots 1 by rounding (1 + 5e-10 at n = 100,000)
    assert binomial_upper_tail(1, n) == pytest.approx(1.0, abs=1e-9) and binomial_upper_tail(1, n) <= 1.0


def test_mcnemar_one_sided() -> None:
    assert mcnemar_drop(1, 0).p_value == 0.5
    assert not mcnemar_drop(1, 0).significant_drop(0.05)
    assert mcnemar_drop(30, 0).p_value == 2.0**-30
    assert mcnemar_drop(30, 0).significant_drop(0.05)
    assert mcnemar_drop(0, 30).p_value == 1.0  # an improvement is never a significant drop
    assert mcnemar_drop(10, 10).p_value == pytest.approx(0.588099, abs=1e-6)
    assert mcnemar_drop(0, 0).p_value == 1.0
    # significant means below alpha, not at it: 5 losses and no wins give p = 2**-5 exactly
    assert mcnemar_drop(5, 0).p_value == 2.0**-5
    assert not mcnemar_drop(5, 0).significant_drop(2.0**-5) and mcnemar_drop(5, 0).significant_drop(2.0**-5 + 1e-12)
    assert not mcnemar_drop(10, 10).significant_drop(0.6)  # as many wins as losses is no drop at any alpha


def test_files_in_any_order_pair_by_key_with_their_own_line_numbers(tmp_path: Path) -> None:
    """A shuffled candidate (more than one 10,000-row index batch on each side) is paired through the on-disk
    index: every change names the line of each side, records on one side only are counted, nothing else moves."""
    n = 10_003
    base = write_big_run(tmp_path / "base", n, run_id="base-run")
    flipped = write_big_run(tmp_path / "flipped", n, run_id="cand-run", flip_every=1000)
    lines = (flipped / "records.jsonl").read_bytes().splitlines(keepends=True)
    order = list(range(n))
    random.Random(7).shuffle(order)
    dropped = {order[0], order[1], 5000}  # 5000 is also a flipped example: it leaves the regressions
    kept = [i for i in order if i not in dropped]
    extra = lines[3].replace(b"ex0000003", b"ex9999999")
    cand = tmp_path / "cand"
    cand.mkdir()
    (cand / "records.jsonl").write_bytes(b"".join([lines[i] for i in kept] + [extra]))

    result = diff_runs(base, cand, max_pending=100, limit=1000)

    flips = [i for i in range(0, n, 1000) if i not in dropped]
    assert result.counts == {"regression": len(flips), "improvement": 0, "changed": 0, "only-in-baseline": 3,
                             "only-in-candidate": 1, "unchanged": n - 3 - len(flips)}
    position = {i: kept.index(i) + 1 for i in flips}
    regressions = [c for c in result.changes if c.kind == "regression"]
    assert [(c.example_id, c.baseline["line"], c.candidate["line"]) for c in regressions] == [
        (f"ex{i:07d}", i + 1, position[i]) for i in flips]
    only_base = sorted((c.example_id, c.baseline["line"]) for c in result.changes if c.kind == "only-in-baseline")
    assert only_base == sorted((f"ex{i:07d}", i + 1) for i in dropped)
    (only_cand,) = [c for c in result.changes if c.kind == "only-in-candidate"]
    assert (only_cand.example_id, only_cand.candidate["line"]) == ("ex9999999", len(kept) + 1)


def test_a_malformed_line_in_a_shuffled_file_is_named(tmp_path: Path) -> None:
    base = write_big_run(tmp_path / "base", 300, run_id="base-run")
    lines = (base / "records.jsonl").read_bytes().splitlines(keepends=True)
    cand = tmp_path / "cand"
    cand.mkdir()
    (cand / "records.jsonl").write_bytes(b"".join(lines[::-1][:200]) + b"{not json\n" + b"".join(lines[::-1][200:]))
    with pytest.raises(DiffInputError, match=rf"^{re.escape(str(cand / 'records.jsonl'))}:201: "):
        diff_runs(base, cand, max_pending=10)
