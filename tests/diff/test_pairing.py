"""How the diff pairs the records of two runs: files in different orders, bad lines named, and the fast path that
counts a pair identical from its raw lines never hiding a change."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import pytest

from insideLLMs.canonical import dumps_bytes
from insideLLMs.diff import DiffInputError, DiffResult, diff_runs
from support.run_dirs import record

MakeRun = Callable[..., Path]
NO_CHANGES = {"regression": 0, "improvement": 0, "changed": 0, "only-in-baseline": 0, "only-in-candidate": 0}


def write(make_run: MakeRun, name: str, records: list[dict[str, Any]]) -> Path:
    return make_run(name, records, timings=[], summary=False)


def runs(make_run: MakeRun, base: list[dict[str, Any]], cand: list[dict[str, Any]]) -> tuple[Path, Path]:
    return write(make_run, "base", base), write(make_run, "cand", cand)


def changes(result: DiffResult) -> list[tuple[str, str, int | None, int | None]]:
    """(class, example, baseline line, candidate line) of each change, in the result's order."""
    return [(c.kind, c.example_id, c.baseline and c.baseline["line"], c.candidate and c.candidate["line"])
            for c in result.changes]


def in_order(order: str, run_id: Any, regressed: str = "") -> list[dict[str, Any]]:
    """One record per letter of ``order``; the letters in ``regressed`` answer "5" and fail."""
    return [record(e, run_id=run_id, output="5", passed=False) if e in regressed else record(e, run_id=run_id)
            for e in order]


@pytest.mark.parametrize(
    ("base", "cand", "regressed", "counts", "expected"),
    [
        pytest.param(  # w and x wait on the baseline's side until the candidate reaches them; q never comes
            "pwxzvq", "pzvwx", "x", {"regression": 1, "only-in-baseline": 1, "unchanged": 4},
            [("regression", "x", 3, 5), ("only-in-baseline", "q", 6, None)],
            id="moved-later-and-the-candidate-ends-first",
        ),
        pytest.param(  # y comes early in the candidate; the a after it is the very line the baseline has next
            "pxyarq", "pyaxrq", "r", {"regression": 1, "unchanged": 5}, [("regression", "r", 5, 5)],
            id="moved-earlier-then-an-identical-line",
        ),
        pytest.param(
            "ab", "ca", "", {"only-in-baseline": 1, "only-in-candidate": 1, "unchanged": 1},
            [("only-in-baseline", "b", 2, None), ("only-in-candidate", "c", None, 1)],
            id="one-example-only-on-each-side",
        ),
    ],
)
def test_examples_in_another_order_are_paired_by_key_with_their_own_lines(
    make_run: MakeRun, base: str, cand: str, regressed: str, counts: dict[str, int], expected: list[Any]
) -> None:
    """The candidate's run id differs throughout, so identical pairs are counted from their raw lines."""
    result = diff_runs(*runs(make_run, in_order(base, "run-a"), in_order(cand, "run-b", regressed)))
    assert result.counts == {**NO_CHANGES, **counts}
    assert changes(result) == expected


def test_at_most_max_pending_keys_wait_before_the_merge_falls_back_to_the_index(make_run: MakeRun) -> None:
    """Two swapped examples leave two keys waiting: with max_pending=2 the merge still streams and lists changes as
    it pairs them (y first, when the baseline reaches it); with 1 the on-disk index lists them in baseline order."""
    paths = runs(make_run, in_order("xy", "run-a"), in_order("yx", "run-b", regressed="xy"))
    assert changes(diff_runs(*paths, max_pending=2)) == [("regression", "y", 2, 1), ("regression", "x", 1, 2)]
    assert changes(diff_runs(*paths, max_pending=1)) == [("regression", "x", 1, 2), ("regression", "y", 2, 1)]


def replace_line(run_dir: Path, lineno: int, line: bytes) -> None:
    lines = (run_dir / "records.jsonl").read_bytes().splitlines(keepends=True)
    lines[lineno - 1] = line
    (run_dir / "records.jsonl").write_bytes(b"".join(lines))


