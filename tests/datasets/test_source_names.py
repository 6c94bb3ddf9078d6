"""How a prompt set names its file in the run directory: never by a path of this machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from insideLLMs.datasets import PromptSet
from insideLLMs.probes import get_probe
from support.cli import qa_rows, run_cli, write_jsonl


def test_files_are_named_relative_to_their_base_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_jsonl(tmp_path / "project/data/qa.jsonl", qa_rows(2))
    write_jsonl(tmp_path / "shared/qa.jsonl", qa_rows(2))
    (tmp_path / "project/data/qa.csv").write_text("prompt,answer\nhi,1\n", encoding="utf-8")
    project = tmp_path / "project"
    assert PromptSet.from_jsonl("./data/qa.jsonl", base_dir=project).source == "data/qa.jsonl"
    assert PromptSet.from_jsonl(project / "data/qa.jsonl", base_dir=project).source == "data/qa.jsonl"
    assert PromptSet.from_csv("data/qa.csv", base_dir=project).source == "data/qa.csv"
    assert PromptSet.from_jsonl("../shared/qa.jsonl", base_dir=project).source == "../shared/qa.jsonl"
    assert PromptSet.from_jsonl(tmp_path / "shared/qa.jsonl", base_dir=project).source == "qa.jsonl"
    monkeypatch.chdir(project)  # without base_dir: the working folder
    assert PromptSet.from_jsonl(project / "data/qa.jsonl").source == "data/qa.jsonl"
    assert PromptSet.from_jsonl("data/qa.jsonl").source == "data/qa.jsonl"


def test_a_bundled_set_is_named_by_package_resource() -> None:
    prompt_set = get_probe("factuality").load_default_dataset()
    assert prompt_set.source == "insideLLMs:data/factuality.jsonl" and len(prompt_set) > 0


@pytest.mark.slow
def test_a_local_hf_folder_is_named_relative_to_the_config(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets", reason="the hf extra is not installed")
    rows = [{"id": f"x{i}", "prompt": f"{i}+{i}?", "answer": str(2 * i)} for i in range(3)]
    datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "project/qa"))
    assert PromptSet.from_hf(str(tmp_path / "project/qa"), base_dir=tmp_path / "project").source == "hf:qa:test"
    assert PromptSet.from_hf(str(tmp_path / "project/qa")).source == "hf:qa:test"  # outside the working folder
    (tmp_path / "project/eval.yaml").write_text(
        "model: {type: dummy}\nprobe: {type: factuality}\ndataset: {format: hf, name: qa, split: test}\n", encoding="utf-8")
    result = run_cli("run", "project/eval.yaml", "--no-track", "--run-dir", "out", cwd=tmp_path, env={"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    (dataset,) = json.loads((tmp_path / "out/manifest.json").read_text())["datasets"]
    assert (dataset["name"], dataset["source"], dataset["size"]) == ("qa", "hf:qa:test", 3)
