"""``insidellms merge``: the partial run directories of ``--shard I/N`` joined into one run directory."""

from __future__ import annotations

from pathlib import Path

import click

from insideLLMs.cli._errors import Command


@click.command(cls=Command)
@click.argument("parts", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(path_type=Path),
    help="The run directory to write (the unsharded run's files, byte for byte).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing OUTPUT.")
def merge(parts: tuple[Path, ...], output: Path, overwrite: bool) -> None:
    """Merge the shards PART... of one run (from insidellms run/harness --shard I/N) into the run directory OUTPUT."""
    from insideLLMs.rundir import RunReader
    from insideLLMs.run import merge_shards

    try:
        out = merge_shards(parts, output, overwrite=overwrite)
    except OSError as exc:
        raise click.ClickException(f"{exc.filename or output}: cannot write ({exc.strerror})") from None
    manifest = RunReader(out).manifest or {}
    records = (manifest.get("counts") or {}).get("records", 0)
    click.echo(f"merged {len(parts)} shards of run {manifest.get('run_id')}: {records:,} records")
    click.echo(f"run directory: {out}")
