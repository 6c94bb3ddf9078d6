"""A gate never passes on less than it was asked to compare: nothing matched, an interrupted candidate,
or a candidate that lacks baseline examples fails every ``--fail-on-*`` gate (exit 2) unless allowed."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Callable

import pytest

from insideLLMs.diff import DiffInputError, diff_runs, evaluate_gate
from support.cli import run_cli
from support.run_dirs import record

MakeRun = Callable[..., Path]
GATES = ("--fail-on-changes", "--fail-on-regressions", "--fail-on-significant-regression")


@pytest.mark.parametrize("gate", GATES)
def test_a_gate_that_matched_nothing_fails_even_when_missing_is_allowed(make_run: MakeRun, gate: str) -> None:
    base = make_run("base", [record(f"e{i}", probe="logic") for i in range(3)])
    cand = make_run("cand", [record(f"e{i}", probe="factuality") for i in range(3)])
    for extra in ((), ("--allow-missing",)):
        result = run_cli("diff", str(base), str(cand), gate, *extra)
        assert result.returncode == 2, result.stdout
        assert "no example matched: the baseline has 3 and the candidate 3" in result.stdout
        assert "the gate compared nothing" in result.stdout and "gate: FAILED" in result.stdout


@pytest.mark.parametrize("gate", GATES)
def test_an_interrupted_candidate_fails_the_gate(make_run: MakeRun, gate: str) -> None:
    base = make_run("base", [record(f"e{i}") for i in range(4)])
    cand = make_run("cand", [record(f"e{i}") for i in range(4)])
    (cand / "manifest.json").unlink()
    (cand / ".incomplete").touch()
    result = run_cli("diff", str(base), str(cand), gate)
    assert result.returncode == 2
    assert f"the candidate {cand} is an incomplete run (interrupted: finish it with --resume)" in result.stdout
    assert run_cli("diff", str(base), str(cand), gate, "--allow-missing").returncode == 0


def test_an_interrupted_candidate_with_no_records_fails(make_run: MakeRun) -> None:
    base = make_run("base", [record(f"e{i}") for i in range(4)])
    cand = make_run("cand", [])
    (cand / "manifest.json").unlink()
    (cand / ".incomplete").touch()
    for extra in ((), ("--allow-missing",)):
        result = run_cli("diff", str(base), str(cand), "--fail-on-regressions", *extra)
        assert result.returncode == 2 and "the gate compared nothing" in result.stdout


@pytest.mark.parametrize("gate", GATES)
def test_a_candidate_missing_examples_fails_unless_allowed(make_run: MakeRun, gate: str) -> None:
    base = make_run("base", [record(f"e{i}") for i in range(3)])
    cand = make_run("cand", [record("e0"), record("e2")])
    result = run_cli("diff", str(base), str(cand), gate)
    assert result.returncode == 2
    assert "the candidate lacks 1 of the baseline's 3 examples (--allow-missing" in result.stdout
    assert run_cli("diff", str(base), str(cand), gate, "--allow-missing").returncode == 0


def test_partial_comparisons_are_said_without_a_gate_and_in_json_and_html(make_run: MakeRun, tmp_path: Path) -> None:
    base = make_run("base", [record(f"e{i}") for i in range(3)])
    cand = make_run("cand", [record("e0")])
    text = run_cli("diff", str(base), str(cand))
    assert text.returncode == 0  # no gate asked: a report, not a verdict
    assert text.stdout.count("! partial comparison: the candidate lacks 2 of the baseline's 3 examples") == 1
    as_json = run_cli("diff", str(base), str(cand), "--format", "json", "--html", str(tmp_path / "d.html"))
    coverage = json.loads(as_json.stdout)["coverage"]
    assert coverage == {"baseline_n": 3, "candidate_n": 1, "compared": 1, "candidate_complete": True}
    page = (tmp_path / "d.html").read_text()
    assert page.index("partial comparison: the candidate lacks 2") < page.index("class, ") if "class, " in page \
        else "partial comparison: the candidate lacks 2" in page


def test_a_full_comparison_with_extra_candidate_examples_passes(make_run: MakeRun) -> None:
    base = make_run("base", [record(f"e{i}") for i in range(3)])
    cand = make_run("cand", [record(f"e{i}") for i in range(4)])
    result = run_cli("diff", str(base), str(cand), "--fail-on-regressions")
    assert result.returncode == 0 and "partial comparison" not in result.stdout


def test_no_gate_ever_passes_on_less_than_the_baseline(make_run: MakeRun) -> None:
    """Seeded random pairs of runs (dropped, added, other probes, changed model settings, duplicated records,
    interrupted): whenever the comparison covered less than the baseline, every gate fails unless
    --allow-missing; with it, only a comparison that matched nothing still fails."""
    rng = random.Random(7)
    for case in range(60):
        n = rng.randint(0, 6)
        probes = ["logic", "factuality"]
        base_recs = [record(f"e{i}", probe=rng.choice(probes)) for i in range(n)]
        cand_recs = [dict(r) for r in base_recs if rng.random() > 0.3]
        cand_recs += [record(f"new{i}") for i in range(rng.randint(0, 2))]
        if rng.random() < 0.2:
            cand_recs = [record(r["example_id"], probe="bias") for r in cand_recs]
        if rng.random() < 0.15:  # another model's settings: the same keys, a changed config
            cand_recs = [r | {"model": {**r["model"], "params": {"temperature": 0.7}}} for r in cand_recs]
        duplicated = bool(cand_recs) and rng.random() < 0.1
        if duplicated:
            cand_recs = cand_recs + cand_recs[:1]
        base, cand = make_run(f"b{case}", base_recs), make_run(f"c{case}", cand_recs)
        interrupted = rng.random() < 0.2
        if interrupted:
            (cand / ".incomplete").touch()
        try:
            result = diff_runs(base, cand)
        except DiffInputError as exc:  # a duplicate the pairing meets while its key waits: an input error
            assert duplicated and "duplicate record key" in str(exc)
            continue
        covered = {(r["probe"]["id"], r["example_id"]) for r in cand_recs} >= \
            {(r["probe"]["id"], r["example_id"]) for r in base_recs}
        matched_any = bool({(r["probe"]["id"], r["example_id"]) for r in cand_recs}
                           & {(r["probe"]["id"], r["example_id"]) for r in base_recs})
        for flags in ({"fail_on_changes": True}, {"fail_on_regressions": True},
                      {"fail_on_significant_regression": True}):
            strict = evaluate_gate(result, **flags)
            lenient = evaluate_gate(result, allow_missing=True, **flags)
            if not covered or interrupted or not matched_any:
                assert not strict.passed, (case, strict)
            if not matched_any:
                assert not lenient.passed, (case, lenient)


def test_an_interrupted_candidate_cannot_be_accepted_as_the_baseline(make_run: MakeRun) -> None:
    base = make_run("base", [record(f"e{i}") for i in range(2)])
    cand = make_run("cand", [record("e0")])
    (cand / ".incomplete").touch()
    before = sorted(p.name for p in base.iterdir())
    result = run_cli("diff", str(base), str(cand), "--accept")
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {cand}: an incomplete run cannot become the baseline; finish it with --resume first"
    assert sorted(p.name for p in base.iterdir()) == before