@pytest.mark.parametrize(
    ("lineno", "line", "problem"),
    [
        (1, b'"example_id"\n', "expected a JSON object, got str"),
        (2, b'[{"example_id": "b"}]\n', "expected a JSON object, got list"),
        (2, b'{"example_id": "b"\n', "malformed JSON: unexpected end of data (column 19)"),
    ],
)
def test_a_bad_baseline_line_met_while_both_files_are_read_is_named(
    make_run: MakeRun, lineno: int, line: bytes, problem: str
) -> None:
    base, cand = runs(make_run, in_order("abc", "run-a"), in_order("abc", "run-b"))
    replace_line(base, lineno, line)
    with pytest.raises(DiffInputError) as err:
        diff_runs(base, cand)
    assert str(err.value) == f"{base / 'records.jsonl'}:{lineno}: {problem}"


def test_a_bad_baseline_line_after_the_candidate_ends_is_named(make_run: MakeRun) -> None:
    base, cand = runs(make_run, in_order("abc", "run-a"), in_order("a", "run-b"))
    replace_line(base, 3, b"{not json}\n")
    with pytest.raises(DiffInputError) as err:
        diff_runs(base, cand)
    assert str(err.value) == (f"{base / 'records.jsonl'}:3: malformed JSON: "
                              "unexpected character, expected a string key (column 2)")


def test_a_key_twice_in_the_baseline_is_named_while_it_waits_for_a_partner(make_run: MakeRun) -> None:
    base, cand = runs(make_run, in_order("xx", "run-a"), in_order("yz", "run-b"))
    with pytest.raises(DiffInputError) as err:
        diff_runs(base, cand)
    assert str(err.value) == f"{base / 'records.jsonl'}:2: duplicate record key dummy/factuality/x"


def with_input(rec: dict[str, Any], **extra: Any) -> dict[str, Any]:
    rec["input"] = {**rec["input"], **extra}
    return rec


MODEL, PROBE = record("a")["model"], record("a")["probe"]
WARM = {**MODEL, "params": {"temperature": 0.5}}
HOT = {**MODEL, "params": {"temperature": 1.0}}
NIGHTLY_1, NIGHTLY_2 = {"id": "nightly", "attempt": 1}, {"id": "nightly", "attempt": 2}


@pytest.mark.parametrize(
    ("base_a", "cand_a", "base_b", "cand_b", "field"),
    [
        pytest.param(  # "run_id":"run-a" twice in the baseline's line, "run_id":"run-b" once
            record("a"), record("a", run_id="run-b"),
            with_input(record("b"), runs=[{"run_id": "run-a"}, {"run_id": "run-b"}]),
            with_input(record("b", run_id="run-b"), runs=[{"run_id": "run-b"}, {"run_id": "run-b"}]),
            "input", id="the-run-id-also-in-the-input",
        ),
        pytest.param(  # b's run id, model and probe are not a's but share their ids; a's model spec is in b's input
            dict(record("a"), run_id=NIGHTLY_1), dict(record("a"), run_id=NIGHTLY_1, model=WARM),
            with_input(dict(record("b"), run_id=NIGHTLY_2, model=HOT, probe={**PROBE, "version": "2"}), model=MODEL),
            with_input(dict(record("b"), run_id=NIGHTLY_2, model=HOT, probe={**PROBE, "version": "2"}), model=WARM),
            "input", id="new-run-fields-and-a-learned-model-spec-in-the-input",
        ),
        pytest.param(  # the candidate keeps the baseline's run id on b; the input names run fields, null
            record("a"), record("a", run_id="run-b"),
            with_input(record("b"), parent={"run_id": None, "model": None, "probe": None}),
            with_input(record("b"), parent={"run_id": "run-b", "model": MODEL, "probe": PROBE}),
            "input", id="null-run-fields-in-the-input",
        ),
        pytest.param(  # a null run id (the candidate's a has 7), and output text that reads like it
            record("a", run_id=None), record("a", run_id=7),  # type: ignore[arg-type]
            record("b", run_id=None, output="null:null"),  # type: ignore[arg-type]
            record("b", run_id=None, output="null:7"),  # type: ignore[arg-type]
            "output", id="a-null-run-id-and-output-that-reads-like-it",
        ),
    ],
)
def test_ignored_fields_echoed_in_a_record_never_hide_a_change(
    make_run: MakeRun, base_a: dict[str, Any], cand_a: dict[str, Any], base_b: dict[str, Any],
    cand_b: dict[str, Any], field: str,
) -> None:
    """a, identical up to the ignored fields, teaches the diff how the runs write them; b changed in the very bytes
    those fields are written as (or in text that reads like them): b is a changed pair, not an identical one."""
    result = diff_runs(*runs(make_run, [base_a, base_b], [cand_a, cand_b]))
    assert result.counts == {**NO_CHANGES, "changed": 1, "unchanged": 1}
    assert [(c.example_id, c.reasons, c.fields) for c in result.changes] == [("b", [f"{field} changed"], [field])]


