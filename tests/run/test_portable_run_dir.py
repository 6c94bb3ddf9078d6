"""The deterministic files of a run directory hold no machine path: two checkouts give the same bytes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import insideLLMs
from support.cli import qa_rows, run_cli, with_pythonpath, write_config, write_jsonl

DETERMINISTIC = ("records.jsonl", "manifest.json", "config.resolved.yaml")


def _checkout(root: Path) -> dict[str, str]:
    """A copy of the package under test and a project using it, as a second clone of a repo would be."""
    shutil.copytree(Path(insideLLMs.__file__).parent, root / "src/insideLLMs",
                    ignore=shutil.ignore_patterns("__pycache__"))
    project = root / "project"
    write_jsonl(project / "data/qa.jsonl", qa_rows(4))
    (project / "data/qa.csv").write_text("id,prompt,answer\nc1,What is 1 plus 1?,2\nc2,What is 2 plus 2?,4\n", encoding="utf-8")
    write_config(project / "eval.yaml", {
        "model": {"type": "dummy"},
        "probes": [
            {"type": "logic"},  # the bundled prompt set
            {"type": "factuality", "dataset": {"format": "jsonl", "path": "./data/qa.jsonl"}},
            {"type": "jailbreak", "dataset": {"format": "csv", "path": "data/../data/qa.csv"}},
        ],
        "runner": {"concurrency": 2, "max_examples": 3},
    })
    return {"PYTHONPATH": with_pythonpath(root / "src")}


def _files(run_dir: Path) -> dict[str, bytes]:
    out = {name: (run_dir / name).read_bytes() for name in DETERMINISTIC}
    summary = json.loads((run_dir / "summary.json").read_bytes())
    del summary["volatile"]
    out["summary.json minus volatile"] = json.dumps(summary, sort_keys=True).encode()
    return out


@pytest.mark.slow
def test_two_checkouts_in_different_folders_write_the_same_run_directory(tmp_path: Path) -> None:
    env_a = _checkout(tmp_path / "a")
    env_b = _checkout(tmp_path / "elsewhere/b")
    first = run_cli("harness", "eval.yaml", "--run-dir", "out", "--no-track", cwd=tmp_path / "a/project", env=env_a)
    assert first.returncode == 0, first.stderr
    second = run_cli("harness", "b/project/eval.yaml", "--run-dir", "b/project/out", "--no-track",
                     cwd=tmp_path / "elsewhere", env=env_b)
    assert second.returncode == 0, second.stderr
    a, b = tmp_path / "a/project/out", tmp_path / "elsewhere/b/project/out"
    assert _files(a) == _files(b)
    manifest = json.loads((a / "manifest.json").read_bytes())
    assert [(d["probe"], d["source"]) for d in manifest["datasets"]] == [
        ("logic", "insideLLMs:data/logic.jsonl"), ("factuality", "data/qa.jsonl"), ("jailbreak", "data/qa.csv"),
    ]
    assert manifest["run_id"] == json.loads((b / "manifest.json").read_bytes())["run_id"]
    for content in _files(a).values():
        assert str(tmp_path).encode() not in content
