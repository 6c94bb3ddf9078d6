"""The ``insidellms`` command. Subcommands load lazily so ``insidellms --help`` stays fast."""

from __future__ import annotations

import gc
import importlib
import sys

import click

from insideLLMs.cli._errors import Group, error_exit

from insideLLMs import __version__

# name -> ("module:attribute", one-line help shown by --help without importing the module)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("insideLLMs.cli.run:run", "Run one model × one probe from a config file."),
    "harness": ("insideLLMs.cli.run:harness", "Run a grid of models × probes from a config file."),
    "merge": ("insideLLMs.cli.merge:merge", "Merge the shards of a run (run/harness --shard I/N) into its run directory."),
    "quicktest": ("insideLLMs.cli.run:quicktest", "Send one prompt to a model and print the answer."),
    "init": ("insideLLMs.cli.project:init", "Write a starter config and prompt set."),
    "list": ("insideLLMs.cli.project:list_", "List built-in models or probes."),
    "validate": ("insideLLMs.cli.project:validate", "Check a config file without running it."),
    "diff": ("insideLLMs.cli.diff:diff", "Compare two run directories; gate CI on changes or regressions."),
    "judge-agreement": ("insideLLMs.cli.judge:judge_agreement",
                        "Agreement (accuracy, Cohen's kappa) of a run's LLM judge with human labels."),
    "report": ("insideLLMs.cli.report:report", "Rebuild summary.json and report.html of a run directory."),
    "tracking": ("insideLLMs.cli.tracking:tracking", "List, show, compare, sync and push tracked runs."),
}


class LazyGroup(Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, _, attr = COMMANDS[cmd_name][0].partition(":")
        return getattr(importlib.import_module(module_name), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_) for name, (_, help_) in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="insidellms")
def cli() -> None:
    """insideLLMs: probe LLMs, record deterministic run directories, diff them in CI, track runs."""


#: Cyclic-GC thresholds for the CLI process. At CPython's default (700, 10, 10) a run with many requests
#: in flight keeps re-scanning the objects that outlive them; collecting less often keeps
#: `insidellms run` within 1.25x the floor client at concurrency 256 (bench/README.md, "GC thresholds").
GC_THRESHOLDS = (20_000, 50, 100)


def main() -> None:
    """Entry point. Usage errors exit 1 (click's default 2 is ``diff``'s "gate failed")."""
    from insideLLMs.errors import EXIT_INTERRUPTED

    gc.set_threshold(*GC_THRESHOLDS)
    try:
        code = cli.main(prog_name="insidellms", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        shown = error_exit(exc)
        shown.show()
        sys.exit(shown.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    sys.exit(main())
