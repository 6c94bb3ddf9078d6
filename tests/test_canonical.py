"""The byte-level basis of determinism: canonical JSON and the run id."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from insideLLMs.canonical import compute_run_id, dumps, dumps_bytes, dumps_pretty, loads
from support.cli import run_cli


def test_canonical_json_sorts_keys_at_every_depth_and_keeps_unicode() -> None:
    obj = {"b": 1, "a": {"d": [{"z": 1, "y": 2}], "c": "é"}}
    assert dumps_bytes(obj) == '{"a":{"c":"é","d":[{"y":2,"z":1}]},"b":1}'.encode()
    assert dumps_pretty(obj).endswith(b"}\n") and json.loads(dumps_pretty(obj)) == obj


def test_files_people_read_are_sorted_and_indented_by_two() -> None:
    assert dumps_pretty({"b": 1, "a": [1, {"d": None, "c": "é"}]}) == (
        '{\n  "a": [\n    1,\n    {\n      "c": "é",\n      "d": null\n    }\n  ],\n  "b": 1\n}\n'.encode())


def test_loads_reads_what_dumps_wrote() -> None:
    obj = {"a": [1, 2.5, None, True], "é": {"n": "x"}}
    assert loads(dumps(obj)) == loads(dumps_bytes(obj)) == obj


def test_key_order_never_changes_the_bytes() -> None:
    rng = random.Random(3)
    base = {f"k{i}": {f"n{j}": j for j in range(5)} for i in range(8)}
    for _ in range(20):
        keys = list(base)
        rng.shuffle(keys)
        shuffled = {k: dict(sorted(base[k].items(), key=lambda _: rng.random())) for k in keys}
        assert dumps_bytes(shuffled) == dumps_bytes(base)


def test_the_run_id_hashes_every_part_of_what_was_asked() -> None:
    parts = {"models": [{"id": "m"}], "probes": [{"id": "p"}], "dataset_hashes": ["h1"], "generation": {"t": 0}}
    base = compute_run_id(**parts)
    assert len(base) == 16 and base == compute_run_id(**parts)
    for name, other in (("models", [{"id": "m2"}]), ("probes", [{"id": "p2"}]), ("dataset_hashes", ["h2"]),
                        ("generation", {"t": 1})):
        assert compute_run_id(**(parts | {name: other})) != base, name


def _validate_run_id(folder: Path, config: str, rows: list[str]) -> str:
    folder.mkdir()
    (folder / "eval.yaml").write_text(config, encoding="utf-8")
    (folder / "data.jsonl").write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    result = run_cli("validate", "eval.yaml", cwd=folder)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().rsplit("run_id ", 1)[1]


@pytest.mark.slow
def test_a_config_names_its_run_by_content_not_by_key_order_or_folder(tmp_path: Path) -> None:
    rows = ['{"id": "a", "prompt": "2+2?", "answer": "4"}', '{"id": "b", "prompt": "3+3?", "answer": "6"}']
    config = ("model: {type: dummy, args: {model_name: echo}}\nprobe: {type: logic}\n"
              "dataset: {format: jsonl, path: data.jsonl}\ngeneration: {temperature: 0, max_tokens: 32}\n")
    reordered = ("generation: {max_tokens: 32, temperature: 0}\ndataset: {path: data.jsonl, format: jsonl}\n"
                 "probe: {type: logic}\nmodel: {args: {model_name: echo}, type: dummy}\n")
    first = _validate_run_id(tmp_path / "one", config, rows)
    assert _validate_run_id(tmp_path / "two", reordered, rows) == first
    changed = [rows[0], rows[1].replace("3+3?", "3+4?")]
    assert _validate_run_id(tmp_path / "three", config, changed) != first


def test_the_run_id_of_a_known_run_never_changes() -> None:
    """Baselines are named by run id: the id of the same inputs must not move between versions. The expected
    value is worked out independently here (sha256 of sorted, compact JSON with the schema version)."""
    import hashlib

    payload = {"schema_version": "1", "models": [{"id": "m"}], "probes": [{"id": "p"}], "datasets": ["h1"],
               "generation": {"t": 0}}
    expected = hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
    assert expected == "f63da516fdc3124b"
    assert compute_run_id([{"id": "m"}], [{"id": "p"}], ["h1"], {"t": 0}) == expected
    assert compute_run_id([{"id": "m"}], [{"id": "p"}], ["h1"], {"t": 0}, epochs=1) == expected


def test_the_run_id_of_a_run_with_epochs_never_changes() -> None:
    """More than one epoch adds ``epochs`` to the payload; each count is its own run, pinned like the one above."""
    import hashlib

    payload = {"schema_version": "1", "models": [{"id": "m"}], "probes": [{"id": "p"}], "datasets": ["h1"],
               "generation": {"t": 0}, "epochs": 3}
    expected = hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
    assert compute_run_id([{"id": "m"}], [{"id": "p"}], ["h1"], {"t": 0}, epochs=3) == expected
    assert compute_run_id([{"id": "m"}], [{"id": "p"}], ["h1"], {"t": 0}, epochs=2) != expected


def test_text_and_its_utf8_bytes_hash_alike() -> None:
    from insideLLMs.canonical import hash_obj, sha256_hex

    assert sha256_hex("é") == sha256_hex("é".encode()) == \
        "4a99557e4033c3539de2eb65472017cad5f9557f7a0625a09f1c3f6e2ba69c4c"
    assert hash_obj({"b": 1, "a": [1, 2]}) == sha256_hex('{"a":[1,2],"b":1}')
