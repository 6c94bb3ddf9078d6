"""Tracking never writes into the user's home directory: a tracked `insidellms run` to a live MLflow
server and to W&B offline, with HOME an empty folder and no tool's config dirs set, leaves HOME empty."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from insideLLMs.tracking.store import read_journal
from insideLLMs.tracking.delivery import DeliveryMark
from support.cli import INSIDELLMS, dummy_config, qa_rows, write_config, write_jsonl

pytestmark = pytest.mark.slow

# every variable that would move a tool's files out of HOME (our code must not rely on them)
_MOVERS = ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "MLFLOW_DISABLE_TELEMETRY",
           "DO_NOT_TRACK", "WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR")


def bare_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _MOVERS and not k.startswith("WANDB_")}
    return {**env, "HOME": str(home), "NO_COLOR": "1", **extra}


def tracked_project(root: Path, tracking: dict[str, Any]) -> Path:
    write_jsonl(root / "data.jsonl", qa_rows(20))
    return write_config(root / "eval.yaml", dummy_config(tracking={"enabled": True, **tracking}))


def delivered_everything(root: Path, sink: str) -> None:
    [folder] = [p for p in (root / "tracking_logs").iterdir() if p.is_dir()]
    mark = DeliveryMark.load(folder, sink)
    assert mark is not None and mark.delivered_seq == read_journal(folder).last_seq, mark


def test_mlflow_leaves_home_untouched(tmp_path: Path, mlflow_server: Any) -> None:
    pytest.importorskip("mlflow")
    home = tmp_path / "home"
    home.mkdir()
    cfg = tracked_project(tmp_path / "proj", {"backend": "mlflow", "tracking_uri": mlflow_server.url,
                                              "experiment_name": "home-check", "flush_timeout_s": 120})
    result = subprocess_run(cfg, bare_env(home))
    assert result.returncode == 0, result.stderr
    delivered_everything(tmp_path / "proj", "mlflow")
    assert sorted(p.relative_to(home).as_posix() for p in home.rglob("*")) == []


def test_wandb_offline_leaves_home_untouched(tmp_path: Path) -> None:
    pytest.importorskip("wandb")
    home = tmp_path / "home"
    home.mkdir()
    cfg = tracked_project(tmp_path / "proj", {"backend": "wandb", "project": "home-check", "mode": "offline",
                                              "flush_timeout_s": 120})
    result = subprocess_run(cfg, bare_env(home, WANDB_SILENT="true"))
    assert result.returncode == 0, result.stderr
    delivered_everything(tmp_path / "proj", "wandb")
    assert sorted(p.relative_to(home).as_posix() for p in home.rglob("*")) == []


def subprocess_run(cfg: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`insidellms run` with exactly ``env`` (run_cli would add this process's environment back)."""
    return subprocess.run([INSIDELLMS, "run", str(cfg), "--run-dir", "out", "--no-progress"], cwd=cfg.parent,
                          env=env, capture_output=True, text=True, timeout=300)
