"""Under mutmut (``make mutate``), CLI subprocesses that tests start must run the mutated code too.

mutmut imports ``mutants/src`` in the test process only; a child ``insidellms`` would import the clean code and no
mutant could ever fail a CLI test. Here ``run_cli`` runs the command in the test process (tests/support/cli.py,
``CLI_IN_PROCESS_ENV``), about four times as fast as a child process. Tests that start ``insidellms`` themselves
(to interrupt it, say) still start a child: children get ``mutants/src`` first on PYTHONPATH, and a
``sitecustomize`` that, while mutmut maps tests to functions ("stats"), writes the functions the child reached to a
file the test process reads after each test. Outside mutmut this plugin does nothing.
"""

from __future__ import annotations

import gc
import os
import tempfile
from pathlib import Path

import pytest

from support.cli import CLI_IN_PROCESS_ENV

_CHILD_HOOK = Path(__file__).parent / "mutmut_children"
HITS_DIR_ENV = "INSIDELLMS_MUTMUT_HITS"


def _under_mutmut() -> bool:
    return Path.cwd().name == "mutants" and (Path.cwd() / "src" / "insideLLMs").is_dir()


#: seconds a test may take under mutmut (pytest-timeout): mutmut stops a child only after so much CPU time, so a
#: mutant that leaves a run waiting forever (a worker never woken) would otherwise stall its child for good
TEST_TIMEOUT_S = "60"


@pytest.hookimpl(tryfirst=True)  # before pytest-timeout reads PYTEST_TIMEOUT
def pytest_configure(config: pytest.Config) -> None:
    if not _under_mutmut():
        return
    os.environ.setdefault("PYTEST_TIMEOUT", TEST_TIMEOUT_S)
    paths = [str(_CHILD_HOOK), str(Path.cwd() / "src"), os.environ.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    os.environ.setdefault(HITS_DIR_ENV, tempfile.mkdtemp(prefix="insidellms-mutmut-hits-"))
    os.environ[CLI_IN_PROCESS_ENV] = "1"


def pytest_unconfigure(config: pytest.Config) -> None:
    """mutmut forks a child per mutant from the process that ran every test; pytest ends each child's run with
    full garbage collections over that whole heap. Frozen objects are skipped: 0.45 s → 0.25 s a child, the figure
    docs/testing.md (Mutation testing) gives."""
    if _under_mutmut():
        gc.freeze()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    hits_dir = os.environ.get(HITS_DIR_ENV)
    if not hits_dir or not Path(hits_dir).is_dir():
        return
    from mutmut.stats import record_trampoline_hit

    for hits_file in Path(hits_dir).glob("hits-*.txt"):
        for name in hits_file.read_text(encoding="utf-8").split():
            record_trampoline_hit(name)
        hits_file.unlink()
