"""A probe whose scoring goes wrong costs that example a record, never the run."""

from __future__ import annotations

import json
from pathlib import Path

import orjson

from support.cli import run_cli, with_pythonpath, write_config

PLUGIN = '''
from insideLLMs.probes.base import Probe, Verdict


class Sloppy(Probe):
    """Forgets to return its verdict for some answers."""

    name = "sloppy"

    def score(self, example, completion):
        if completion.text == "none":
            return None
        if completion.text == "dict":
            return {"passed": True}
        if completion.text == "raise":
            raise KeyError("answer")
        return Verdict({"length": len(completion.text)}, True)
'''


def test_a_score_that_is_not_a_verdict_becomes_an_error_record(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site/sloppy_probe.py").write_text(PLUGIN, encoding="utf-8")
    write_config(tmp_path / "eval.yaml", {
        "model": {"type": "dummy"},
        "probe": {"type": "sloppy_probe:Sloppy"},
        "dataset": {"format": "inline", "items": ["fine", "none", "dict", "raise", "also fine"]},
        "runner": {"concurrency": 2},
    })
    env = {"PYTHONPATH": with_pythonpath(tmp_path / "site")}
    result = run_cli("run", "eval.yaml", "--run-dir", "out", "--no-track", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    records = [orjson.loads(line) for line in (tmp_path / "out/records.jsonl").read_bytes().splitlines()]
    assert [(r["output"], r["status"], r["passed"], r["scores"]) for r in records] == [
        ("fine", "success", True, {"length": 4}),
        ("none", "error", None, {}),
        ("dict", "error", None, {}),
        ("raise", "error", None, {}),
        ("also fine", "success", True, {"length": 9}),
    ]
    assert [r["error"] for r in records[1:4]] == [
        {"type": "ProbeError", "message": "probe 'sloppy' score() returned None, expected a Verdict"},
        {"type": "ProbeError", "message": "probe 'sloppy' score() returned {'passed': True} (dict), expected a Verdict"},
        {"type": "ProbeError", "message": "KeyError: 'answer'"},
    ]
    manifest = json.loads((tmp_path / "out/manifest.json").read_text())
    assert manifest["counts"] == {"records": 5, "by_status": {"error": 3, "success": 2}}
    failing = run_cli("run", "eval.yaml", "--run-dir", "out", "--overwrite", "--no-track", "--fail-on-errors", cwd=tmp_path, env=env)
    assert failing.returncode == 3 and "3 example(s) ended in an error" in failing.stderr
