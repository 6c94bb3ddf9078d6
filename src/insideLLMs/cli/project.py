"""``insidellms init`` (a starter project), ``list`` (what is built in) and ``validate`` (check a config)."""

from __future__ import annotations

from pathlib import Path
import click

from insideLLMs.cli._errors import Command

from insideLLMs.errors import UserError
from insideLLMs.config import load_config

STARTER_CONFIG = """\
# insideLLMs starter config: `insidellms run {config}`
# Every path in this file is relative to this file's folder, wherever you run the command from
# (command-line options such as --run-dir are relative to where you run it).
name: starter
model:
  type: dummy                  # try: llamacpp (embedded, no key), openai, anthropic
  args: {{model_name: dummy}}
probe:
  type: factuality
dataset:
  format: jsonl
  path: {data}
generation:
  temperature: 0
  max_tokens: 128
runner:
  concurrency: 8
  max_retries: 4
  timeout_s: 60
tracking:
  enabled: true
  backend: local
  output_dir: ./tracking_logs  # next to this file
"""

STARTER_DATA = [
    {"id": "capital-fr", "prompt": "What is the capital of France?", "answer": "Paris"},
    {"id": "h2o", "prompt": "What is the chemical formula of water?", "answer": "H2O"},
    {"id": "planets", "prompt": "How many planets are in the Solar System?", "answer": "8", "aliases": ["eight"]},
]


@click.command(cls=Command)
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def init(directory: Path, force: bool) -> None:
    """Write a starter config (insidellms.yaml) and prompt set (data/prompts.jsonl) into DIRECTORY."""
    from insideLLMs.canonical import dumps

    config_path = directory / "insidellms.yaml"
    data_path = directory / "data" / "prompts.jsonl"
    existing = [p for p in (config_path, data_path) if p.exists()]
    if existing and not force:
        raise UserError(f"{existing[0]}: already exists; pass --force to overwrite")
    data_path.parent.mkdir(parents=True, exist_ok=True)
    data_path.write_text("".join(dumps(row) + "\n" for row in STARTER_DATA), encoding="utf-8")
    config_path.write_text(STARTER_CONFIG.format(config=config_path, data="data/prompts.jsonl"), encoding="utf-8")
    click.echo(f"wrote {config_path} and {data_path}")
    click.echo(f"next: insidellms run {config_path}")


@click.command("list", cls=Command)
@click.argument("what", type=click.Choice(["models", "probes", "scorers"]))
def list_(what: str) -> None:
    """List model, probe or scorer types (built-in and plugins)."""
    from insideLLMs.models import MODELS
    from insideLLMs.probes import PROBES
    from insideLLMs.scorers import SCORERS

    registry = {"models": MODELS, "probes": PROBES, "scorers": SCORERS}[what]
    for name in registry.names():
        try:
            doc = registry.summary(name)
        except Exception as exc:  # a plugin or provider that cannot import still gets listed
            doc = f"(unavailable: {exc})"
        click.echo(f"{name:<24} {doc}")


@click.command(cls=Command)
@click.argument("config", type=click.Path(path_type=Path))
def validate(config: Path) -> None:
    """Check CONFIG (schema, types, args, data files) without calling any model."""
    from insideLLMs.run import build_harness

    grid = build_harness(load_config(config))
    models = {id(c.model) for c in grid.cells}
    probes = {id(c.probe) for c in grid.cells}
    total = sum(len(c.prompt_set) for c in grid.cells)
    click.echo(f"{config}: ok — {len(models)} model(s) × {len(probes)} probe(s), {total} records, run_id {grid.run_id}")
