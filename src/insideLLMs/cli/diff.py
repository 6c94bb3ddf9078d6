"""``insidellms diff``: compare two runs, gate CI, accept a candidate as the new baseline.

Exit codes of ``diff``: 0 the gate passed, 2 the gate failed, 1 a usage or input error.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from insideLLMs.cli._errors import Command, ErrorExit
from insideLLMs.errors import EXIT_GATE_FAILED


def _parse_tolerances(values: tuple[str, ...]) -> dict[str, float]:
    tolerances: dict[str, float] = {}
    for value in values:
        name, sep, number = value.rpartition("=")
        name = name.strip() if sep else "*"
        try:
            tol = float(number)
        except ValueError:
            tol = -1.0
        if tol < 0 or not name:
            raise click.UsageError(f"--tolerance {value!r}: expected NAME=NUMBER (e.g. score=0.02) or NUMBER for every score")
        tolerances[name] = tol
    return tolerances


def _parse_regression_ci(values: tuple[str, ...]) -> dict[str, float | None]:
    """``METRIC[:TOL]`` of each --fail-on-regression-ci (TOL: a number ≥ 0; without it, --tolerance's or 0)."""
    gates: dict[str, float | None] = {}
    for value in values:
        metric, sep, number = value.rpartition(":")
        if not sep:
            metric, number = value, ""
        metric = metric.strip()
        tol: float | None = None
        if number.strip():
            try:
                tol = float(number)
            except ValueError:
                tol = -1.0
            if not (0 <= tol < float("inf")):
                raise click.UsageError(f"--fail-on-regression-ci {value!r}: TOL must be a number >= 0 "
                                       "(e.g. pass_rate:0.02 or f1:0.05)")
        if not metric:
            raise click.UsageError(f"--fail-on-regression-ci {value!r}: expected METRIC[:TOL] (e.g. pass_rate:0.02)")
        gates[metric] = tol
    return gates


@click.command(cls=Command)
@click.argument("baseline", type=click.Path(path_type=Path))
@click.argument("candidate", type=click.Path(path_type=Path))
@click.option("--fail-on-changes", is_flag=True, help="Exit 2 if any example is not unchanged.")
@click.option("--fail-on-regressions", is_flag=True, help="Exit 2 if any example got worse.")
@click.option("--fail-on-significant-regression", is_flag=True,
              help="Exit 2 if a model × probe's pass rate dropped significantly (exact McNemar test).")
@click.option("--fail-on-regression-ci", "regression_ci", multiple=True, metavar="METRIC[:TOL]",
              help="Exit 2 if, for a model × probe, the whole 95 % interval of the paired difference of METRIC "
                   "(a score, or pass_rate) lies below -TOL (repeatable; TOL defaults to --tolerance's, else 0).")
@click.option("--fail-on-underpowered", is_flag=True,
              help="Exit 2 if a passing per-group gate could not have seen a change as large as its tolerance "
                   "(minimum detectable effect > TOL, alpha 0.05, power 0.8).")
@click.option("--correction", type=click.Choice(["none", "holm"]), default="none", show_default=True,
              help="Multiple-testing correction across model × probe groups for --fail-on-significant-regression "
                   "and --fail-on-regression-ci (holm: Holm's step-down).")
@click.option("--allow-missing", is_flag=True,
              help="Let a gate pass on a partial comparison: an incomplete candidate, or one lacking baseline "
                   "examples (a comparison that matched nothing always fails).")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05,
              show_default=True, help="Significance level for --fail-on-significant-regression.")
@click.option("--tolerance", "tolerances", multiple=True, metavar="NAME=NUMBER",
              help="Allowed change of a score before it counts (repeatable; a bare NUMBER applies to all scores).")
@click.option("--lower-is-better", "lower_is_better", multiple=True, metavar="NAME",
              help="Treat this score as lower-is-better (repeatable; names ending in _error, loss, "
                   "latency, bias, toxicity, ... already are).")
