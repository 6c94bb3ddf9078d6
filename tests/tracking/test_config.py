"""The ``tracking:`` block is checked with the rest of the config: a tracking URI MLflow cannot use is one
line and exit 1 before any model is called, never a warning after the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from insideLLMs.tracking import get_tracker
from support.cli import run_cli


def _config(tmp_path: Path, server: Any, uri: str) -> None:
    (tmp_path / "eval.yaml").write_text(
        f"model: {{type: openai, args: {{model_name: m, base_url: '{server.openai_base_url}', api_key: k}}}}\n"
        "probe: {type: logic}\n"
        f"tracking:\n  backend: mlflow\n  tracking_uri: '{uri}'\n", encoding="utf-8")


@pytest.mark.parametrize(("uri", "problem"), [
    ("htp:/127.0.0.1:5000", "'htp:/127.0.0.1:5000': unsupported scheme 'htp'"),
    ("ftp://127.0.0.1/mlflow", "'ftp://127.0.0.1/mlflow': unsupported scheme 'ftp'"),
    ("not a uri", "'not a uri' is not a URI or a folder path"),
    ("http://", "'http://' names no host"),
])
def test_a_tracking_uri_mlflow_cannot_use_stops_the_run_before_any_model_call(
    tmp_path: Path, fake_llm_server: Any, uri: str, problem: str,
) -> None:
    _config(tmp_path, fake_llm_server, uri)
    for command in (["run", "eval.yaml", "--run-dir", "out"], ["validate", "eval.yaml"]):
        result = run_cli(*command, cwd=tmp_path)
        assert result.returncode == 1
        assert result.stderr.strip() == (
            f"error: eval.yaml:5: tracking.tracking_uri: {problem}; give http(s)://host:port, a database URI "
            "(sqlite:///mlflow.db, postgresql://...) or a local folder")
    assert fake_llm_server.stats.requests == 0
    assert not (tmp_path / "out").exists() and not (tmp_path / "tracking_logs").exists()


@pytest.mark.parametrize("uri", ["http://127.0.0.1:5000", "https://mlflow.example.com/prefix", "sqlite:///mlflow.db",
                                 "postgresql+psycopg2://u@db/mlflow", "file:///tmp/mlruns", "./mlruns", "databricks"])
def test_uris_mlflow_accepts_pass_validation(tmp_path: Path, fake_llm_server: Any, uri: str) -> None:
    _config(tmp_path, fake_llm_server, uri)
    result = run_cli("validate", "eval.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_get_tracker_rejects_a_bad_uri_at_once() -> None:
    with pytest.raises(TypeError, match="unsupported scheme 'htp'"):
        get_tracker("mlflow", tracking_uri="htp:/127.0.0.1:5000")
