"""`insidellms diff`: classes, exit codes, matching, tolerance, JSON output, --accept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest
from click.testing import CliRunner

from insideLLMs.canonical import dumps_bytes
from insideLLMs.cli.main import cli as insidellms
from support.cli import run_cli
from support.run_dirs import record

MakeRun = Callable[..., Path]


def invoke(*args: str) -> Any:
    return CliRunner().invoke(insidellms, ["diff", *map(str, args)])


def diff_json(*args: Any) -> tuple[int, dict[str, Any]]:
    result = invoke(*args, "--format", "json")
    return result.exit_code, json.loads(result.stdout)


@pytest.fixture
def every_class(make_run: MakeRun) -> tuple[Path, Path]:
    """One example of each class: e1 regression, e2 changed, e3 error, e4 dropped, e5 improved, new added."""
    base = [record(f"e{i}") for i in range(6)]
    base[5] = record("e5", output="5", passed=False)
    cand = [record(f"e{i}", run_id="run-b") for i in range(6)]
    cand[1] = record("e1", output="5", passed=False, run_id="run-b")
    cand[2] = record("e2", output="4, I think", run_id="run-b")
    cand[3] = record("e3", status="timeout", passed=None, output=None,
                     error={"type": "ModelTimeout", "message": "no answer in 60 s"}, run_id="run-b")
    del cand[4]
    cand.append(record("new", run_id="run-b"))
    return make_run("base", base), make_run("cand", cand)


def test_each_class_is_found(every_class: tuple[Path, Path]) -> None:
    code, out = diff_json(*every_class)
    assert code == 0  # no gate option: report only
    assert out["counts"] == {"regression": 2, "improvement": 1, "changed": 1, "only-in-baseline": 1,
                             "only-in-candidate": 1, "unchanged": 1}
    by_id = {c["example_id"]: c for c in out["changes"]}
    assert {k: v["class"] for k, v in by_id.items()} == {
        "e1": "regression", "e3": "regression", "e5": "improvement", "e2": "changed",
        "e4": "only-in-baseline", "new": "only-in-candidate",
    }
    assert "passed true → false" in by_id["e1"]["reasons"]
    assert "status success → timeout" in by_id["e3"]["reasons"]
    assert by_id["e2"]["fields"] == ["output"]
    assert by_id["e2"]["baseline"]["output"] == "4" and by_id["e2"]["candidate"]["output"] == "4, I think"
    assert by_id["e4"]["candidate"] is None and by_id["new"]["baseline"] is None
    [group] = out["groups"]
    assert group["mcnemar"]["b"] == 2 and group["mcnemar"]["c"] == 1


def test_text_output_shows_counts_and_a_unified_diff(every_class: tuple[Path, Path]) -> None:
    result = invoke(*every_class, "--top", "3")
    assert result.exit_code == 0
    text = result.stdout
    assert "regression                 2" in text and "only-in-candidate          1" in text
    assert "top 3 change(s) (3 more not shown):" in text
    assert "[regression] dummy / factuality / e1  (baseline line 2, candidate line 2)" in text
    assert "    -4\n    +5\n" in text
    assert "error: ModelTimeout: no answer in 60 s" in text
    assert "exact McNemar" in text and "b=2, fail→pass c=1, p=0.5" in text


@pytest.mark.parametrize(
    ("flag", "expected"),
    [("--fail-on-changes", 2), ("--fail-on-regressions", 2), ("--fail-on-significant-regression", 0)],
)
def test_gate_exit_codes_with_changes(every_class: tuple[Path, Path], flag: str, expected: int) -> None:
    """(The candidate lacks e4: --allow-missing gates on the rest; tests/diff/test_coverage.py covers its absence.)"""
    result = run_cli("diff", *map(str, every_class), flag, "--allow-missing")
    assert result.returncode == expected, result.stderr
    assert ("gate: FAILED" in result.stdout) == (expected == 2)


def test_gates_pass_on_identical_runs(make_run: MakeRun) -> None:
    base = make_run("base", [record(f"e{i}") for i in range(5)])
    cand = make_run("cand", [record(f"e{i}", run_id="other-run-id") for i in range(5)])
    result = invoke(base, cand, "--fail-on-changes", "--fail-on-regressions", "--fail-on-significant-regression")
    assert result.exit_code == 0, result.stdout
    assert "unchanged                  5" in result.stdout and "no changes." in result.stdout
    assert "gate: PASSED (--fail-on-changes, --fail-on-regressions" in result.stdout


def test_only_improvements_pass_the_regression_gate(make_run: MakeRun) -> None:
    base = make_run("base", [record("a", passed=False, output="3"), record("b")])
    cand = make_run("cand", [record("a"), record("b")])
    assert invoke(base, cand, "--fail-on-regressions").exit_code == 0
    assert invoke(base, cand, "--fail-on-changes").exit_code == 2


@pytest.mark.slow
def test_input_errors_exit_1_with_one_line(tmp_path: Path, make_run: MakeRun) -> None:
    good = make_run("good", [record("a"), record("b"), record("c")])
    (tmp_path / "empty").mkdir()
    bad = make_run("bad", [record("a"), record("b"), record("c")])
    lines = (bad / "records.jsonl").read_text().splitlines()
    lines[2] = lines[2][:40]
    (bad / "records.jsonl").write_text("\n".join(lines) + "\n")
    cases = {
        (str(tmp_path / "missing"), str(good)): "no such directory",
        (str(tmp_path / "empty"), str(good)): "not a run directory (no records.jsonl)",
        (str(good), str(bad)): f"{bad / 'records.jsonl'}:3: malformed JSON: ",
        (str(good), str(good / "records.jsonl")): "not a directory",
    }
    for args, message in cases.items():
        result = run_cli("diff", *args)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert message in result.stderr
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_usage_errors_exit_1(every_class: tuple[Path, Path]) -> None:
    assert run_cli("diff").returncode == 1
    result = run_cli("diff", *map(str, every_class), "--tolerance", "score=lots")
    assert result.returncode == 1 and "expected NAME=NUMBER" in result.stderr
    assert run_cli("diff", *map(str, every_class), "--alpha", "2").returncode == 1


def test_not_a_record_names_the_line(make_run: MakeRun) -> None:
    base = make_run("base", [record("a")])
    cand = make_run("cand", [record("a")])
    with open(cand / "records.jsonl", "a") as fh:
        fh.write('{"example_id": "x"}\n')
    result = invoke(base, cand)
    assert result.exit_code == 1
    assert f"{cand / 'records.jsonl'}:2: not a record" in result.output


def test_a_record_without_an_example_id_is_refused_even_where_both_runs_have_it(make_run: MakeRun) -> None:
    """A record lacking its example_id is not a record, also when the candidate has the very same line (a pair
    identical up to the run id is otherwise counted without parsing the candidate's line)."""
    from insideLLMs.diff import DiffInputError, diff_runs

    base = [record("a"), record("b")]
    del base[1]["example_id"]
    cand = [dict(r, run_id="run-b") for r in base]
    base_dir, cand_dir = make_run("base", base, timings=[]), make_run("cand", cand, timings=[])
    with pytest.raises(DiffInputError) as err:
        diff_runs(base_dir, cand_dir)
    assert str(err.value) == (f"{base_dir / 'records.jsonl'}:2: not a record "
                              "(it needs model.id, probe.id and example_id)")


@pytest.mark.parametrize("side", ["base", "cand"])
def test_a_record_with_its_run_fields_nulled_is_refused_on_either_side(make_run: MakeRun, side: str) -> None:
    """run_id, model and probe null on one side's second record, the rest as the other side has it: that line is
    not a record, however closely it matches its partner."""
    from insideLLMs.diff import DiffInputError, diff_runs

    runs = {name: [record("a", run_id=run_id), record("b", run_id=run_id)]
            for name, run_id in (("base", "run-a"), ("cand", "run-b"))}
    runs[side][1].update(run_id=None, model=None, probe=None)
    dirs = {name: make_run(name, records, timings=[], summary=False) for name, records in runs.items()}
    with pytest.raises(DiffInputError) as err:
        diff_runs(dirs["base"], dirs["cand"])
    assert str(err.value) == (f"{dirs[side] / 'records.jsonl'}:2: not a record "
                              "(it needs model.id, probe.id and example_id)")


def test_match_on_example_gates_a_model_upgrade(make_run: MakeRun) -> None:
    base = make_run("base", [record(f"e{i}", model="model-v1") for i in range(4)])
    cand_records = [record(f"e{i}", model="model-v2", run_id="r2") for i in range(4)]
    cand_records[2] = record("e2", model="model-v2", run_id="r2", output="no", passed=False)
    cand = make_run("cand", cand_records)
    _, by_key = diff_json(base, cand)
    assert by_key["counts"]["only-in-baseline"] == 4 and by_key["counts"]["only-in-candidate"] == 4
    code, by_example = diff_json(base, cand, "--match-on", "example", "--fail-on-regressions")
    assert code == 2
    assert by_example["counts"]["unchanged"] == 3 and by_example["counts"]["regression"] == 1
    assert by_example["groups"][0]["model"] == "model-v1 → model-v2"
    assert by_example["changes"][0]["example_id"] == "e2"


def test_match_on_example_rejects_a_run_with_two_models(make_run: MakeRun) -> None:
    base = make_run("base", [record("e1", model="m1"), record("e1", model="m2")])
    cand = make_run("cand", [record("e1", model="m1")])
    result = invoke(base, cand, "--match-on", "example")
    assert result.exit_code == 1
    assert "records.jsonl:2: a second model 'm2'" in result.output


def test_score_tolerance_and_direction(make_run: MakeRun) -> None:
    base = make_run("base", [record("a", scores={"score": 0.90, "bias": 0.10}, passed=None)])
    within = make_run("within", [record("a", scores={"score": 0.89, "bias": 0.10}, passed=None)])
    _, strict = diff_json(base, within)
    assert strict["counts"]["regression"] == 1
    assert strict["changes"][0]["reasons"] == ["score score 0.9 → 0.89"]
    _, tolerant = diff_json(base, within, "--tolerance", "score=0.02")
    assert tolerant["counts"]["unchanged"] == 1 and tolerant["tolerances"] == {"score": 0.02}
    more_bias = make_run("bias", [record("a", scores={"score": 0.95, "bias": 0.30}, passed=None)])
    _, mixed = diff_json(base, more_bias)
    assert mixed["counts"]["regression"] == 1  # worse bias outweighs the better score
    assert mixed["changes"][0]["reasons"] == ["score bias 0.1 → 0.3 (lower is better)", "score score 0.9 → 0.95"]
    _, custom = diff_json(base, within, "--lower-is-better", "score")
    assert custom["counts"]["improvement"] == 1
    _, blanket = diff_json(base, more_bias, "--tolerance", "0.5")
    assert blanket["counts"]["unchanged"] == 1


def _flip_runs(make_run: MakeRun, n: int, flips: int) -> tuple[Path, Path]:
    base = [record(f"e{i:03d}") for i in range(n)]
    cand = [record(f"e{i:03d}", run_id="r2") if i >= flips else record(f"e{i:03d}", run_id="r2", output="x", passed=False)
            for i in range(n)]
    return make_run(f"base{flips}", base), make_run(f"cand{flips}", cand)


def test_mcnemar_gate_tolerates_one_flip_in_200(make_run: MakeRun) -> None:
    base, cand = _flip_runs(make_run, 200, 1)
    result = invoke(base, cand, "--fail-on-significant-regression")
    assert result.exit_code == 0, result.stdout
    assert "flips pass→fail b=1, fail→pass c=0, p=0.5" in result.stdout
    assert invoke(base, cand, "--fail-on-regressions").exit_code == 2


def test_mcnemar_gate_fails_on_30_flips_in_200(make_run: MakeRun) -> None:
    base, cand = _flip_runs(make_run, 200, 30)
    result = invoke(base, cand, "--fail-on-significant-regression", "--alpha", "0.01")
    assert result.exit_code == 2
    assert "dummy / factuality: pass rate dropped significantly (McNemar b=30 c=0 p=9.31e-10 < alpha=0.01)" in result.stdout
    code, out = diff_json(base, cand, "--fail-on-significant-regression")
    assert code == 2
    assert out["groups"][0]["mcnemar"] == {
        "test": "exact McNemar (one-sided binomial on discordant pairs)", "b": 30, "c": 0, "p_value": 2.0**-30,
    }
    assert out["gate"]["passed"] is False


def test_json_is_canonical_and_deterministic(every_class: tuple[Path, Path], tmp_path: Path) -> None:
    outputs = []
    for name in ("one.json", "two.json"):
        result = run_cli("diff", *map(str, every_class), "--format", "json", "-o", str(tmp_path / name))
        assert result.returncode == 0
        assert f"wrote {tmp_path / name}; gate PASSED" in result.stderr
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0] == dumps_bytes(json.loads(outputs[0])) + b"\n"
    assert str(every_class[0]) not in outputs[0].decode()  # no machine-specific paths


