"""``insidellms tracking``: list, show, compare, sync, status and push tracked runs."""

from __future__ import annotations

import datetime as dt
import importlib
import shutil
from pathlib import Path
from typing import Any

import click

from insideLLMs.cli._errors import Group, warn
from insideLLMs.config import BACKENDS, tracking_uri_problem

DEFAULT_DIR = "tracking_logs"


def _console() -> Any:
    from rich.console import Console

    width = shutil.get_terminal_size((140, 40)).columns
    return Console(width=max(width, 100), highlight=False, soft_wrap=False)


def _when(ts: float | None) -> str:
    return "—" if ts is None else dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


_STATUS_STYLE = {"finished": "green", "failed": "red", "interrupted": "yellow", "killed": "red", "running": "yellow"}


def _status(status: str) -> str:
    return f"[{_STATUS_STYLE.get(status, 'white')}]{status}[/]"


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
def tracking() -> None:
    """List, show, compare, sync and push tracked runs (the local journal under tracking_logs/)."""


@tracking.command("list")
@click.argument("directory", default=DEFAULT_DIR, type=click.Path(file_okay=False, path_type=Path))
def list_runs(directory: Path) -> None:
    """List the tracked runs in DIRECTORY (default: ./tracking_logs), oldest first."""
    from rich.table import Table

    from insideLLMs.tracking.store import JournalError
    from insideLLMs.tracking.store import find_runs, load_run
    from insideLLMs.tracking.delivery import delivery_status

    runs = find_runs(directory)
    if not runs:
        click.echo(f"no tracked runs in {directory}")
        return
    pending = {d.run_dir: sum(s.pending for s in d.sinks) for d in delivery_status(directory)}
    table = Table(title=f"Tracked runs in {directory}")
    for col in ("run", "name", "status", "started", "duration", "metrics", "backends", "pending"):
        table.add_column(col, overflow="fold")
    for run_dir in runs:
        try:
            view = load_run(run_dir)
        except JournalError as exc:
            table.add_row(run_dir.name, "", "[red]unreadable[/]", "", "", "", "", str(exc))
            continue
        status = view.status + (" (torn tail)" if view.torn_tail else "")
        table.add_row(
            view.key, view.state.name, _status(status), _when(view.state.started_at), _duration(view.duration_s),
            str(len(view.run_metrics)), ", ".join(view.backends), f"{pending.get(run_dir, 0):,}",
        )
    _console().print(table)


def _resolve(ref: str | None, directory: Path) -> Path:
    from insideLLMs.tracking.store import resolve_run

    return resolve_run(ref, directory)  # RunNotFound is a UserError: one line, exit 1 (cli/_errors.py)


@tracking.command("show")
@click.argument("run", required=False)
@click.option("--latest", is_flag=True, help="Show the most recent run (the default when RUN is omitted).")
@click.option("--dir", "directory", default=DEFAULT_DIR, show_default=True, type=click.Path(path_type=Path),
              help="Where to look for RUN.")
def show(run: str | None, latest: bool, directory: Path) -> None:
    """Show one run: status, tags, params, its metrics per model × probe, its step series, artifacts, delivery.

    RUN is a run folder, a run key (or its start, e.g. 7f3a), or a run name; omitted: the latest run.
    """
    from rich.table import Table

    from insideLLMs.tracking._compare import format_value
    from insideLLMs.tracking.store import load_run
    from insideLLMs.tracking.delivery import delivery_status

    if run is not None and latest:
        raise click.UsageError("give RUN or --latest, not both")
    run_dir = _resolve(run, directory)
    view = load_run(run_dir, series=True)
    console = _console()
    state = view.state
    head = Table(show_header=False, title=f"Run {view.key}")
    head.add_column("field", style="bold")
    head.add_column("value", overflow="fold")
    head.add_row("name", state.name)
    head.add_row("status", _status(view.status) + (" [red](torn last line skipped)[/]" if view.torn_tail else ""))
    head.add_row("started", _when(state.started_at))
    head.add_row("ended", _when(view.ended_at))
    head.add_row("duration", _duration(view.duration_s))
    head.add_row("backends", ", ".join(view.backends))
    head.add_row("tags", ", ".join(f"{k}={v}" if v else k for k, v in sorted(state.tags.items())) or "—")
    head.add_row("folder", str(run_dir))
    console.print(head)
    table = Table(title="Parameters")
    table.add_column("name", overflow="fold")
    table.add_column("value", overflow="fold")
    for key in sorted(state.params):
        table.add_row(key, format_value(state.params[key]))
    if not state.params:
        table.add_row("—", "—")
    console.print(table)
    for table in _metric_tables(view):
        console.print(table)
    if state.series:
        console.print(_series_table(view))
    if state.artifacts:
        table = Table(title="Artifacts")
        for col in ("name", "kind", "path", "size"):
            table.add_column(col, overflow="fold")
        for art in state.artifacts.values():
            table.add_row(art["name"], art["kind"], art["path"], f"{art.get('size', 0):,} B")
        console.print(table)
    sinks = [s for d in delivery_status(run_dir) for s in d.sinks]
    if sinks:
        table = Table(title="Delivery to remote backends")
        for col in ("backend", "delivered", "pending", "failed", "last error"):
            table.add_column(col, overflow="fold")
        for s in sinks:
            table.add_row(s.sink, f"{s.delivered:,}", f"{s.pending:,}", f"{s.failures:,}", s.last_error or "")
        console.print(table)


