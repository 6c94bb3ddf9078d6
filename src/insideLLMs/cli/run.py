"""``insidellms run`` / ``harness`` (a config file) and ``quicktest`` (one prompt)."""

from __future__ import annotations

import contextlib
import signal
import sys
from pathlib import Path
from typing import Any, Iterator

import click

from insideLLMs.cli._errors import Command, warn
from insideLLMs.config import BACKENDS, LoadedConfig, TrackingConfig, load_config
from insideLLMs.errors import EXIT_EXAMPLE_ERRORS, EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated, UserError
from insideLLMs.rundir import REPORT


def _run_options(fn: Any) -> Any:
    options = [
        click.argument("config", type=click.Path(path_type=Path)),
        click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path), help="Where to write the run directory (default: runs/<run_id>)."),
        click.option("--resume", is_flag=True, help="Continue an interrupted run in --run-dir."),
        click.option("--overwrite", is_flag=True, help="Replace an existing run in --run-dir."),
        click.option("--concurrency", type=click.IntRange(min=1), help="Requests in flight at once (overrides runner.concurrency)."),
        click.option("--executor", type=click.Choice(["local", "ray"]), help="Where examples run: this process, or Ray actors (overrides runner.executor.type)."),
        click.option("--ray-address", metavar="HOST:PORT", help="The Ray cluster to run on: auto, HOST:PORT or local (implies --executor ray)."),
        click.option("--max-examples", type=click.IntRange(min=1), help="Only the first N examples of each prompt set."),
        click.option("--shard", metavar="I/N", help="Run only shard I of N (0-based: 0/4 … 3/4) into a partial run "
                     "directory; join the N parts with: insidellms merge."),
        click.option("--max-cost", type=click.FloatRange(min=0, min_open=True), metavar="USD",
                     help="Stop once the run has cost this many US dollars (overrides runner.max_cost_usd)."),
        click.option("--epochs", type=click.IntRange(min=1), help="Ask each example K times (overrides runner.epochs)."),
        click.option("--track", "track", metavar="BACKEND", help=f"Track to BACKEND ({', '.join(BACKENDS)}; comma-separated for several)."),
        click.option("--no-track", is_flag=True, help="Do not track this run, whatever the config says."),
        click.option("--fail-on-errors", is_flag=True, help=f"Exit {EXIT_EXAMPLE_ERRORS} if any example ended in an error."),
        click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@click.command(cls=Command)
@_run_options
def run(**options: Any) -> None:
    """Run one model × one probe from CONFIG and write a run directory."""
    _main(options, harness=False)


@click.command(cls=Command)
@_run_options
def harness(**options: Any) -> None:
    """Run every model × every probe in CONFIG into one run directory."""
    _main(options, harness=True)


def _tracking_config(loaded: LoadedConfig, track: str | None, no_track: bool) -> TrackingConfig | None:
    cfg = loaded.config.tracking
    if no_track:
        return None
    if track:
        backends = [b.strip() for b in track.split(",") if b.strip()]
        base = cfg.as_dict() if cfg else {}
        try:
            cfg = TrackingConfig.from_options(base | {"enabled": True, "backend": backends[0] if len(backends) == 1 else backends})
        except ValueError:
            raise UserError(f"--track {track}: backends are {', '.join(BACKENDS)}") from None
    return cfg if cfg and cfg.enabled else None


