"""``${VAR}`` and ``${VAR:-default}`` references in a config: the environment wins, the default fills in,
and the resolved config keeps the reference (never the value)."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.cli import run_cli

CONFIG = ("model: {type: dummy, args: {model_name: '${INSIDELLMS_T_MODEL:-fallback-model}'}}\n"
          "probe: {type: logic}\nrunner: {concurrency: '${INSIDELLMS_T_CONC:-2}'}\n")


def _model_and_resolved(tmp_path: Path, env: dict[str, str]) -> tuple[str, str]:
    (tmp_path / "eval.yaml").write_text(CONFIG, encoding="utf-8")
    result = run_cli("run", "eval.yaml", "--run-dir", "out", "--no-track", "--max-examples", "1", "--overwrite",
                     cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    first = (tmp_path / "out" / "records.jsonl").read_text().splitlines()[0]
    model = first.split('"model":{"id":"', 1)[1].split('"', 1)[0]
    return model, (tmp_path / "out" / "config.resolved.yaml").read_text()


def test_a_set_variable_wins_over_its_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INSIDELLMS_T_MODEL", raising=False)
    model, resolved = _model_and_resolved(tmp_path, {"INSIDELLMS_T_MODEL": "from-env"})
    assert model == "from-env"
    assert "${INSIDELLMS_T_MODEL:-fallback-model}" in resolved and "from-env" not in resolved


def test_an_unset_variable_takes_its_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INSIDELLMS_T_MODEL", raising=False)
    model, _ = _model_and_resolved(tmp_path, {})
    assert model == "fallback-model"


def test_a_number_from_the_environment_takes_the_type_its_setting_needs(tmp_path: Path) -> None:
    (tmp_path / "eval.yaml").write_text(CONFIG, encoding="utf-8")
    ok = run_cli("validate", "eval.yaml", cwd=tmp_path, env={"INSIDELLMS_T_CONC": "16"})
    assert ok.returncode == 0, ok.stderr
    bad = run_cli("validate", "eval.yaml", cwd=tmp_path, env={"INSIDELLMS_T_CONC": "lots"})
    assert bad.returncode == 1
    assert bad.stderr.strip() == "error: eval.yaml:3: runner.concurrency: expected an integer, got a string ('lots')"


def test_an_empty_variable_takes_the_default_as_in_the_shell(tmp_path: Path) -> None:
    model, _ = _model_and_resolved(tmp_path, {"INSIDELLMS_T_MODEL": ""})
    assert model == "fallback-model"
