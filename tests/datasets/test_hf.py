"""Hugging Face prompt sets: a local dataset folder loads; an unreachable hub is a clear error, never a hang."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from support.cli import run_cli

datasets = pytest.importorskip("datasets", reason="the hf extra is not installed")


@pytest.mark.slow
def test_local_hf_dataset_runs(tmp_path: Path) -> None:
    ds = datasets.Dataset.from_list([{"qid": f"x{i}", "question": f"{i}+{i}?", "gold": str(2 * i)} for i in range(5)])
    datasets.DatasetDict({"test": ds}).save_to_disk(str(tmp_path / "qa"))
    (tmp_path / "eval.yaml").write_text(
        "model: {type: dummy}\nprobe: {type: logic}\n"
        "dataset: {format: hf, name: qa, split: test, id_field: qid, columns: {prompt: question, answer: gold}}\n",
        encoding="utf-8",
    )
    result = run_cli("run", "eval.yaml", "--no-track", "--run-dir", "out", cwd=tmp_path, env={"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out/records.jsonl").read_text().count("\n") == 5
    from insideLLMs.datasets import PromptSet

    ps = PromptSet.from_hf(str(tmp_path / "qa"), split="test", id_field="qid", columns={"prompt": "question", "answer": "gold"})
    assert [e.id for e in ps] == [f"x{i}" for i in range(5)]
    assert ps.examples[2].data == {"qid": "x2", "prompt": "2+2?", "answer": "4"}


@pytest.mark.slow
def test_unreachable_hub_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "eval.yaml").write_text(
        "model: {type: dummy}\nprobe: {type: logic}\ndataset: {format: hf, name: nobody/not-cached-anywhere, split: test}\n",
        encoding="utf-8",
    )
    started = time.monotonic()
    result = run_cli("run", "eval.yaml", "--no-track", cwd=tmp_path,
                     env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf-home")})
    assert time.monotonic() - started < 60
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    line = result.stderr.strip()
    assert line.startswith("error: hf:nobody/not-cached-anywhere:test: cannot load: it is not in the local cache (HF_HUB_OFFLINE=1)")


def test_a_subset_of_a_local_dataset_its_limit_and_its_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder of data files with configs (subsets) in its README, as on the hub; ``id`` is the default id field."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    folder = tmp_path / "sets" / "qa"
    folder.mkdir(parents=True)
    for subset in ("easy", "hard"):
        rows = "".join(f"{subset}{i},{subset} question {i},{i}\n" for i in range(4))
        (folder / f"{subset}.csv").write_text("id,prompt,answer\n" + rows, encoding="utf-8")
    (folder / "README.md").write_text(
        "---\nconfigs:\n"
        "- config_name: easy\n  data_files:\n  - split: test\n    path: easy.csv\n"
        "- config_name: hard\n  data_files:\n  - split: test\n    path: hard.csv\n---\n", encoding="utf-8")
    from insideLLMs.datasets import PromptSet

    hard = PromptSet.from_hf("sets/qa", subset="hard", limit=3, base_dir=tmp_path)
    assert [e.id for e in hard] == ["hard0", "hard1", "hard2"]
    assert hard.examples[1].data["prompt"] == "hard question 1"
    assert hard.name == "qa" and hard.source == "hf:sets/qa/hard:test"
    easy = PromptSet.from_hf("sets/qa", subset="easy", base_dir=tmp_path)
    assert [e.id for e in easy] == ["easy0", "easy1", "easy2", "easy3"] and easy.source == "hf:sets/qa/easy:test"


def test_a_saved_dataset_by_the_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Split ``test``, ids from ``id``, named by its folder relative to the working folder, every column kept."""
    rows = [{"id": f"x{i}", "prompt": f"{i}+{i}?", "answer": str(2 * i)} for i in range(3)]
    splits = {"test": datasets.Dataset.from_list(rows), "train": datasets.Dataset.from_list(rows[:1])}
    datasets.DatasetDict(splits).save_to_disk(str(tmp_path / "sets/qa"))
    monkeypatch.chdir(tmp_path)
    from insideLLMs.datasets import PromptSet

    ps = PromptSet.from_hf("sets/qa")
    assert (ps.name, ps.source, len(ps)) == ("qa", "hf:sets/qa:test", 3)
    assert [(e.id, e.data) for e in ps] == [(f"x{i}", row) for i, row in enumerate(rows)]
    train = PromptSet.from_hf("qa", split="train", base_dir="sets")
    assert (train.name, train.source, [e.id for e in train]) == ("qa", "hf:qa:train", ["x0"])
    datasets.DatasetDict(splits).save_to_disk(str(tmp_path / "data/sets/qa"))
    nested = PromptSet.from_hf("data/sets/qa")
    assert (nested.name, nested.source) == ("qa", "hf:data/sets/qa:test")