def _metric_tables(view: Any) -> list[Any]:
    """The run-level metrics: a row per model × probe, a column per metric (a table per theme)."""
    from rich.table import Table

    from insideLLMs.tracking._compare import format_with_interval, metric_grid

    grid = metric_grid(view.run_metrics, view.state.params)
    tables = []
    for title, columns in grid.sections or [("Metrics", [])]:
        table = Table(title=title)
        for col in ("model", "probe"):
            table.add_column(col, overflow="fold")
        if len(columns) > _MAX_METRIC_COLUMNS:  # too many to read side by side: a row per metric
            table.add_column("metric", overflow="fold")
            table.add_column("value", justify="right")
            for model, probe, values in grid.rows:
                for name in columns:
                    if values.get(name) is not None:
                        table.add_row(model, probe, name, format_with_interval(values, name))
        else:
            for name in columns:
                table.add_column(name, justify="right", overflow="fold")
            for model, probe, values in grid.rows:
                table.add_row(model, probe, *(format_with_interval(values, name) for name in columns))
        if not grid.rows:
            table.add_row("—", "—")
        tables.append(table)
    return tables


_MAX_METRIC_COLUMNS = 6  # beyond this a side-by-side table no longer fits a terminal


def _series_table(view: Any) -> Any:
    """Every step series (a tracked evaluation's per-example ``example/…`` ones among them), in brief."""
    from rich.table import Table

    from insideLLMs.tracking._compare import format_value

    table = Table(title="Step series")
    for col in ("series", "points", "mean", "min", "max"):
        table.add_column(col, overflow="fold", justify="left" if col == "series" else "right")
    for name in sorted(view.state.series):
        values = [v for _, v in view.state.series[name]]
        table.add_row(name, f"{len(values):,}", format_value(round(sum(values) / len(values), 6)),
                      format_value(min(values)), format_value(max(values)))
    return table


@tracking.command("compare")
@click.argument("runs", nargs=-1, required=True)
@click.option("--dir", "directory", default=DEFAULT_DIR, show_default=True, type=click.Path(path_type=Path),
              help="Where to look for run keys and names.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a self-contained HTML page with a chart per step series.")
def compare_cmd(runs: tuple[str, ...], directory: Path, output: Path | None) -> None:
    """Compare runs side by side: run-level metrics and the parameters that differ."""
    from rich.table import Table

    from insideLLMs.tracking._compare import compare, format_value, run_label, write_html
    from insideLLMs.tracking.store import load_run

    views = [load_run(_resolve(ref, directory), series=output is not None) for ref in runs]
    comparison = compare(views)
    console = _console()
    labels = [run_label(v) for v in views]
    table = Table(title="Metrics")
    table.add_column("metric", overflow="fold")
    for label in labels:
        table.add_column(label, justify="right", overflow="fold")
    for name in comparison.metric_names:
        table.add_row(name, *(format_value(comparison.metric(v, name)) for v in views))
    console.print(table)
    if comparison.differing_params:
        table = Table(title="Parameters that differ")
        table.add_column("parameter", overflow="fold")
        for label in labels:
            table.add_column(label, overflow="fold")
        for name in comparison.param_names:
            if name in comparison.differing_params:
                table.add_row(name, *(format_value(comparison.param(v, name)) for v in views))
        console.print(table)
    else:
        console.print("Parameters: identical.")
    if output is not None:
        write_html(comparison, output)
        click.echo(f"wrote {output}")


def _sink_options(func: Any) -> Any:
    """``--tracking-uri``, ``--project``, … : each option a remote backend reads (the table in config.BACKENDS)."""
    readers: dict[str, list[str]] = {}
    for backend in BACKENDS.values():
        for name in backend.options if backend.sink else ():
            if name != "run_name":  # the run's own name, never overridden here
                readers.setdefault(name, []).append(backend.name)
    for name, backends in reversed(readers.items()):
        func = click.option(f"--{name.replace('_', '-')}", name, callback=_check_uri if name == "tracking_uri" else None,
                            help=f"The {' and '.join(backends)} {name} (overrides the stored one).")(func)
    return func


