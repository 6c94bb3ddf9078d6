"""Running the real ``insidellms`` command in a subprocess, and writing configs and prompt sets.

Under mutation testing (``make mutate``) ``run_cli`` runs the command in the test process instead
(``CLI_IN_PROCESS``): the same ``main()``, arguments, environment and working folder, its output captured and
its exit code kept, so a mutant is killed by a CLI test in a tenth of the time. mutmut runs every test once
without a mutant before it starts, so a test this way of running breaks stops ``make mutate`` at once.
"""

from __future__ import annotations

import json
import os
import signal
import contextlib
import io
import subprocess
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

INSIDELLMS = str(Path(sys.executable).parent / "insidellms")
#: set by tests/support/mutation_testing.py under mutmut (or by hand: INSIDELLMS_TEST_CLI_IN_PROCESS=1)
CLI_IN_PROCESS_ENV = "INSIDELLMS_TEST_CLI_IN_PROCESS"


def with_pythonpath(path: Path) -> str:
    """``path`` in front of the current PYTHONPATH (kept: it may point at the code under test)."""
    return os.pathsep.join(p for p in (str(path), os.environ.get("PYTHONPATH", "")) if p)


def sigint_as_in_a_terminal() -> None:
    """``preexec_fn`` for a child that a test will Ctrl-C: a shell starts background jobs with SIGINT ignored, and a
    child would inherit that (so would the pytest that a script starts with ``&``)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "160", **(env or {})}
    if os.environ.get(CLI_IN_PROCESS_ENV) == "1":
        return _run_in_process(list(args), cwd, full_env)
    return subprocess.run(
        [INSIDELLMS, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )


def _run_in_process(args: list[str], cwd: Path | None, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``insidellms *args`` as ``main()`` in this process: what it prints, and its exit code (an uncaught
    exception prints its traceback and exits 1, as Python does). ``PYTHONPATH`` folders are put on ``sys.path``
    and what is imported from them is forgotten after; environment, folder, argv, signal handlers and GC
    thresholds are put back."""
    import gc
    import importlib
    import signal

    from insideLLMs.cli.main import main

    extra_paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p not in sys.path]
    saved = (dict(os.environ), os.getcwd(), sys.argv, gc.get_threshold(),
             {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}, list(sys.path),
             sys.dont_write_bytecode, set(sys.modules))
    sys.path[:0] = extra_paths
    sys.dont_write_bytecode = bool(env.get("PYTHONDONTWRITEBYTECODE"))
    importlib.invalidate_caches()
    out, err = (io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True) for _ in range(2))
    code: int = 0
    os.environ.clear()
    os.environ.update(env)
    try:
        if cwd is not None:
            os.chdir(cwd)
        sys.argv = [INSIDELLMS, *args]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.resetwarnings()  # a fresh process's filters, and every warning shown again
            warnings.simplefilter("default")
            try:
                main()
            except SystemExit as exc:
                if isinstance(exc.code, int) or exc.code is None:
                    code = exc.code or 0
                else:
                    print(exc.code, file=sys.stderr)
                    code = 1
            except Exception:
                traceback.print_exc()
                code = 1
    finally:
        environ, folder, sys.argv, threshold, handlers, sys.path[:], sys.dont_write_bytecode, modules = saved
        for name in set(sys.modules) - modules:
            where = getattr(sys.modules[name], "__file__", None) or ""
            if any(where.startswith(p) for p in extra_paths):
                del sys.modules[name]
        os.environ.clear()
        os.environ.update(environ)
        os.chdir(folder)
        gc.set_threshold(*threshold)
        for number, handler in handlers.items():
            signal.signal(number, handler)
    return subprocess.CompletedProcess([INSIDELLMS, *args], code, _as_read(out), _as_read(err))


def _as_read(stream: io.TextIOWrapper) -> str:
    """What ``subprocess.run(text=True)`` reads from a stream: UTF-8, universal newlines."""
    stream.flush()
    data = stream.buffer.getvalue().decode("utf-8")  # type: ignore[attr-defined]
    return data.replace("\r\n", "\n").replace("\r", "\n")


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
