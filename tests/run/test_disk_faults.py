"""A run directory that cannot be written — before the run or in the middle of it — is one line and exit 1,
and what was written stays resumable."""

from __future__ import annotations

import resource
import subprocess
from pathlib import Path

import pytest

from support.cli import INSIDELLMS, dummy_config, qa_rows, run_cli, write_config, write_jsonl

N = 400


def _setup(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "data.jsonl", qa_rows(N))
    write_config(tmp_path / "eval.yaml", dummy_config())


def test_a_run_directory_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    _setup(tmp_path)
    (tmp_path / "taken").write_text("a file, not a folder\n")
    result = run_cli("run", "eval.yaml", "--run-dir", "taken/out", "--no-track", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == ("error: taken/out: cannot prepare the run directory (Not a directory); choose "
                                     "another --run-dir or fix its permissions")


def _limit_file_size() -> None:
    limit = 40_000  # bytes: records.jsonl outgrows it after ~100 of the 400 examples
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.slow
def test_a_disk_that_fills_up_mid_run_stops_it_resumably(tmp_path: Path) -> None:
    _setup(tmp_path)
    full = subprocess.run([INSIDELLMS, "run", "eval.yaml", "--run-dir", "out", "--no-track"], cwd=tmp_path,
                          capture_output=True, text=True, preexec_fn=_limit_file_size, timeout=120)
    assert full.returncode == 1, full.stdout
    assert "Traceback" not in full.stderr and len(full.stderr.strip().splitlines()) == 1, full.stderr
    assert full.stderr.startswith("error: ") and "cannot write (File too large); make room, then continue with --resume" \
        in full.stderr
    assert (tmp_path / "out" / ".incomplete").exists() and not (tmp_path / "out" / "manifest.json").exists()
    resumed = run_cli("run", "eval.yaml", "--run-dir", "out", "--resume", "--no-track", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert (tmp_path / "out" / "records.jsonl").read_bytes().count(b"\n") == N
    assert run_cli("run", "eval.yaml", "--run-dir", "whole", "--no-track", cwd=tmp_path).returncode == 0
    assert (tmp_path / "out" / "records.jsonl").read_bytes() == (tmp_path / "whole" / "records.jsonl").read_bytes()