def _check_uri(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--tracking-uri`` is checked as the config's ``tracking_uri`` is: before anything is written or sent."""
    if value is not None and (problem := tracking_uri_problem(value)):
        raise click.BadParameter(problem)
    return value


@tracking.command("sync")
@click.argument("path", default=DEFAULT_DIR, type=click.Path(exists=True, path_type=Path))
@click.option("--backend", "backends", multiple=True,
              help="Only this backend (repeatable); also sends runs that were never tracked to it.")
@_sink_options
def sync_cmd(path: Path, backends: tuple[str, ...], **options: Any) -> None:
    """Deliver every event remote backends have not received yet (a run folder, or all runs in PATH).

    Safe to repeat or interrupt: each backend resumes from its delivered mark, nothing is sent twice.
    """
    from insideLLMs.tracking._push import catch_up_killed_run
    from insideLLMs.tracking.store import find_runs
    from insideLLMs.tracking.delivery import sync
    from insideLLMs.tracking.delivery import BackendUnavailable, check_backend

    runs = find_runs(path)
    if not runs:
        raise click.ClickException(f"no tracked runs in {path}")
    for run_dir in runs:  # an evaluation that was killed: its steps and files up to its run directory
        try:
            if catch_up_killed_run(run_dir):
                click.echo(f"{run_dir.name}: its process died while running; marked killed, with what its run directory holds")
        except (OSError, ValueError) as exc:
            warn(f"{run_dir.name}: cannot bring it up to its run directory ({exc})")
    try:
        for backend in backends:
            check_backend(backend)
        outcomes = sync(path, backends=list(backends) or None, options=options, echo=click.echo)
    except (BackendUnavailable, ValueError) as exc:
        raise _fail(exc) from None
    sent = sum(o.sent for o in outcomes)
    pending = sum(o.pending for o in outcomes)
    if pending:
        raise click.ClickException(
            f"{sent:,} events delivered, {pending:,} still pending; run `insidellms tracking sync {path}` again "
            "when the backend is reachable (see: insidellms tracking status)"
        )
    click.echo(f"{sent:,} events delivered; nothing pending" if sent else "nothing to deliver: every backend is up to date")


@tracking.command("status")
@click.argument("path", default=DEFAULT_DIR, type=click.Path(exists=True, path_type=Path))
def status_cmd(path: Path) -> None:
    """Per run and remote backend: events delivered, pending, failed attempts and the last error."""
    from rich.table import Table

    from insideLLMs.tracking.delivery import delivery_status

    runs = delivery_status(path)
    if not runs:
        click.echo(f"no tracked runs in {path}")
        return
    table = Table(title=f"Delivery status in {path}")
    table.add_column("run", no_wrap=True)  # whole, so a run can be found (and grepped) in a narrow terminal
    for col in ("name", "status", "events", "backend", "delivered", "pending", "failed", "state", "last error"):
        table.add_column(col, overflow="fold")
    for run in runs:
        if run.error:
            table.add_row(run.key, "", "[red]unreadable[/]", "", "", "", "", "", "", run.error)
            continue
        if not run.sinks:
            table.add_row(run.key, run.name, run.status, f"{run.events:,}", "local", f"{run.events:,}", "0", "0", "delivered", "")
        for s in run.sinks:
            table.add_row(run.key, run.name, run.status, f"{run.events:,}", s.sink, f"{s.delivered:,}", f"{s.pending:,}",
                          f"{s.failures:,}", s.state, s.last_error or "")
    _console().print(table)


@tracking.command("push")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--backend", required=True, help=f"One of: {', '.join(BACKENDS)}.")
@click.option("--new-run", is_flag=True, help="Create a new tracked run even if this run directory was pushed before.")
@_sink_options
def push_cmd(run_dir: Path, backend: str, new_run: bool, **options: Any) -> None:
    """Log an existing run directory (made with or without tracking) to a backend, after the fact."""
    from insideLLMs.tracking.delivery import BackendUnavailable, check_backend

    try:
        check_backend(backend)
        module = importlib.import_module("insideLLMs.tracking._push")
    except ModuleNotFoundError:
        raise click.ClickException("tracking push is not available in this build of insideLLMs") from None
    except (BackendUnavailable, ValueError) as exc:
        raise _fail(exc) from None
    opts = {k: v for k, v in options.items() if v is not None}
    try:
        module.push_run(run_dir, backend=backend, options=opts, new_run=new_run, echo=click.echo)
    except (ValueError, FileNotFoundError, BackendUnavailable) as exc:
        raise _fail(exc) from None