def test_out_of_order_candidate_gives_the_same_result(make_run: MakeRun) -> None:
    """Reversed candidate order; a tiny pending bound forces the SQLite fallback too."""
    from insideLLMs.diff import diff_runs

    base_records = [record(f"e{i:02d}", probe=f"p{i % 3}") for i in range(60)]
    cand_records = [record(f"e{i:02d}", probe=f"p{i % 3}", run_id="r2",
                           output="x" if i % 7 == 0 else "4", passed=i % 7 != 0) for i in range(60)]
    cand_records.append(record("extra", run_id="r2"))
    base = make_run("base", base_records)
    ordered = make_run("ordered", cand_records)
    shuffled = make_run("shuffled", list(reversed(cand_records)))
    results = [
        diff_runs(base, ordered),
        diff_runs(base, shuffled),
        diff_runs(base, shuffled, max_pending=4),
    ]
    expected = {"regression": 9, "improvement": 0, "changed": 0, "only-in-baseline": 0,
                "only-in-candidate": 1, "unchanged": 51}
    for res in results:
        assert res.counts == expected
        assert sorted(c.example_id for c in res.changes) == sorted(
            [f"e{i:02d}" for i in range(0, 60, 7)] + ["extra"])
        assert {(g.probe, g.pass_to_fail) for g in res.groups} == {("p0", 3), ("p1", 3), ("p2", 3), ("factuality", 0)}


