"""`diff_runs` on runs with epochs: records pair by (example, epoch) whatever their order in the files, the epochs
reported come from the manifests (one when a manifest names none) and else from the records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

from insideLLMs.diff import DiffInputError, diff_runs
from support.diff_expectations import NO_JUDGE, SUFFIXES
from support.run_dirs import record

MakeRun = Callable[..., Path]


def _rec(example_id: str, epoch: int, output: str, **kwargs: Any) -> dict[str, Any]:
    """A record of one epoch with no verdict and no scores: only its output tells pairs apart."""
    return record(example_id, output=output, passed=None, scores={}, **kwargs) | {"epoch": epoch}


def _with_epochs(run: Path, k: int) -> Path:
    manifest = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps(manifest | {"epochs": k}))
    return run


def _side(line: int, output: str) -> dict[str, Any]:
    return {"line": line, "status": "success", "passed": None, "scores": {}, "output": output, "error": None}


def _counts(changed: int, unchanged: int) -> dict[str, int]:
    return {"regression": 0, "improvement": 0, "changed": changed, "only-in-baseline": 0, "only-in-candidate": 0,
            "unchanged": unchanged}


def _tokens(prompt: int, completion: int) -> dict[str, Any]:
    """Both sides' token counts (the same on both) and their change, zero."""
    side = {"prompt_tokens": prompt, "completion_tokens": completion, **NO_JUDGE}
    return {"baseline": side, "candidate": side, "change": {"prompt_tokens": 0, "completion_tokens": 0, **NO_JUDGE}}


@pytest.mark.parametrize(("match_on", "cand_model", "label", "spec_changes"), [
    ("key", "dummy", "dummy", []),
    ("example", "big", "dummy → big", ["model dummy → big"]),
])
def test_epochs_pair_by_epoch_not_by_their_order_in_the_file(
    make_run: MakeRun, match_on: str, cand_model: str, label: str, spec_changes: list[str]
) -> None:
    """Two examples × two epochs; the candidate wrote a's epochs in the other order (1 then 0) and b's second epoch
    says z, not y. Each epoch pairs with its own: three pairs unchanged, one changed (b, epoch 1)."""
    base = [_rec("a", 0, "x"), _rec("a", 1, "y"), _rec("b", 0, "x"), _rec("b", 1, "y")]
    cand = [_rec(e, k, out, model=cand_model, run_id="run-b") for e, k, out in (
        ("a", 1, "y"), ("a", 0, "x"), ("b", 0, "x"), ("b", 1, "z"))]
    out = diff_runs(_with_epochs(make_run("base", base), 2), _with_epochs(make_run("cand", cand), 2),
                    match_on=match_on).to_dict()  # type: ignore[arg-type]
    counts = _counts(changed=1, unchanged=3)
    no_verdicts = {"n": 4, "passed": 0, "pass_rate": None}
    tokens = _tokens(20, 4)  # 5 prompt and 1 completion token per record
    assert out == {
        "baseline": {"run_id": "run-a"},
        "candidate": {"run_id": "run-b"},
        "match_on": match_on,
        "tolerances": {},
        "lower_is_better_suffixes": SUFFIXES,
        "counts": counts,
        "coverage": {"baseline_n": 4, "candidate_n": 4, "compared": 4, "candidate_complete": True},
        "spec_changes": spec_changes,
        "groups": [
            {
                "model": label,
                "probe": "factuality",
                "counts": counts,
                "baseline": no_verdicts,
                "candidate": no_verdicts,
                "mcnemar": {
                    "test": "exact McNemar (one-sided binomial on discordant pairs)",
                    "b": 0,
                    "c": 0,
                    "p_value": 1.0,
                },
                "paired": {},
            }
        ],
        "changes": [
            {
                "class": "changed",
                "model": label,
                "probe": "factuality",
                "example_id": "b",
                "reasons": ["output changed"],
                "fields": ["output"],
                "input": {"answer": "4", "prompt": "question b"},
                "baseline": _side(4, "y"),
                "candidate": _side(4, "z"),
                "epoch": 1,
            }
        ],
        "changes_total": 1,
        "changes_truncated": False,
        # with --match-on example, a group's cost is its probe's on each side, whatever the model
        "cost": {
            "groups": [{"model": label, "probe": "factuality", **tokens}],
            "total": {"model": "total", "probe": "", **tokens},
        },
        "epochs": 2,
    }


def test_epochs_are_counted_when_every_pair_changed(make_run: MakeRun) -> None:
    """Three epochs of one example, each with another output in the candidate: no pair is identical, and the diff
    still reports three epochs."""
    base = [_rec("a", k, "x") for k in range(3)]
    cand = [_rec("a", k, "y", run_id="run-b") for k in range(3)]
    result = diff_runs(_with_epochs(make_run("base", base), 3), _with_epochs(make_run("cand", cand), 3))
    out = result.to_dict()
    assert (result.epochs, out["epochs"], out["counts"]) == (3, 3, _counts(changed=3, unchanged=0))
    assert [(c["example_id"], c["epoch"], c["baseline"], c["candidate"]) for c in out["changes"]] == [
        ("a", k, _side(k + 1, "x"), _side(k + 1, "y")) for k in range(3)]


def test_a_manifest_that_names_no_epochs_is_a_run_of_one_epoch_whatever_its_records_say(make_run: MakeRun) -> None:
    """A finished run's manifest decides its epochs: one when it names none (as a run of one epoch writes it), so
    a candidate of two epochs is refused even though the baseline's records carry epochs 0 and 1."""
    base = make_run("base", [_rec("a", k, "x") for k in range(2)])
    cand = _with_epochs(make_run("cand", [_rec("a", k, "x", run_id="run-b") for k in range(2)]), 2)
    with pytest.raises(DiffInputError) as err:
        diff_runs(base, cand)
    assert str(err.value) == (f"{cand}: has 2 epoch(s) per example, the baseline {base} has 1; "
                              "compare runs with the same runner.epochs")


@pytest.mark.parametrize("manifest", [b"[]", b"null", b"3"])
def test_a_manifest_that_is_not_a_json_object_counts_as_none(make_run: MakeRun, manifest: bytes) -> None:
    """A baseline whose manifest.json holds JSON but not an object is read as a run without a manifest: no run id,
    its epochs from its records (one here, like the candidate's), and the diff goes on."""
    base = make_run("base", [record("a"), record("b")])
    (base / "manifest.json").write_bytes(manifest)
    cand = make_run("cand", [record("a", run_id="run-b"), record("b", output="5", run_id="run-b")])
    out = diff_runs(base, cand).to_dict()
    assert (out["baseline"], out["candidate"]) == ({"run_id": None}, {"run_id": "run-b"})
    assert out["counts"] == _counts(changed=1, unchanged=1)
    assert "epochs" not in out
