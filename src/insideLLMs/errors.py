"""The one family of errors insideLLMs raises, and the exit code each means on the command line.

Every error of ours derives from ``InsideLLMsError``. ``UserError`` and its subclasses are a
user's mistake (a config key, a dataset line, a run directory): the CLI prints ``error: <message>``
(one line, no traceback) and exits 1. The CLI maps errors to exit codes in one place
(``insideLLMs.cli.main``) by reading ``exit_code``.
"""

from __future__ import annotations

EXIT_USER_ERROR = 1  # bad input, or a run that stopped early
EXIT_GATE_FAILED = 2  # diff: the gate failed
EXIT_EXAMPLE_ERRORS = 3  # run --fail-on-errors: the run finished but some examples errored
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
EXIT_TERMINATED = 143  # SIGTERM (128 + SIGTERM), as timeout, Kubernetes, Slurm and CI runners send


class Terminated(KeyboardInterrupt):
    """SIGTERM as a KeyboardInterrupt, so a run stops as Ctrl-C stops it: cleanly, resumable (the CLI
    raises it only where SIGINT has no handler to go through; see cli/run.py)."""


class InsideLLMsError(Exception):
    """Base of every error insideLLMs raises; ``str()`` is the message a user reads."""

    exit_code = EXIT_USER_ERROR


class UserError(InsideLLMsError, ValueError):
    """A user's mistake: printed as one line naming where it is, before any model is called."""


__all__ = [
    "EXIT_EXAMPLE_ERRORS",
    "EXIT_GATE_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_TERMINATED",
    "EXIT_USER_ERROR",
    "InsideLLMsError",
    "Terminated",
    "UserError",
]