def test_duplicate_keys_are_an_input_error(make_run: MakeRun) -> None:
    from insideLLMs.diff import DiffInputError, diff_runs

    base = make_run("base", [record("a"), record("b"), record("c")])
    cand = make_run("cand", [record("x"), record("x"), record("a")])
    with pytest.raises(DiffInputError, match=r"cand/records.jsonl:2: duplicate record key dummy/factuality/x"):
        diff_runs(base, cand)  # caught while the key waits for a partner
    cand = make_run("cand2", [record("b"), record("a"), record("a")])
    with pytest.raises(DiffInputError, match=r"cand2/records.jsonl:3: duplicate record key dummy/factuality/a"):
        diff_runs(base, cand, max_pending=1)  # the indexed join checks every key


def test_multi_answer_outputs_diff_per_answer(make_run: MakeRun) -> None:
    base = make_run("base", [record("a", output=["He is a nurse.", "She is a nurse."], probe="bias")])
    cand = make_run("cand", [record("a", output=["He is a doctor.", "She is a nurse."], probe="bias")])
    result = invoke(base, cand)
    assert "    -[answer 1] He is a nurse.\n    +[answer 1] He is a doctor.\n" in result.stdout


def test_accept_makes_the_candidate_the_baseline(every_class: tuple[Path, Path]) -> None:
    base, cand = every_class
    (base / "notes.txt").write_text("stale")
    result = run_cli("diff", "--accept", str(base), str(cand))
    assert result.returncode == 0, result.stderr
    assert "accepting 6 change(s)" in result.stdout
    assert f"replaced {base} with the deterministic files of {cand}" in result.stdout
    assert "not copied (volatile): timings.jsonl" in result.stdout
    assert "removed from the baseline: notes.txt, timings.jsonl" in result.stdout
    assert (base / "records.jsonl").read_bytes() == (cand / "records.jsonl").read_bytes()
    assert not (base / "timings.jsonl").exists()
    assert sorted(p.name for p in base.parent.iterdir()) == ["base", "cand"]  # no staging left behind
    assert run_cli("diff", str(base), str(cand), "--fail-on-changes").returncode == 0


def test_accept_creates_a_missing_baseline(every_class: tuple[Path, Path], tmp_path: Path) -> None:
    result = run_cli("diff", "--accept", str(tmp_path / "baselines" / "new"), str(every_class[1]))
    assert result.returncode == 0, result.stderr
    assert "created" in result.stdout
    assert (tmp_path / "baselines" / "new" / "records.jsonl").exists()
