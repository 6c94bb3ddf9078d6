"""How the CLI shows errors and warnings: the one mapping from an ``InsideLLMsError`` to a line and an exit code."""

from __future__ import annotations

from typing import Any

import click

from insideLLMs.errors import EXIT_USER_ERROR, InsideLLMsError


class ErrorExit(click.ClickException):
    """An error leaving a command: ``error: <message>`` on stderr (one line, the one style), and an exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def error_exit(exc: InsideLLMsError | click.ClickException) -> ErrorExit:
    """The one mapping from an error to what the user sees: a line and an exit code (a usage mistake exits
    1, not click's 2, which is ``diff``'s "gate failed")."""
    if isinstance(exc, ErrorExit):
        return exc
    if isinstance(exc, InsideLLMsError):
        return ErrorExit(str(exc), exc.exit_code)
    if isinstance(exc, click.UsageError):
        hint = f" (see: {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
        return ErrorExit(exc.format_message() + hint, EXIT_USER_ERROR)
    return ErrorExit(exc.format_message(), exc.exit_code)


class Command(click.Command):
    """A command whose errors become one line and an exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (InsideLLMsError, click.ClickException) as exc:
            raise error_exit(exc) from None


class Group(click.Group):
    """A command group whose subcommands (and their options) map errors like ``Command``."""

    command_class = Command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (InsideLLMsError, click.ClickException) as exc:
            raise error_exit(exc) from None


def warn(message: str) -> None:
    """One ``! message`` line on stderr: something went wrong that does not stop the command."""
    click.echo(f"! {message}", err=True)
