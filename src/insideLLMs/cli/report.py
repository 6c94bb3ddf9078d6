"""``insidellms report``: rebuild a run directory's summary.json and report.html from its records."""

from __future__ import annotations

from pathlib import Path

import click

from insideLLMs.cli._errors import Command


@click.command(cls=Command)
@click.argument("run_dir", type=click.Path(path_type=Path))
def report(run_dir: Path) -> None:
    """Rebuild summary.json and report.html of RUN_DIR from its records.jsonl and timings.jsonl."""
    from insideLLMs.report import rebuild_summary, write_report
    from insideLLMs.rundir import RunReader

    try:
        RunReader(run_dir)  # a clear error for a path that is not a run directory
        summary_path = rebuild_summary(run_dir)
        if summary_path is not None:
            click.echo(f"wrote {summary_path}")
        click.echo(f"wrote {write_report(run_dir)}")
    except OSError as exc:
        raise click.ClickException(f"{exc.filename or run_dir}: {exc.strerror}") from None