def _main(options: dict[str, Any], *, harness: bool) -> None:
    from insideLLMs.run import BudgetError, BudgetReached, RunAborted, Shard, build_harness, self_grading

    shard = Shard.parse(options["shard"]) if options["shard"] is not None else None
    loaded = load_config(options["config"])
    cfg = loaded.config
    if not harness and (cfg.models or cfg.probes):
        raise UserError(f"{loaded.path}: has 'models'/'probes' lists; run it with: insidellms harness {loaded.path}")
    tracking = _tracking_config(loaded, options["track"], options["no_track"])
    listener = _tracking_listener(tracking)
    try:
        grid = build_harness(
            loaded,
            max_examples=options["max_examples"],
            concurrency=options["concurrency"],
            epochs=options["epochs"],
            executor=options["executor"],
            ray_address=options["ray_address"],
            resume=options["resume"],
            overwrite=options["overwrite"],
            progress=options["progress"],
            shard=shard,
            **({"max_cost_usd": options["max_cost"]} if options["max_cost"] is not None else {}),
        )
        try:
            run_id = grid.run_id  # plans the run: a budget without every model's price stops here
        except BudgetError as exc:
            raise UserError(f"--max-cost: {exc}") from None
        for line in self_grading(grid):
            warn(line)
        settings = grid.settings
        models = [c.model for c in grid.cells]
        run_dir = options["run_dir"] or (Path(cfg.run_dir) if cfg.run_dir else Path("runs") / run_id)
        if shard is not None and not options["run_dir"]:  # the parts of one run side by side, never in its place
            run_dir = run_dir.with_name(f"{run_dir.name}-shard-{shard.index}-of-{shard.count}")
        settings.run_dir = run_dir
        if listener is not None:
            settings.listeners = [listener]
        _say_model_loading(list({id(m): m for m in models}.values()))
        sigterm: list[int] = []
        try:
            with _sigterm_as_interrupt(sigterm):
                outcome = grid.run()
        except BudgetReached as exc:
            raise UserError(f"{exc}; the {exc.done} examples done are in {run_dir}; continue with: insidellms "
                            f"{'harness' if harness else 'run'} {loaded.path} --run-dir {run_dir} --resume "
                            f"--max-cost USD (more than the ${exc.spent:.6f} spent)") from None
        except RunAborted as exc:
            raise UserError(str(exc)) from None
        except KeyboardInterrupt as exc:
            terminated = bool(sigterm) or isinstance(exc, Terminated)
            why = "terminated (SIGTERM)" if terminated else "interrupted"
            again = f" --shard {shard}" if shard is not None else ""
            click.echo(f"\n{why}; continue with: insidellms {'harness' if harness else 'run'} {loaded.path} "
                       f"--run-dir {run_dir}{again} --resume", err=True)
            sys.exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED)
    finally:
        if listener is not None:
            _close_quietly(listener)
    _print_results(outcome.summary, run_dir)
    if options["fail_on_errors"] and outcome.summary["totals"]["error_count"]:
        warn(f"{outcome.summary['totals']['error_count']} example(s) ended in an error (--fail-on-errors)")
        sys.exit(EXIT_EXAMPLE_ERRORS)


@contextlib.contextmanager
def _sigterm_as_interrupt(received: list[int]) -> Iterator[None]:
    """While the run runs, SIGTERM stops it as Ctrl-C does: records flushed, resumable, tracking told.

    It goes through the current SIGINT handler (asyncio's while the run's loop runs, which cancels the
    run), since an exception raised here would land inside whichever task is running and escape as a
    traceback. ``received`` gets the signal number, so the caller can tell SIGTERM from Ctrl-C.
    """

    def stop(signum: int, frame: Any) -> None:
        received.append(signum)
        on_sigint = signal.getsignal(signal.SIGINT)
        if not callable(on_sigint):  # SIGINT ignored or defaulted by an embedding application
            raise Terminated()
        on_sigint(signal.SIGINT, frame)

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread (an embedding application): leave its handling alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _tracking_listener(tracking: TrackingConfig | None) -> Any:
    """The run's tracking: in this process, remote backends fed by a delivery child (tracking/_listener.py)."""
    if tracking is None:
        return None
    try:
        from insideLLMs.tracking._listener import TrackingListener

        return TrackingListener.from_config(tracking, echo=lambda line: click.echo(line, err=True))
    except Exception as exc:  # tracking never stops an evaluation
        warn(f"tracking is off for this run: {exc}")
        return None


def _close_quietly(listener: Any) -> None:
    try:
        listener.close()
    except Exception as exc:
        warn(f"tracking: {exc}")


def _say_model_loading(models: list[Any]) -> None:
    for model in models:
        if model.provider == "llamacpp":
            click.echo(f"loading local model {model.model_id} (llama.cpp, CPU)…", err=True)


def _fmt_rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _fmt_rate_interval(value: float | None, interval: dict[str, Any] | None) -> str:
    """``68% (50–82)``: the rate and its 95 % interval, in percent."""
    if value is None or interval is None:
        return _fmt_rate(value)
    return f"{value:.0%} ({interval['low'] * 100:.0f}–{interval['high'] * 100:.0f})"


