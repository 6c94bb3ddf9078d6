"""Running the real ``insidellms`` command in a subprocess, and writing configs and prompt sets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

INSIDELLMS = str(Path(sys.executable).parent / "insidellms")


def with_pythonpath(path: Path) -> str:
    """``path`` in front of the current PYTHONPATH (kept: it may point at the code under test)."""
    return os.pathsep.join(p for p in (str(path), os.environ.get("PYTHONPATH", "")) if p)


def sigint_as_in_a_terminal() -> None:
    """``preexec_fn`` for a child that a test will Ctrl-C: a shell starts background jobs with SIGINT ignored, and a
    child would inherit that (so would the pytest that a script starts with ``&``)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "160", **(env or {})}
    return subprocess.run(
        [INSIDELLMS, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def qa_rows(n: int) -> list[dict[str, Any]]:
    """Factuality-style rows: the dummy model echoes, so none pass unless canned answers are given."""
    return [{"id": f"q{i:05d}", "prompt": f"What is {i} plus {i}?", "answer": str(2 * i)} for i in range(n)]


def dummy_config(data: str = "data.jsonl", **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "model": {"type": "dummy", "args": {"model_name": "dummy"}},
        "probe": {"type": "factuality"},
        "dataset": {"format": "jsonl", "path": data},
        "generation": {"temperature": 0, "max_tokens": 64},
        "runner": {"concurrency": 8, "max_retries": 0},
    }
    config.update(overrides)
    return config


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_cli
