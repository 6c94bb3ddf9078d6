"""Custom probes and models: `pkg.module:Class` in YAML, and plugins found through entry points."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from support.cli import run_cli, with_pythonpath

PLUGIN = '''
from insideLLMs.probes.base import Probe, Verdict
from insideLLMs.models.base import Completion, Model


class ShoutProbe(Probe):
    """Passes when the answer is in capitals."""

    name = "shout"

    def build(self, example):
        return [{"role": "user", "content": example.data["prompt"].upper()}]

    def score(self, example, completion):
        loud = completion.text.isupper()
        return Verdict({"loud": loud, "length": len(completion.text)}, loud)


class ReverseModel(Model):
    """Answers with the prompt reversed."""

    provider = "reverse"

    def __init__(self, model_name: str = "reverse"):
        super().__init__(model_name)

    async def agenerate(self, messages, **generation):
        return Completion(text=messages[-1]["content"][::-1])
'''


def _install_plugin(root: Path) -> dict[str, str]:
    (root / "shout_plugin").mkdir(parents=True)
    (root / "shout_plugin" / "__init__.py").write_text(PLUGIN, encoding="utf-8")
    dist = root / "shout_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: shout-plugin\nVersion: 0.1\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text(
        "[insidellms.probes]\nshout = shout_plugin:ShoutProbe\n\n[insidellms.models]\nreverse = shout_plugin:ReverseModel\n",
        encoding="utf-8",
    )
    return {"PYTHONPATH": with_pythonpath(root)}


@pytest.mark.slow
def test_entry_point_plugins_are_listed_and_run(tmp_path: Path) -> None:
    env = _install_plugin(tmp_path / "site")
    listed = run_cli("list", "probes", env=env)
    assert listed.returncode == 0
    assert any(line.startswith("shout ") and "Passes when the answer is in capitals." in line for line in listed.stdout.splitlines())
    assert "reverse" in run_cli("list", "models", env=env).stdout
    (tmp_path / "eval.yaml").write_text(
        "model: {type: reverse}\nprobe: {type: shout}\ndataset: {format: inline, items: ['abc', 'Hi there']}\n", encoding="utf-8"
    )
    result = run_cli("run", "eval.yaml", "--run-dir", "out", "--no-track", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    records = [orjson.loads(line) for line in (tmp_path / "out/records.jsonl").read_bytes().splitlines()]
    assert [(r["output"], r["passed"], r["scores"]["length"]) for r in records] == [("CBA", True, 3), ("EREHT IH", True, 8)]
    assert records[0]["model"]["provider"] == "reverse" and records[0]["probe"]["id"] == "shout"


def test_module_colon_class_in_yaml(tmp_path: Path) -> None:
    env = _install_plugin(tmp_path / "site")
    (tmp_path / "eval.yaml").write_text(
        "model: {type: 'shout_plugin:ReverseModel', args: {model_name: rev}}\n"
        "probe: {type: 'shout_plugin:ShoutProbe'}\ndataset: {format: inline, items: ['ok']}\n",
        encoding="utf-8",
    )
    result = run_cli("run", "eval.yaml", "--run-dir", "out", "--no-track", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert b'"output":"KO"' in (tmp_path / "out/records.jsonl").read_bytes()
    missing = run_cli("validate", "eval.yaml", cwd=tmp_path)  # without the plugin on the path
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: eval.yaml:1: cannot import model type 'shout_plugin:ReverseModel': No module named 'shout_plugin'"


@pytest.mark.slow
def test_every_built_in_type_is_listed_with_what_it_is() -> None:
    """A class without a docstring of its own is described by its module's first line, never an error."""
    for what, names in (("probes", {"bias", "code", "factuality", "instruction_following", "jailbreak", "logic"}),
                        ("models", {"anthropic", "dummy", "llamacpp", "openai"})):
        result = run_cli("list", what)
        assert result.returncode == 0
        listed = dict(line.split(None, 1) for line in result.stdout.splitlines())
        assert set(listed) >= names
        assert not [n for n in names if not listed[n].strip() or "unavailable" in listed[n]], listed
    assert "deterministic offline model" in run_cli("list", "models").stdout


@pytest.mark.slow
def test_a_custom_type_that_is_not_a_probe_or_model_is_one_line(tmp_path: Path) -> None:
    cases = {
        "model: {type: dummy}\nprobe: {type: 'json:JSONDecoder'}\n": "error: eval.yaml:2: probe type "
        "'json:JSONDecoder' is the class json.decoder.JSONDecoder, not a probe: a custom probe type must subclass "
        "insideLLMs.probes.base.Probe",
        "model: {type: dummy}\nprobe: {type: 'json:dumps'}\n": "error: eval.yaml:2: probe type 'json:dumps' is "
        "the function json.dumps, not a probe",
        "probe: {type: logic}\nmodel: {type: 'collections:OrderedDict'}\n": "error: eval.yaml:2: model type "
        "'collections:OrderedDict' is the class collections.OrderedDict, not a model: a custom model type must "
        "subclass insideLLMs.models.base.Model",
    }
    for config, expected in cases.items():
        (tmp_path / "eval.yaml").write_text(config, encoding="utf-8")
        for command in (["run", "eval.yaml", "--no-track", "--run-dir", "out"], ["validate", "eval.yaml"]):
            result = run_cli(*command, cwd=tmp_path)
            assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
            assert result.stderr.startswith(expected) and len(result.stderr.strip().splitlines()) == 1, result.stderr
            assert not (tmp_path / "out").exists()