def test_a_split_saved_with_no_rows_is_named_and_the_other_splits_still_load(tmp_path: Path) -> None:
    """datasets itself fails on a saved split with no rows (IndexError), even when another split is asked for."""
    from insideLLMs.datasets import DatasetError, PromptSet

    rows = [{"id": "x0", "prompt": "0+0?"}]
    splits = {"test": datasets.Dataset.from_list([]), "train": datasets.Dataset.from_list(rows)}
    datasets.DatasetDict(splits).save_to_disk(str(tmp_path / "qa"))
    assert [e.id for e in PromptSet.from_hf(str(tmp_path / "qa"), split="train")] == ["x0"]
    with pytest.raises(DatasetError) as caught:
        PromptSet.from_hf(str(tmp_path / "qa"))
    assert str(caught.value) == f"hf:{tmp_path}/qa:test: the dataset split holds no rows"
    with pytest.raises(DatasetError) as caught:
        PromptSet.from_hf(str(tmp_path / "qa"), split="dev")
    assert str(caught.value) == f"hf:{tmp_path}/qa:dev: no split 'dev'; the dataset has: test, train"


@pytest.mark.slow
def test_a_run_of_an_empty_split_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    splits = {"test": datasets.Dataset.from_list([]), "train": datasets.Dataset.from_list([{"id": "x0", "prompt": "0"}])}
    datasets.DatasetDict(splits).save_to_disk(str(tmp_path / "qa"))
    (tmp_path / "eval.yaml").write_text("model: {type: dummy}\nprobe: {type: logic}\ndataset: {format: hf, name: qa}\n",
                                        encoding="utf-8")
    result = run_cli("run", "eval.yaml", "--no-track", "--run-dir", "out", cwd=tmp_path, env={"HF_HUB_OFFLINE": "1"})
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "error: hf:qa:test: the dataset split holds no rows (dataset at eval.yaml:3)\n"
    assert not (tmp_path / "out").exists()


def test_a_row_whose_id_is_not_text_or_a_number_is_named_by_its_row(tmp_path: Path) -> None:
    from insideLLMs.datasets import DatasetError, PromptSet

    datasets.Dataset.from_list([{"id": ["x0"], "prompt": "0+0?"}]).save_to_disk(str(tmp_path / "one"))
    with pytest.raises(DatasetError) as caught:
        PromptSet.from_hf(str(tmp_path / "one"))
    assert str(caught.value) == "hf:one:test: row 0: field 'id' must be a string or an integer"


def test_a_saved_dataset_without_splits_is_the_split_asked_for(tmp_path: Path) -> None:
    from insideLLMs.datasets import PromptSet

    datasets.Dataset.from_list([{"id": "x0", "prompt": "0+0?"}]).save_to_disk(str(tmp_path / "one"))
    ps = PromptSet.from_hf(str(tmp_path / "one"), split="dev")
    assert (ps.source, [(e.id, e.data) for e in ps]) == ("hf:one:dev", [("x0", {"id": "x0", "prompt": "0+0?"})])


def test_a_hub_id_not_in_the_cache_names_its_subset_and_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run with HF_HUB_OFFLINE=1 (tests/conftest.py): a hub id must come from the local cache."""
    monkeypatch.chdir(tmp_path)
    from insideLLMs.datasets import DatasetError, PromptSet

    with pytest.raises(DatasetError) as caught:
        PromptSet.from_hf("nobody/not-cached", subset="easy", split="dev")
    assert str(caught.value) == (
        "hf:nobody/not-cached/easy:dev: cannot load: it is not in the local cache (HF_HUB_OFFLINE=1) (ConnectionError)")


def test_renamed_columns_another_id_field_and_a_limit(tmp_path: Path) -> None:
    """``fields`` (field -> column) wins over the older ``columns``; rows with no id field are numbered."""
    rows = [{"qid": f"q{i}", "question": f"{i}?", "gold": str(i)} for i in range(4)]
    datasets.DatasetDict({"dev": datasets.Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "qa"))
    from insideLLMs.datasets import PromptSet

    ps = PromptSet.from_hf("qa", split="dev", id_field="qid", limit=2, base_dir=tmp_path,
                           columns={"prompt": "gold"}, fields={"prompt": "question", "answer": "gold"})
    assert [(e.id, e.data) for e in ps] == [("q0", {"qid": "q0", "prompt": "0?", "answer": "0"}),
                                          ("q1", {"qid": "q1", "prompt": "1?", "answer": "1"})]
    by_columns = PromptSet.from_hf("qa", split="dev", base_dir=tmp_path, columns={"prompt": "question"})
    assert [e.id for e in by_columns] == ["0", "1", "2", "3"]
    assert by_columns.examples[3].data == {"qid": "q3", "prompt": "3?", "gold": "3"}
    assert by_columns.source == "hf:qa:dev" and by_columns.hash != ps.hash