def test_a_record_with_its_example_id_misspelt_is_refused_even_where_both_runs_have_it(make_run: MakeRun) -> None:
    """``EXAMPLE_ID`` is not ``example_id``: the line is not a record, however exactly the candidate repeats it."""
    base, cand = in_order("ab", "run-a"), in_order("ab", "run-b")
    for rec in (base[1], cand[1]):
        rec["EXAMPLE_ID"] = rec.pop("example_id")
    base_dir, _ = paths = runs(make_run, base, cand)
    with pytest.raises(DiffInputError) as err:
        diff_runs(*paths)
    assert str(err.value) == (f"{base_dir / 'records.jsonl'}:2: not a record "
                              "(it needs model.id, probe.id and example_id)")


def test_a_run_id_of_any_json_type_is_ignored(make_run: MakeRun) -> None:
    """A merged run may name its sources: a list as run id is ignored like a string one."""
    result = diff_runs(*runs(make_run, in_order("abc", ["run-a", "run-b"]), in_order("abc", ["run-c"])))
    assert result.counts == {**NO_CHANGES, "unchanged": 3} and result.changes == []


LINE_B = dumps_bytes(record("b", run_id="run-b"))
MODEL_AT = LINE_B.index(b'"model":') + 1  # its column, the first run field


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (LINE_B + b"\x0c\n", f"unexpected content after document (column {len(LINE_B) + 1})"),
        (re.sub(rb'"(run_id|model|probe)":', b"null:", LINE_B) + b"\n",
         f"unexpected character, expected a string key (column {MODEL_AT})"),
    ],
    ids=["a-form-feed-after-the-record", "the-run-field-names-lost"],
)
def test_a_candidate_line_that_is_not_json_is_refused_however_close_to_its_baseline_line(
    make_run: MakeRun, line: bytes, problem: str
) -> None:
    """The second candidate line is the baseline's with the run id changed (as on the first, identical, pair), then
    damaged: it is malformed, never an identical pair (a form feed is no JSON whitespace, though bytes.rstrip takes
    it for one)."""
    base, cand = runs(make_run, in_order("ab", "run-a"), in_order("ab", "run-b"))
    replace_line(cand, 2, line)
    with pytest.raises(DiffInputError) as err:
        diff_runs(base, cand)
    assert str(err.value) == f"{cand / 'records.jsonl'}:2: malformed JSON: {problem}"


def test_a_records_file_that_cannot_be_read_is_one_line() -> None:
    """Run as a user who may not read it (root may read anything: the diff runs as nobody, on runs in a folder
    nobody may enter)."""
    import os
    import shutil
    import subprocess
    import sys
    import tempfile

    from support.run_dirs import write_run_dir

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to read as another user")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        root.chmod(0o755)
        base = write_run_dir(root / "base", [record("e1")])
        cand = write_run_dir(root / "cand", [record("e1")])
        (cand / "records.jsonl").chmod(0o600)
        code = ("import sys; from insideLLMs.diff import diff_runs\ntry:\n    diff_runs(sys.argv[1], sys.argv[2])\n"
                "except Exception as exc:\n    print(type(exc).__name__, exc)\n")
        as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
        if subprocess.run([*as_nobody, "-c", "import insideLLMs.diff"], capture_output=True, env=env).returncode:
            pytest.skip("this checkout or its Python cannot be read by nobody (a private clone)")
        result = subprocess.run([*as_nobody, "-c", code, str(base), str(cand)], capture_output=True, text=True, env=env)
    assert result.stdout == f"DiffInputError {cand / 'records.jsonl'}: cannot read (Permission denied)\n", result.stderr