def _fmt_n(group: dict[str, Any]) -> str:
    """A group's size: its records, or ``examples×epochs`` in a run with epochs (its rates are over examples)."""
    epochs = group.get("epochs")
    return f"{epochs['examples']:,}×{epochs['k']}" if epochs else f"{group['n']:,}"


def _print_results(summary: dict[str, Any], run_dir: Path) -> None:
    """The compact results table, as plain aligned text: it reads the same on a terminal and in a
    CI log, and printing it needs no rich import at the end of every run."""
    from insideLLMs.report.page import usd

    judged = any("judge_cost_usd" in group for group in summary["groups"])
    headers = ("model", "probe", "n", "success", "pass rate (95% CI)", "errors", "p50 ms", "tokens", "cost",
               *(("judge cost",) if judged else ()))
    latency = summary["volatile"]["latency_ms"]
    rows = []
    for group in [*summary["groups"], *([{"model": "total", "probe": "", **summary["totals"]}]
                                       if len(summary["groups"]) > 1 else [])]:
        p50 = latency.get(f"{group['model']}/{group['probe']}" if group["probe"] else "all", {}).get("p50")
        tokens = group.get("tokens") or {}
        rows.append((
            group["model"], group["probe"], _fmt_n(group), _fmt_rate(group["success_rate"]),
            _fmt_rate_interval(group["pass_rate"], group.get("intervals", {}).get("pass_rate")),
            f"{group['error_count']:,}", "-" if p50 is None else f"{p50:,.0f}",
            f"{tokens.get('prompt', 0) + tokens.get('completion', 0):,}", usd(group.get("cost_usd")),
            *((usd(group.get("judge_cost_usd")) if "judge_tokens" in group else "-",) if judged else ()),
        ))
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows)]

    def line(cells: tuple[str, ...]) -> str:  # text columns left-aligned, numbers right-aligned
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [f"run {summary['run_id']}", line(headers), "  ".join("-" * w for w in widths), *map(line, rows),
           f"run directory: {run_dir}"]
    if (run_dir / REPORT).exists():
        out.append(f"report:        {run_dir / REPORT}")
    click.echo("\n".join(out))


@click.command(cls=Command)
@click.argument("prompt")
@click.option("--model", "model_type", default="dummy", show_default=True, help="Model type: dummy, llamacpp, openai, anthropic, or pkg.module:Class.")
@click.option("--arg", "args", multiple=True, metavar="KEY=VALUE", help="A model argument, e.g. --arg model_name=gpt-4o-mini (repeatable).")
@click.option("--temperature", type=float, default=0.0, show_default=True)
@click.option("--max-tokens", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--system", help="A system message to send first.")
def quicktest(prompt: str, model_type: str, args: tuple[str, ...], temperature: float, max_tokens: int, system: str | None) -> None:
    """Send PROMPT to a model and print its answer (no run directory)."""
    from insideLLMs.models import ModelError, get_model
    from insideLLMs.registry import UnknownTypeError

    kwargs: dict[str, Any] = {}
    for item in args:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--arg {item!r}: expected KEY=VALUE")
        kwargs[key] = _coerce(value)
    try:
        model = get_model(model_type, **kwargs)
    except UnknownTypeError as exc:
        raise UserError(str(exc)) from None
    except TypeError as exc:
        raise UserError(f"--arg: bad argument for model {model_type!r}: {exc}") from None
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    if model.provider == "llamacpp":
        click.echo(f"loading local model {model.model_id} (llama.cpp, CPU)…", err=True)
    try:
        completion = model.generate(messages, temperature=temperature, max_tokens=max_tokens)
    except ModelError as exc:
        raise UserError(f"{model_type}: {exc}") from None
    click.echo(completion.text)
    if completion.usage:
        click.echo(
            f"[{completion.served_model or model.model_id} · {completion.usage.prompt_tokens} prompt + "
            f"{completion.usage.completion_tokens} completion tokens · finish: {completion.finish_reason}]",
            err=True,
        )


def _coerce(value: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value
