"""`insidellms diff`'s paired statistics and the gates built on them: values checked against scipy and
statsmodels on the same pairs, every new flag's exit codes and bad input, and bounded memory."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower

from insideLLMs.cli.main import cli as insidellms
from insideLLMs.diff import diff_runs, evaluate_gate
from support.cli import run_cli
from support.run_dirs import record, write_big_run

MakeRun = Callable[..., Path]


def invoke(*args: Any) -> Any:
    return CliRunner().invoke(insidellms, ["diff", *map(str, args)])


def diff_json(*args: Any) -> tuple[int, dict[str, Any]]:
    result = invoke(*args, "--format", "json")
    return result.exit_code, json.loads(result.stdout)


def scored_runs(make_run: MakeRun, seed: int = 1, n: int = 120, shift: float = -0.03, flip: float = 0.1,
                probes: tuple[str, ...] = ("factuality",)) -> tuple[Path, Path, dict[str, Any]]:
    """Two runs of ``n`` examples per probe with an f1 score (candidate ≈ baseline + ``shift``) and pass/fail
    verdicts (a share ``flip`` flipped); also the raw values per probe, for the independent checks."""
    rng = random.Random(seed)
    base, cand, raw = [], [], {}
    for probe in probes:
        f1_a, f1_b, pass_a, pass_b = [], [], [], []
        for i in range(n):
            ok = rng.random() < 0.7
            ok2 = (not ok) if rng.random() < flip else ok
            a = round(rng.random(), 4)
            b = round(min(1.0, max(0.0, a + rng.gauss(shift, 0.05))), 4)
            ex = f"{probe}-{i:03d}"
            base.append(record(ex, probe=probe, passed=ok, scores={"f1": a, "correct": ok}))
            cand.append(record(ex, probe=probe, passed=ok2, scores={"f1": b, "correct": ok2}, run_id="run-b",
                               output="4" if ok == ok2 else "5"))
            f1_a.append(a), f1_b.append(b), pass_a.append(float(ok)), pass_b.append(float(ok2))
        raw[probe] = {"f1": (f1_a, f1_b), "pass_rate": (pass_a, pass_b)}
    return make_run("base", base), make_run("cand", cand), raw


def test_paired_statistics_in_json_match_scipy(make_run: MakeRun) -> None:
    base, cand, raw = scored_runs(make_run, n=150)
    code, out = diff_json(base, cand, "--tolerance", "f1=0.02")
    assert code == 0
    paired = out["groups"][0]["paired"]
    assert sorted(paired) == ["correct", "f1", "pass_rate"]
    for metric in ("f1", "pass_rate"):
        a, b = map(np.asarray, raw["factuality"][metric])
        got = paired[metric]
        t = sps.ttest_rel(b, a)
        se = float(np.mean(b - a) / t.statistic)
        low, high = t.confidence_interval(0.95)  # t on n - 1 degrees of freedom
        assert got["n"] == 150 and got["candidate_lacks"] == 0 and got["baseline_lacks"] == 0
        assert got["paired"]["estimate"] == pytest.approx(np.mean(b - a), abs=1e-6)
        assert got["paired"]["se"] == pytest.approx(se, abs=1e-6)
        assert (got["paired"]["low"], got["paired"]["high"]) == pytest.approx((low, high), abs=1e-6)
        welch = sps.ttest_ind(b, a, equal_var=False)
        assert got["unpaired"]["se"] == pytest.approx(float(np.mean(b - a) / welch.statistic), abs=1e-6)
        assert got["correlation"] == pytest.approx(float(np.corrcoef(a, b)[0, 1]), abs=1e-6)
        assert (got["baseline_mean"], got["candidate_mean"]) == pytest.approx((a.mean(), b.mean()), abs=1e-6)
        d = NormalIndPower().solve_power(effect_size=None, nobs1=150, alpha=0.05, power=0.8, ratio=0)
        assert got["mde"] == pytest.approx(d * np.std(b - a, ddof=1), rel=1e-4)
    f1 = paired["f1"]
    sd = np.std(np.subtract(*raw["factuality"]["f1"][::-1]), ddof=1)
    needed = NormalIndPower().solve_power(effect_size=0.02 / sd, nobs1=None, alpha=0.05, power=0.8, ratio=0)
    assert f1["tolerance"] == 0.02 and abs(f1["n_needed"] - math.ceil(needed)) <= 1
    assert "n_needed" not in paired["pass_rate"]  # no tolerance set for the pass rate
    # the same as the correct score: a boolean score is its 0/1 values, the pass rate its verdicts
    assert paired["correct"]["paired"] == paired["pass_rate"]["paired"]


def test_paired_difference_of_a_pass_rate_by_hand(make_run: MakeRun) -> None:
    """Baseline passes e0, e1; the candidate passes e1, e2 and errors on e3 (an error is a fail): d = −1, 0, +1, 0,
    mean 0, var_d = 2/3, se = √(2/3 / 4)."""
    base = make_run("base", [record("e0"), record("e1"), record("e2", passed=False, output="5"),
                             record("e3", passed=False, output="5")])
    cand = make_run("cand", [record("e0", passed=False, output="5"), record("e1"), record("e2"),
                             record("e3", status="error", passed=None, output=None,
                                    error={"type": "ModelError", "message": "boom"})])
    code, out = diff_json(base, cand)
    got = out["groups"][0]["paired"]["pass_rate"]
    assert got["n"] == 4 and got["paired"]["estimate"] == 0.0
    assert got["paired"]["se"] == pytest.approx(math.sqrt(2 / 3 / 4), abs=1e-6)
    # the baseline scored e3 ("correct": false); the errored candidate has no scores: one-sided, and said so
    assert out["groups"][0]["paired"]["correct"]["candidate_lacks"] == 1


def test_identical_runs_have_a_zero_difference_with_no_doubt(make_run: MakeRun) -> None:
    rows = [record(f"e{i}", passed=i % 3 > 0, scores={"f1": i / 10}) for i in range(10)]
    base = make_run("base", rows)
    cand = make_run("cand", [dict(r, run_id="other") for r in rows])
    code, out = diff_json(base, cand, "--fail-on-regression-ci", "f1:0", "--fail-on-regression-ci", "pass_rate")
    assert code == 0
    for metric in ("f1", "pass_rate"):
        got = out["groups"][0]["paired"][metric]
        assert got["n"] == 10 and got["paired"]["estimate"] == 0.0 and got["paired"]["se"] == 0.0
        assert got["correlation"] == pytest.approx(1.0)
    assert out["groups"][0]["paired"]["f1"]["unpaired"]["se"] == pytest.approx(
        math.sqrt(2 * np.var([i / 10 for i in range(10)], ddof=1) / 10), abs=1e-6)


def test_the_hot_path_of_identical_pairs_keeps_memory_bounded_and_values_right(tmp_path: Path) -> None:
    """10,000 identical pairs with distinct float scores (folded as running sums, never kept) and 500 changed."""
    rng = np.random.default_rng(3)
    a = rng.uniform(0, 1, 10_500).round(6)
    b = a.copy()
    b[::21] = np.clip(b[::21] - 0.1, 0, 1)
    for name, values in (("base", a), ("cand", b)):
        rows = [record(f"e{i:05d}", scores={"f1": float(v)}, output=str(v), run_id="r") for i, v in enumerate(values)]
        from support.run_dirs import write_run_dir

        write_run_dir(tmp_path / name, rows, summary=False)
    result = diff_runs(tmp_path / "base", tmp_path / "cand")
    got = result.groups[0].difference("f1")
    assert result.counts["unchanged"] == 10_000
    assert got is not None and got.n == 10_500
    t = sps.ttest_rel(b, a)
    assert got.paired.estimate == pytest.approx(float(np.mean(b - a)), rel=1e-9)
    assert got.paired.se == pytest.approx(float(np.mean(b - a) / t.statistic), rel=1e-9)
    assert got.correlation == pytest.approx(float(np.corrcoef(a, b)[0, 1]), rel=1e-9)


def test_the_regression_ci_gate(make_run: MakeRun) -> None:
    base, cand, _ = scored_runs(make_run, n=200, shift=-0.03, flip=0.0)
    result = run_cli("diff", str(base), str(cand), "--fail-on-regression-ci", "f1:0.01")
    assert result.returncode == 2, result.stderr
    assert "dummy / factuality: f1 regressed: Δ -0.025" in result.stdout
    assert "the whole interval lies below -0.01 (--fail-on-regression-ci)" in result.stdout
    assert ("dummy / factuality f1: FAIL by paired 95 % interval of the mean difference (t)"
            in result.stdout)
    assert "gate failed: dummy / factuality: f1 regressed" in result.stderr
    # a tolerance the interval does not exclude passes; a tolerance from --tolerance is the default TOL
    assert invoke(base, cand, "--fail-on-regression-ci", "f1:0.1").exit_code == 0
    assert invoke(base, cand, "--fail-on-regression-ci", "f1", "--tolerance", "f1=0.1").exit_code == 0
    assert invoke(base, cand, "--fail-on-regression-ci", "f1").exit_code == 2
    code, out = diff_json(base, cand, "--fail-on-regression-ci", "f1:0.01", "--fail-on-regression-ci", "pass_rate:0.05")
    assert code == 2
    verdicts = {v["metric"]: v for v in out["gate"]["verdicts"]}
    assert verdicts["f1"]["passed"] is False and verdicts["f1"]["gate"] == "--fail-on-regression-ci"
    assert verdicts["f1"]["test"] == "paired 95 % interval of the mean difference (t)"
    assert verdicts["pass_rate"]["passed"] is True  # no flips at all
    # a gate that improved passes, and a lower-is-better score is gated the other way round
    assert invoke(cand, base, "--fail-on-regression-ci", "f1:0.01").exit_code == 0
    assert invoke(base, cand, "--fail-on-regression-ci", "f1:0.01", "--lower-is-better", "f1").exit_code == 0
    assert invoke(cand, base, "--fail-on-regression-ci", "f1:0.01", "--lower-is-better", "f1").exit_code == 2


def test_the_ci_gate_never_passes_on_less_than_it_was_asked(make_run: MakeRun) -> None:
    rows = [record(f"e{i}", scores={"f1": 0.5 + i / 100}) for i in range(20)]
    cand_rows = [record(f"e{i}", scores={"f1": 0.5 + i / 100}, run_id="b") for i in range(20)]
    cand_rows[3] = record("e3", status="error", passed=None, output=None, run_id="b",
                          error={"type": "ModelError", "message": "boom"})
    base, cand = make_run("base", rows), make_run("cand", cand_rows)
    result = run_cli("diff", str(base), str(cand), "--fail-on-regression-ci", "f1:0.5")
    assert result.returncode == 2
    assert "dummy / factuality: f1: the candidate lacks it on 1 matched example(s) the other side scored" \
        in result.stdout
    assert invoke(base, cand, "--fail-on-regression-ci", "f1:0.5", "--allow-missing").exit_code == 0
    # one pair with both values: no interval, no pass
    one = make_run("one", [record("e0", scores={"f1": 0.5})])
    one_c = make_run("one_c", [record("e0", scores={"f1": 0.4}, run_id="b")])
    result = run_cli("diff", str(one), str(one_c), "--fail-on-regression-ci", "f1:0.5")
    assert result.returncode == 2 and "1 pair(s) with a value on both sides; an interval needs two" in result.stdout
    # nothing matched: fails like every gate
    other = make_run("other", [record("x", probe="logic", scores={"f1": 0.5})])
    result = run_cli("diff", str(base), str(other), "--fail-on-regression-ci", "f1", "--allow-missing")
    assert result.returncode == 2 and "the gate compared nothing" in result.stdout


@pytest.mark.parametrize(("args", "message"), [
    (("--fail-on-regression-ci", "nosuchmetric"),
     "error: --fail-on-regression-ci nosuchmetric: neither run has a metric of that name (scores: correct, f1; "
     "pass_rate for the pass rate)"),
    (("--fail-on-regression-ci", "f1:lots"), "error: --fail-on-regression-ci 'f1:lots': TOL must be a number >= 0"),
    (("--fail-on-regression-ci", "f1:-0.1"), "error: --fail-on-regression-ci 'f1:-0.1': TOL must be a number >= 0"),
    (("--fail-on-regression-ci", ":0.1"), "error: --fail-on-regression-ci ':0.1': expected METRIC[:TOL]"),
    (("--fail-on-underpowered",), "error: --fail-on-underpowered judges the power of --fail-on-significant-regression"),
    (("--fail-on-underpowered", "--fail-on-significant-regression"),
     "error: --fail-on-underpowered: no tolerance to compare the minimum detectable effect with"),
    (("--correction", "bonferroni"), "Invalid value for '--correction'"),
])
def test_bad_gate_options_are_one_line_and_exit_1(make_run: MakeRun, args: tuple[str, ...], message: str) -> None:
    base, cand, _ = scored_runs(make_run, n=20)
    result = run_cli("diff", str(base), str(cand), *args)
    assert result.returncode == 1, result.stdout
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_underpowered_passes_are_flagged_and_can_fail(make_run: MakeRun, tmp_path: Path) -> None:
    base, cand, _ = scored_runs(make_run, n=40, shift=0.0, flip=0.05)
    args = (base, cand, "--fail-on-regression-ci", "pass_rate:0.02", "--fail-on-significant-regression")
    result = invoke(*args)
    assert result.exit_code == 0
    assert "gate: PASSED" in result.stdout and "UNDERPOWERED: 2 verdict(s) passed on too few examples" in result.stdout
    assert "UNDERPOWERED: the minimum detectable effect" in result.stdout and "is larger than the tolerance 0.02" \
        in result.stdout
    code, out = diff_json(*args)
    assert code == 0 and out["gate"]["underpowered"] is True
    verdict = out["gate"]["verdicts"][0]
    assert verdict["underpowered"] is True and verdict["mde"] > 0.02 and verdict["n_needed"] > 40
    assert verdict["test"] == "exact McNemar (one-sided binomial on discordant pairs)"
    failed = run_cli("diff", *map(str, args), "--fail-on-underpowered", "--html", str(tmp_path / "d.html"))
    assert failed.returncode == 2
    assert "pass_rate UNDERPOWERED: the minimum detectable effect" in failed.stdout
    assert "(--fail-on-underpowered)" in failed.stderr
    page = (tmp_path / "d.html").read_text()
    assert "UNDERPOWERED" in page and "decided by" in page
    # enough examples detect the tolerance: no flag
    many = invoke(base, cand, "--fail-on-regression-ci", "pass_rate:0.9", "--fail-on-underpowered")
    assert many.exit_code == 0 and "UNDERPOWERED" not in many.stdout


def test_holm_correction_matches_statsmodels(make_run: MakeRun) -> None:
    """Three model × probe groups with 6, 6 and 10 pass→fail flips (none back) among 30: McNemar's p-values are
    0.0156, 0.0156 and 0.00098; Holm multiplies them by 3, 2, 1 in rank order (0.0029, 0.031, 0.031): only one
    group fails at alpha 0.02, where all three fail without the correction."""
    base, cand = [], []
    for probe, flips in (("factuality", 6), ("logic", 6), ("math", 10)):
        for i in range(30):
            base.append(record(f"{probe}-{i}", probe=probe))
            bad = i < flips
            cand.append(record(f"{probe}-{i}", probe=probe, run_id="b", passed=not bad, output="5" if bad else "4"))
    b, c = make_run("base", base), make_run("cand", cand)
    code, plain = diff_json(b, c, "--fail-on-significant-regression", "--alpha", "0.02")
    assert code == 2 and len(plain["gate"]["reasons"]) == 3
    code, holm = diff_json(b, c, "--fail-on-significant-regression", "--alpha", "0.02", "--correction", "holm")
    assert code == 2 and holm["gate"]["correction"] == "holm"
    ps = [sps.binomtest(k, k, 0.5, alternative="greater").pvalue for k in (6, 6, 10)]
    reject, adjusted, _, _ = multipletests(ps, alpha=0.02, method="holm")
    verdicts = holm["gate"]["verdicts"]
    assert [v["adjusted_p"] for v in verdicts] == pytest.approx(adjusted.tolist(), abs=1e-6)
    assert [not v["passed"] for v in verdicts] == reject.tolist() == [False, False, True]
    assert len(holm["gate"]["reasons"]) == 1 and "Holm-adjusted p=0.00293" in holm["gate"]["reasons"][0]


def test_holm_correction_of_the_ci_gate(make_run: MakeRun) -> None:
    base, cand, raw = scored_runs(make_run, n=60, shift=-0.02, probes=("factuality", "logic", "math", "qa"))
    args = (base, cand, "--fail-on-regression-ci", "f1:0")
    code, plain = diff_json(*args)
    code_h, holm = diff_json(*args, "--correction", "holm")
    ps = []
    for probe in ("factuality", "logic", "math", "qa"):
        a, b = map(np.asarray, raw[probe]["f1"])
        ps.append(sps.ttest_rel(b, a, alternative="less").pvalue)  # H0: the difference is at least 0
    reject, adjusted, _, _ = multipletests(ps, alpha=0.025, method="holm")
    got = [v["adjusted_p"] for v in holm["gate"]["verdicts"]]
    assert got == pytest.approx(adjusted.tolist(), abs=1e-6)
    assert [not v["passed"] for v in holm["gate"]["verdicts"]] == reject.tolist()
    assert sum(not v["passed"] for v in plain["gate"]["verdicts"]) >= sum(reject)  # Holm never rejects more
    assert code == (2 if any(not v["passed"] for v in plain["gate"]["verdicts"]) else 0)
    assert code_h == (2 if any(reject) else 0)


def test_match_on_example_merges_the_sums(make_run: MakeRun) -> None:
    rows = [record(f"e{i}", model="old", scores={"f1": i / 10}) for i in range(10)]
    cand = [record(f"e{i}", model="new", scores={"f1": i / 10 - (0.1 if i % 2 else 0)}, run_id="b") for i in range(10)]
    code, out = diff_json(make_run("base", rows), make_run("cand", cand), "--match-on", "example")
    assert len(out["groups"]) == 1 and out["groups"][0]["model"] == "old → new"
    assert out["groups"][0]["paired"]["f1"]["n"] == 10
    assert out["groups"][0]["paired"]["f1"]["paired"]["estimate"] == pytest.approx(-0.05)


@pytest.mark.slow
def test_paired_sums_over_a_large_identical_run_stay_exact(tmp_path: Path) -> None:
    base = write_big_run(tmp_path / "base", 200_000, run_id="a", flip_every=10)
    cand = write_big_run(tmp_path / "cand", 200_000, run_id="b", flip_every=10)
    result = diff_runs(base, cand)
    gate = evaluate_gate(result, fail_on_regression_ci={"correct": 0.0, "pass_rate": 0.0})
    diff = result.groups[0].difference("pass_rate")
    assert gate.passed and diff is not None
    assert (diff.n, diff.paired.estimate, diff.paired.se) == (200_000, 0.0, 0.0)
