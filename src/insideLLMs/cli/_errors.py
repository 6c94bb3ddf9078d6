"""How the CLI shows errors and warnings: the one mapping from an ``InsideLLMsError`` to a line and an exit code."""

from __future__ import annotations

from typing import Any

import click

from insideLLMs.errors import InsideLLMsError


class ErrorExit(click.ClickException):
    """An ``InsideLLMsError`` leaving a command: ``error: <message>`` on stderr, its ``exit_code``."""

    def __init__(self, error: InsideLLMsError) -> None:
        super().__init__(str(error))
        self.exit_code = error.exit_code

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class Command(click.Command):
    """A command whose ``InsideLLMsError`` becomes one line and an exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InsideLLMsError as exc:
            raise ErrorExit(exc) from None


class Group(click.Group):
    """A command group whose subcommands map errors like ``Command``."""

    command_class = Command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InsideLLMsError as exc:
            raise ErrorExit(exc) from None


def warn(message: str) -> None:
    """One ``! message`` line on stderr: something went wrong that does not stop the command."""
    click.echo(f"! {message}", err=True)
