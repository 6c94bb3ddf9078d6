"""One style for every mistake, whatever the command: one ``error: ...`` line on stderr, exit 1, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.cli import run_cli

CASES = {
    "unknown command": (["nope"], "error: No such command 'nope'. (see: insidellms --help)"),
    "unknown option": (["diff", "a", "b", "--nope"], "error: No such option '--nope'. Did you mean '--top'? "
                                                     "(see: insidellms diff --help)"),
    "missing argument": (["run"], "error: Missing argument 'CONFIG'. (see: insidellms run --help)"),
    "missing config": (["run", "nowhere.yaml"], "error: nowhere.yaml: config file not found"),
    "diff of no run": (["diff", "nope", "nope2"], "error: baseline nope: no such directory"),
    "report of no run": (["report", "nope"], "error: nope: no such run directory"),
    "tracking show of nothing": (["tracking", "show", "--dir", "nope"], None),
    "bad option value": (["run", "x.yaml", "--concurrency", "0"], "error: Invalid value for '--concurrency': 0 is "
                                                                  "not in the range x>=1. (see: insidellms run --help)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_mistake_is_one_error_line(tmp_path: Path, case: str) -> None:
    args, expected = CASES[case]
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr and "Usage:" not in result.stderr
    if expected is not None:
        assert lines[0] == expected
