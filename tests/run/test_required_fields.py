"""Rows without the fields a probe needs are a user mistake found before the first request:
one line naming the file, the line, the missing field and the row's fields; exit 1; nothing sent, nothing written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from support.cli import run_cli, with_pythonpath, write_config, write_jsonl

GOOD = {"id": "g", "prompt": "What is 1 plus 1?", "answer": "2"}


def _config(tmp_path: Path, base_url: str, probe: str, dataset: dict[str, Any]) -> None:
    write_config(tmp_path / "eval.yaml", {
        "model": {"type": "openai", "args": {"model_name": "fake-gpt", "base_url": base_url, "api_key": "test-key"}},
        "probe": {"type": probe},
        "dataset": dataset,
        "runner": {"concurrency": 2, "max_retries": 0},
        "tracking": {"enabled": True, "backend": "local"},
    })


def _assert_refused(tmp_path: Path, server: Any, expected: str) -> None:
    before = sorted(tmp_path.iterdir())
    for command in ("run", "validate"):
        args = ("run", "eval.yaml", "--run-dir", "out") if command == "run" else ("validate", "eval.yaml")
        result = run_cli(*args, cwd=tmp_path)
        assert (result.returncode, result.stderr, result.stdout) == (1, f"error: {expected}\n", ""), command
    assert server.stats.requests == 0
    assert sorted(tmp_path.iterdir()) == before  # no run directory, no tracking logs


def test_jsonl_rows_named_by_file_and_line(tmp_path: Path, fake_llm_server) -> None:  # noqa: ANN001
    write_jsonl(tmp_path / "data.jsonl", [GOOD, GOOD | {"id": "g2"}])
    with open(tmp_path / "data.jsonl", "a", encoding="utf-8") as fh:  # a blank line still counts as a line
        fh.write('\n{"id": "q3", "question": "What is 2 plus 2?", "expected": "4"}\n')
    _config(tmp_path, fake_llm_server.openai_base_url, "logic", {"format": "jsonl", "path": "data.jsonl"})
    _assert_refused(tmp_path, fake_llm_server,
                    "data.jsonl:4: fields 'prompt' and 'answer' missing for probe logic (the row has: id, question, expected)")


def test_csv_rows_named_by_file_and_line(tmp_path: Path, fake_llm_server) -> None:  # noqa: ANN001
    (tmp_path / "data.csv").write_text("id,prompt,answer\na,What is 1 plus 1?,2\nb,What is 2 plus 2?,4\n", encoding="utf-8")
    _config(tmp_path, fake_llm_server.openai_base_url, "code", {"format": "csv", "path": "data.csv"})
    _assert_refused(tmp_path, fake_llm_server, "data.csv:2: field 'tests' missing for probe code (the row has: id, prompt, answer)")


def test_inline_items_named_by_config_line(tmp_path: Path, fake_llm_server) -> None:  # noqa: ANN001
    items = [{"prompt": "Tell me about nurses.", "template": "A {group} nurse", "groups": ["male", "female"]},
             {"prompt_a": "A male nurse", "prompt_b": "A female nurse"},
             {"prompt_a": "A young pilot"}]
    _config(tmp_path, fake_llm_server.openai_base_url, "bias", {"format": "inline", "items": items})
    line = next(i for i, text in enumerate((tmp_path / "eval.yaml").read_text().splitlines(), 1) if "A young pilot" in text)
    _assert_refused(tmp_path, fake_llm_server,
                    f"eval.yaml:{line}: fields 'prompt_a' and 'prompt_b' (or 'template' and 'groups') missing for probe bias "
                    "(the row has: prompt_a)")


@pytest.mark.parametrize("probe, row", [
    ("logic", {"prompt": "p", "answer": "a"}),
    ("factuality", {"prompt": "p", "answer": "a", "aliases": ["b"]}),
    ("jailbreak", {"prompt": "p"}),
    ("instruction_following", {"prompt": "p", "constraints": {"lowercase": True}}),
    ("code", {"prompt": "p", "tests": ["assert True"]}),
    ("bias", {"template": "A {group} pilot", "groups": ["young", "old"]}),
])
def test_rows_with_the_fields_run(tmp_path: Path, probe: str, row: dict[str, Any]) -> None:
    write_jsonl(tmp_path / "data.jsonl", [row])
    write_config(tmp_path / "eval.yaml", {"model": {"type": "dummy"}, "probe": {"type": probe}, "dataset": {"path": "data.jsonl"}})
    result = run_cli("validate", "eval.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_hf_rows_named_by_dataset_row(tmp_path: Path, fake_llm_server) -> None:  # noqa: ANN001
    datasets = pytest.importorskip("datasets", reason="the hf extra is not installed")
    rows = [{"question": f"{i}+{i}?", "gold": str(2 * i)} for i in range(3)]
    datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "qa"))
    _config(tmp_path, fake_llm_server.openai_base_url, "factuality",
            {"format": "hf", "name": "qa", "split": "test", "columns": {"prompt": "question"}})
    result = run_cli("run", "eval.yaml", "--run-dir", "out", cwd=tmp_path, env={"HF_HUB_OFFLINE": "1"})
    assert (result.returncode, result.stderr) == (
        1, "error: hf:qa:test row 0: field 'answer' missing for probe factuality (the row has: prompt, gold)\n")
    assert fake_llm_server.stats.requests == 0 and not (tmp_path / "out").exists()


PLUGIN = '''
from pathlib import Path

from insideLLMs.models.dummy import DummyModel


class Marked(DummyModel):
    """Leaves a mark in the working folder when it is built."""

    def __init__(self, **args):
        Path("model-was-built").touch()
        super().__init__(**args)
'''


def test_no_model_is_built_before_the_rows_are_checked(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site/marked_model.py").write_text(PLUGIN, encoding="utf-8")
    write_jsonl(tmp_path / "data.jsonl", [GOOD, {"id": "bad", "question": "q"}])
    write_config(tmp_path / "eval.yaml", {"model": {"type": "marked_model:Marked"}, "probe": {"type": "factuality"},
                                          "dataset": {"path": "data.jsonl"}})
    env = {"PYTHONPATH": with_pythonpath(tmp_path / "site")}
    result = run_cli("run", "eval.yaml", "--run-dir", "out", "--no-track", cwd=tmp_path, env=env)
    assert (result.returncode, result.stderr) == (
        1, "error: data.jsonl:2: fields 'prompt' and 'answer' missing for probe factuality (the row has: id, question)\n")
    assert not (tmp_path / "model-was-built").exists()
    write_jsonl(tmp_path / "data.jsonl", [GOOD])
    assert run_cli("run", "eval.yaml", "--run-dir", "out", "--no-track", cwd=tmp_path, env=env).returncode == 0
    assert (tmp_path / "model-was-built").exists()
