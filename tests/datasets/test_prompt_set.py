"""PromptSet's constructors and clusters through the public API: ids, names, sources, hashes and the exact errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from insideLLMs.datasets import DatasetError, Example, PromptSet


def _error(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(DatasetError) as caught:
        call()
    return str(caught.value)


def test_an_inline_list_is_named_inline_and_numbered_where_rows_have_no_id() -> None:
    ps = PromptSet.from_list(["hi", {"id": 7, "prompt": "x"}, {"prompt": "y"}])
    assert (ps.name, ps.source, ps.lines) == ("inline", None, None)
    assert list(ps) == [Example("0", {"prompt": "hi"}), Example("7", {"id": 7, "prompt": "x"}),
                        Example("2", {"prompt": "y"})]
    assert PromptSet.from_list([{"qid": "a"}], name="qa", id_field="qid").examples[0].id == "a"
    assert PromptSet.from_list([], name="qa").name == "qa"


def test_an_inline_row_of_the_wrong_kind_or_id_names_the_list_and_item() -> None:
    assert _error(lambda: PromptSet.from_list(["a", 3], name="qa")) == (
        "qa: item 1: expected an object or a string, got int")
    assert _error(lambda: PromptSet.from_list([{"id": 1}, {"id": [2]}])) == (
        "inline: item 1: field 'id' must be a string or an integer")


def test_a_duplicate_id_is_named_whichever_row_repeats_it() -> None:
    assert _error(lambda: PromptSet.from_list([{"id": "a"}, {"id": "b"}, {"id": "c"}, {"id": "b"}])) == (
        "inline: duplicate example id 'b'")


def test_csv_defaults_to_the_id_column_and_keeps_a_quoted_line_break(tmp_path: Path) -> None:
    (tmp_path / "qa.csv").write_bytes(b'id,prompt\r\na1,"two\r\nlines"\r\na2,one\r\n')
    ps = PromptSet.from_csv(tmp_path / "qa.csv", name="mine")
    assert [(e.id, e.data["prompt"]) for e in ps] == [("a1", "two\r\nlines"), ("a2", "one")]
    assert (ps.name, list(ps.lines or [])) == ("mine", [3, 4])
    assert PromptSet.from_csv(tmp_path / "qa.csv").name == "qa"


def test_csv_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "qa.csv").write_bytes(b"id,prompt\na1,fine\na2,caf\xe9\n")
    assert _error(lambda: PromptSet.from_csv(tmp_path / "qa.csv")) == (
        f"{tmp_path / 'qa.csv'}:3: not UTF-8 text (invalid continuation byte)")
    (tmp_path / "first.csv").write_bytes(b"\xff,prompt\n")
    assert _error(lambda: PromptSet.from_csv(tmp_path / "first.csv")) == (
        f"{tmp_path / 'first.csv'}:1: not UTF-8 text (invalid start byte)")


def test_clustered_by_keeps_the_set_and_tags_each_example(tmp_path: Path) -> None:
    (tmp_path / "qa.jsonl").write_text('{"id": "a", "doc": "d1"}\n\n{"id": "b", "doc": 2}\n', encoding="utf-8")
    ps = PromptSet.from_jsonl(tmp_path / "qa.jsonl", base_dir=tmp_path)
    clustered = ps.clustered_by("doc")
    assert [(e.id, e.cluster) for e in clustered] == [("a", "d1"), ("b", "2")]
    assert (clustered.name, clustered.source, clustered.hash, clustered.cluster) == ("qa", "qa.jsonl", ps.hash, "doc")
    assert list(clustered.lines or []) == [1, 3]
    assert clustered.info == {**ps.info, "cluster": "doc"}
    given = PromptSet((Example("a", {"doc": "d"}),), hash="pinned").clustered_by("doc")
    assert given.hash == "pinned"


@pytest.mark.parametrize(("row", "what"), [
    ({"id": "b"}, "has no field"),
    ({"id": "b", "doc": True}, "has bool True in field"),
    ({"id": "b", "doc": 1.5}, "has float 1.5 in field"),
    ({"id": "b", "doc": ["x"]}, "has list ['x'] in field"),
])
def test_a_row_without_a_usable_cluster_is_named_by_file_and_line(tmp_path: Path, row: dict, what: str) -> None:
    (tmp_path / "qa.jsonl").write_text('{"id": "a", "doc": "d1"}\n' + json.dumps(row) + "\n")
    ps = PromptSet.from_jsonl("qa.jsonl", base_dir=tmp_path)
    hint = "(dataset.cluster); give every row a string or integer there, or remove dataset.cluster"
    assert _error(lambda: ps.clustered_by("doc")) == f"qa.jsonl:2: example 'b' {what} 'doc' {hint}"
    assert _error(lambda: ps.clustered_by("doc", locate=lambda i: f"row {i}")) == f"row 1: example 'b' {what} 'doc' {hint}"
    inline = PromptSet.from_list([{"doc": 1}, row], name="mine")
    assert _error(lambda: inline.clustered_by("doc")) == f"mine: item 1: example 'b' {what} 'doc' {hint}"


def test_a_field_renamed_from_a_column_the_row_lacks_keeps_the_rows_own_value() -> None:
    ps = PromptSet.from_list([{"prompt": "own"}, {"prompt": "own", "question": "renamed"}], fields={"prompt": "question"})
    assert [e.data for e in ps] == [{"prompt": "own"}, {"prompt": "renamed"}]


def test_csv_names_every_missing_column_and_counts_lines_from_the_first_byte(tmp_path: Path) -> None:
    (tmp_path / "qa.csv").write_text("id,text\na1,x\n", encoding="utf-8")
    assert _error(lambda: PromptSet.from_csv(tmp_path / "qa.csv", fields={"prompt": "question", "answer": "gold"})) == (
        f"{tmp_path / 'qa.csv'}:1: column(s) question, gold not in header ['id', 'text']")
    (tmp_path / "blank.csv").write_bytes(b"\nid,prompt\na1,caf\xe9\n")
    assert _error(lambda: PromptSet.from_csv(tmp_path / "blank.csv")) == (
        f"{tmp_path / 'blank.csv'}:3: not UTF-8 text (invalid continuation byte)")


def test_csv_with_carriage_returns_alone_as_line_ends_loads(tmp_path: Path) -> None:
    (tmp_path / "mac.csv").write_bytes(b'id,prompt\ra1,"x\ry"\ra2,z\r')
    assert [(e.id, e.data["prompt"]) for e in PromptSet.from_csv(tmp_path / "mac.csv")] == [("a1", "x\ry"), ("a2", "z")]


def test_head_is_the_first_n_examples_with_their_own_hash_and_lines(tmp_path: Path) -> None:
    """``--max-examples``: the first ``n`` rows, named and located as before (errors still name the file's line),
    hashed as those rows alone (a new run id); ``n`` at or past the end, or None, is the whole set."""
    rows = [{"id": "a", "doc": "d"}, {"id": "b", "doc": "d"}, {"id": "c"}]
    (tmp_path / "qa.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    ps = PromptSet.from_jsonl(tmp_path / "qa.jsonl", base_dir=tmp_path)
    assert ps.head(None) is ps and ps.head(3) is ps and ps.head(4) is ps
    two = ps.head(2)
    assert [e.id for e in two] == ["a", "b"]
    assert (two.name, two.source, list(two.lines or [])) == ("qa", "qa.jsonl", [1, 2])
    assert two.hash == PromptSet.from_list(rows[:2]).hash != ps.hash
    assert ps.head(0).examples == () and list(ps.head(0).lines or []) == []
    clustered = ps.head(2).clustered_by("doc")
    assert clustered.head(1).cluster == "doc" and clustered.head(1).examples == clustered.examples[:1]
    assert _error(lambda: ps.clustered_by("doc")) == (
        "qa.jsonl:3: example 'c' has no field 'doc' (dataset.cluster); "
        "give every row a string or integer there, or remove dataset.cluster")
    inline = PromptSet.from_list(rows, name="qa").head(2)
    assert (inline.name, inline.source, inline.lines) == ("qa", None, None)