@click.option("--match-on", type=click.Choice(["key", "example"]), default="key", show_default=True,
              help="key: match model/probe/example; example: ignore the model id (gate a model upgrade).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the text or JSON here instead of standard output.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a self-contained diff.html.")
@click.option("--top", type=click.IntRange(0), default=10, show_default=True,
              help="How many changes the text output shows.")
@click.option("--limit", type=click.IntRange(0), default=1000, show_default=True,
              help="How many changes JSON and HTML keep with their details (counts cover all).")
@click.option("--accept", is_flag=True, help="Make the candidate the new baseline (copies its deterministic files).")
def diff(
    baseline: Path, candidate: Path, fail_on_changes: bool, fail_on_regressions: bool,
    fail_on_significant_regression: bool, regression_ci: tuple[str, ...], fail_on_underpowered: bool,
    correction: str, allow_missing: bool, alpha: float, tolerances: tuple[str, ...],
    lower_is_better: tuple[str, ...], match_on: str, fmt: str, output: Path | None,
    html_path: Path | None, top: int, limit: int, accept: bool,
) -> None:
    """Compare the run directories BASELINE and CANDIDATE example by example.

    Exit codes: 0 the gate passed, 2 the gate failed, 1 a usage or input error.
    """
    from insideLLMs.diff import diff_runs, evaluate_gate, render_json, render_text

    tols = _parse_tolerances(tolerances)
    ci_gates = _parse_regression_ci(regression_ci)
    if fail_on_underpowered and not (ci_gates or fail_on_significant_regression):
        raise click.UsageError("--fail-on-underpowered judges the power of --fail-on-significant-regression or "
                               "--fail-on-regression-ci; give one of them")
    if accept:
        _accept(baseline, candidate)
        return
    result = diff_runs(baseline, candidate, match_on=match_on, tolerances=tols,  # type: ignore[arg-type]
                       lower_is_better=frozenset(lower_is_better), limit=max(limit, top))
    gate = evaluate_gate(
        result, fail_on_changes=fail_on_changes, fail_on_regressions=fail_on_regressions,
        fail_on_significant_regression=fail_on_significant_regression, alpha=alpha,
        allow_missing=allow_missing, fail_on_regression_ci=ci_gates, fail_on_underpowered=fail_on_underpowered,
        correction=correction,  # type: ignore[arg-type]
    )
    payload: bytes = render_json(result, gate) if fmt == "json" else render_text(result, gate, top).encode()
    _write_or_print(payload, output)
    if html_path is not None:
        from insideLLMs.diff import write_diff_report

        _write_checked(lambda: write_diff_report(result, html_path, gate))
        click.echo(f"wrote {html_path}", err=True)
    if not gate.passed:  # the reason on stderr too: stdout may be a JSON file or out of sight in a CI log
        where = f" (the diff is in {output})" if output is not None else ""
        raise ErrorExit(f"gate failed: {'; '.join(gate.reasons)}{where}", EXIT_GATE_FAILED)
    if output is not None:
        click.echo(f"wrote {output}; gate PASSED", err=True)


def _write_checked(write: Any) -> Any:
    try:
        return write()
    except OSError as exc:
        raise click.ClickException(f"{exc.filename}: cannot write ({exc.strerror})") from None


def _write_or_print(payload: bytes, output: Path | None) -> None:
    if output is None:
        sys.stdout.buffer.write(payload)
        sys.stdout.flush()
    else:
        _write_checked(lambda: output.write_bytes(payload))


def _accept(baseline: Path, candidate: Path) -> None:
    from insideLLMs.diff import accept_candidate, diff_runs, run_records_path

    try:
        run_records_path(candidate, "candidate")
        if baseline.exists():
            result = diff_runs(baseline, candidate)
            counts = ", ".join(f"{n:,} {k}" for k, n in result.counts.items() if n)
            click.echo(f"accepting {result.total_changes:,} change(s) ({counts})")
        actions = accept_candidate(baseline, candidate)
    except OSError as exc:
        raise click.ClickException(f"{exc.filename or baseline}: {exc.strerror}") from None
    for line in actions:
        click.echo(line)
