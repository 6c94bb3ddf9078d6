"""``insidellms judge-agreement``: how far a run's LLM judge agrees with human labels."""

from __future__ import annotations

import json
from pathlib import Path

import click

from insideLLMs.cli._errors import Command


@click.command(cls=Command)
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.argument("labels", type=click.Path(path_type=Path))
@click.option("--scorer", help="The judge scorer's name, when the run has several.")
@click.option("--model", help="The graded model's id, when the run holds several.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def judge_agreement(run_dir: Path, labels: Path, scorer: str | None, model: str | None, as_json: bool) -> None:
    """Accuracy and Cohen's kappa of RUN_DIR's judge against LABELS (JSON lines: {"id", "grade"} or {"id", "passed"})."""
    from insideLLMs.rundir import judge_agreement as agreement_of

    result = agreement_of(run_dir, labels, scorer=scorer, model=model)
    if as_json:
        click.echo(json.dumps(result.to_dict(), sort_keys=True))
        return
    click.echo(f"judge {result.scorer!r} vs human labels ({result.by}): {result.compared} compared, "
               f"{result.judge_errors} judge error(s), {result.unmatched} label(s) without a judged example")
    accuracy = "n/a" if result.accuracy is None else f"{result.accuracy:.3f}"
    kappa = "undefined (one label only)" if result.kappa is None else f"{result.kappa:.3f}"
    click.echo(f"accuracy {accuracy}, Cohen's kappa {kappa}")
