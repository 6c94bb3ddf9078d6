"""How the CLI turns a user mistake into one line on stderr and exit code 1, without a traceback."""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_USER_ERROR = 1  # bad input, or a run that stopped early
EXIT_GATE_FAILED = 2  # diff: the gate failed
EXIT_EXAMPLE_ERRORS = 3  # run --fail-on-errors: the run finished but some examples errored
EXIT_INTERRUPTED = 130


class UserError(click.ClickException):
    """Printed as ``error: <message>`` and exit 1."""

    exit_code = EXIT_USER_ERROR

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def user_errors(*types: type[BaseException]) -> Callable[[F], F]:
    """Turn the listed exception types, raised inside a command, into ``UserError``."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except types as exc:
                raise UserError(str(exc)) from None

        return inner  # type: ignore[return-value]

    return wrap


def warn(message: str) -> None:
    click.echo(f"! {message}", err=True)


def exit_with(code: int) -> None:
    sys.exit(code)
