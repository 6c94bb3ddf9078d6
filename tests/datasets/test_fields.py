"""``fields`` renames an example's fields the same way in every format: the probe's name -> the data's column."""

from __future__ import annotations

from pathlib import Path

from insideLLMs.datasets import PromptSet
from support.cli import write_jsonl

ROWS = [{"key": "k1", "question": "Capital of France?", "gold": "Paris", "prompt": "an old column"}]
FIELDS = {"prompt": "question", "answer": "gold", "reference": "gold"}
RENAMED = {"key": "k1", "prompt": "Capital of France?", "answer": "Paris", "reference": "Paris"}


def test_jsonl_csv_and_inline_rename_alike(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "qa.jsonl", ROWS)
    (tmp_path / "qa.csv").write_text("key,question,gold,prompt\nk1,Capital of France?,Paris,an old column\n",
                                     encoding="utf-8")
    sets = [
        PromptSet.from_jsonl("qa.jsonl", base_dir=tmp_path, id_field="key", fields=FIELDS),
        PromptSet.from_csv("qa.csv", base_dir=tmp_path, id_field="key", fields=FIELDS),
        PromptSet.from_list(ROWS, id_field="key", fields=FIELDS),
    ]
    for prompt_set in sets:  # a named field wins over a column of its name; one column may feed two fields
        assert [(e.id, e.data) for e in prompt_set] == [("k1", RENAMED)]
    assert len({s.hash for s in sets}) == 1
    assert list(sets[0].examples[0].data) == ["key", "prompt", "answer", "reference"]  # the row's column order


def test_without_fields_nothing_changes_and_csv_columns_is_the_older_name(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "qa.jsonl", ROWS)
    assert PromptSet.from_jsonl("qa.jsonl", base_dir=tmp_path, fields={}).hash == PromptSet.from_list(ROWS).hash
    (tmp_path / "qa.csv").write_text("question,gold\nQ,A\n", encoding="utf-8")
    by_columns = PromptSet.from_csv("qa.csv", base_dir=tmp_path, columns={"prompt": "question"})
    by_fields = PromptSet.from_csv("qa.csv", base_dir=tmp_path, fields={"prompt": "question"})
    assert by_columns.examples == by_fields.examples and by_fields.examples[0].data == {"prompt": "Q", "gold": "A"}


def test_a_row_without_the_column_keeps_what_it_has() -> None:
    prompt_set = PromptSet.from_list([{"q": "a"}, {"other": "b"}, "plain text"], fields={"prompt": "q"})
    assert [e.data for e in prompt_set] == [{"prompt": "a"}, {"other": "b"}, {"prompt": "plain text"}]
