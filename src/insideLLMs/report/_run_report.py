"""report.html: what a run did, in one self-contained page (summary table, charts, failures).

What the page shows beyond summary.json (latencies, the first failing examples) is gathered by a
``ReportData`` in one pass over the records and timings, so a large run costs time in proportion to
its size and memory only for its latencies and the first failing examples. The runner feeds one as
it writes (no second read of the files) and calls :func:`write_report` at the end of every run;
``insidellms report`` rebuilds summary.json and report.html from the files.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from insideLLMs.rundir import REPORT, SUMMARY, RunReader, summarize, summary_settings, write_atomic
from insideLLMs.canonical import dumps_pretty
from insideLLMs.report.page import MAX_EXAMPLES, Markup, esc, expected_of, figure, filter_box, latency_chart
from insideLLMs.report.page import page, pre, prompt_of, rate, table, usd

__all__ = ["ReportData", "rebuild_summary", "render_report", "write_report"]


def rebuild_summary(run_dir: Path) -> Path:
    """Recompute summary.json from records.jsonl and timings.jsonl (keeping the recorded wall time), costs at
    the prices manifest.json says the run used."""
    reader = RunReader(run_dir)
    old = reader.summary or {}
    manifest = reader.manifest or {}
    run_id = manifest.get("run_id") or old.get("run_id")
    summary = summarize(reader.records(), reader.timings(), run_id=run_id, **summary_settings(manifest))
    wall = (old.get("volatile") or {}).get("wall_time_s")
    if wall is not None:
        summary["volatile"]["wall_time_s"] = wall
    path = Path(run_dir) / SUMMARY
    write_atomic(path, dumps_pretty(summary))
    return path


@dataclass
class ReportData:
    """The per-example part of the page: counts, the first failing records, latencies per group."""

    records: int = 0
    n_failures: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    latencies: dict[str, array] = field(default_factory=dict)

    def add_record(self, rec: dict[str, Any]) -> None:
        self.records += 1
        if rec.get("status") != "success" or rec.get("passed") is False:
            self.n_failures += 1
            if len(self.failures) < MAX_EXAMPLES:
                self.failures.append(rec)

    def add_timing(self, timing: dict[str, Any]) -> None:
        key = f"{timing['model']} / {timing['probe']}"
        series = self.latencies.get(key)
        if series is None:
            series = self.latencies[key] = array("d")
        series.append(float(timing["latency_ms"]))

    def use_latencies(self, by_group: dict[tuple[str, str], array]) -> None:
        """Take the latencies a ``SummaryBuilder`` already holds instead of feeding timings twice."""
        self.latencies = {f"{model} / {probe}": xs for (model, probe), xs in by_group.items()}

    @classmethod
    def read(cls, run_dir: Path) -> "ReportData":
        data, reader = cls(), RunReader(run_dir)
        for rec in reader.records():
            data.add_record(rec)
        for timing in reader.timings():
            data.add_timing(timing)
        return data


def write_report(run_dir: Path, data: ReportData | None = None) -> Path:
    """Write ``run_dir/report.html`` and return its path. ``data``: already gathered while the
    records were written (else read from the files)."""
    run_dir = Path(run_dir)
    path = run_dir / REPORT
    write_atomic(path, render_report(run_dir, data))
    return path


def render_report(run_dir: Path, data: ReportData | None = None) -> bytes:
    """The report.html bytes (UTF-8) for a run directory."""
    run_dir = Path(run_dir)
    reader = RunReader(run_dir)
    if data is None:
        data = ReportData.read(run_dir)
    summary = reader.summary
    manifest = reader.manifest or {}
    if summary is None:  # an interrupted run: summarize what is there
        summary = summarize(reader.records(), reader.timings(), **summary_settings(manifest))
    run_id = manifest.get("run_id") or summary.get("run_id") or "?"
    body = [
        f"<h1>insideLLMs run {esc(run_id)}</h1>",
        f'<p class="meta">{esc(run_dir.name)} · {data.records:,} records · {data.n_failures:,} failing'
        + ("" if reader.complete else " · <b>incomplete run</b>") + "</p>",
        _summary_section(summary),
        _epochs_section(summary),
        _charts_section(summary, data.latencies),
        _failures_section(data.failures, data.n_failures),
    ]
    return page(f"insideLLMs run {run_id}", "\n".join(body))


def _summary_section(summary: dict[str, Any]) -> str:
    groups = summary.get("groups") or []
    score_names = sorted({name for g in groups for name in (g.get("scores") or {})})
    lat = (summary.get("volatile") or {}).get("latency_ms") or {}
    judged = any("judge_tokens" in g for g in groups)
    headers = ["model", "probe", "n", "success", "errors", "pass rate (95 % interval)", *score_names,
               "interval method", "tokens in/out", "cost", *(["judge tokens in/out", "judge cost"] if judged else []),
               "latency p50 / p95 ms"]
    rows = []
    for g in groups:
        judge_tokens = g.get("judge_tokens")
        judge_cells = ([f"{judge_tokens['prompt']:,} / {judge_tokens['completion']:,}", usd(g.get("judge_cost_usd"))]
                       if judge_tokens else ["—", "—"]) if judged else []
        gl = lat.get(f"{g['model']}/{g['probe']}") or {}
        tokens = g.get("tokens") or {}
        intervals = g.get("intervals") or {}
        score_intervals = intervals.get("scores") or {}
        rows.append([
            g["model"], g["probe"], _n(g), rate(g.get("success_rate")), g.get("error_count", 0),
            rate(g.get("pass_rate")) + (f" ({g['passed']:,}/{g['scored']:,})" if g.get("scored") else "")
            + _span(intervals.get("pass_rate"), percent=True),
            *[_num((g.get("scores") or {}).get(name)) + _span(score_intervals.get(name)) for name in score_names],
            _methods(intervals),
            f"{tokens.get('prompt', 0):,} / {tokens.get('completion', 0):,}", usd(g.get("cost_usd")),
            *judge_cells,
            f"{_num(gl.get('p50'))} / {_num(gl.get('p95'))}",
        ])
    return (f"<section><h2>Summary per model × probe</h2>{table(headers, rows)}{_cost_line(summary)}"
            '<p class="muted">Intervals are 95 %: Wilson for rates and boolean scores, mean ± 1.96·se for numeric '
            "scores, cluster-robust (CR1) when the prompt set names a cluster field (dataset.cluster). The charts "
            "show them as error bars.</p></section>")


def _cost_line(summary: dict[str, Any]) -> str:
    """The run's total cost, models and judges apart; unknown (—) when a model has no price."""
    totals = summary.get("totals") or {}
    tokens = totals.get("tokens") or {}
    text = (f"Total: {tokens.get('prompt', 0) + tokens.get('completion', 0):,} tokens, "
            f"cost {usd(totals.get('cost_usd'))}")
    if "judge_tokens" in totals:
        judge = totals["judge_tokens"]
        text += (f"; judges {judge['prompt'] + judge['completion']:,} tokens, cost {usd(totals.get('judge_cost_usd'))}")
    return (f'<p class="cost">{esc(text)}. Costs are list prices of the tokens the providers reported '
            "(— when a model has no price); see docs/guides/cost.md.</p>")


def _n(group: dict[str, Any]) -> str:
    """A group's size: its records, or in a run with epochs ``examples × epochs``."""
    epochs = group.get("epochs")
    return f"{epochs['examples']:,} × {epochs['k']}" if epochs else f"{group['n']:,}"


def _epochs_section(summary: dict[str, Any]) -> str:
    """A run with epochs: each example's reducer per metric, and how much one example's epochs varied."""
    groups = [g for g in summary.get("groups") or [] if g.get("epochs")]
    if not groups:
        return ""
    rows = []
    for g in groups:
        epochs = g["epochs"]
        within = epochs.get("within_variance") or {}
        for metric, reducer in (epochs.get("reducers") or {}).items():
            rows.append([g["model"], g["probe"], metric, reducer, _num(within.get(metric))])
    headers = ["model", "probe", "metric", "reducer", "within-example variance"]
    return (f"<section><h2>Epochs: each example asked {groups[0]['epochs']['k']} times</h2>{table(headers, rows)}"
            '<p class="muted">Pass rates and scores above are over examples, each example\'s epochs reduced to one '
            "value by its reducer; counts, success and tokens are over requests. The within-example variance is "
            "the mean over examples of the variance of a metric across one example's epochs: the noise that "
            "asking again averages away.</p></section>")


def _span(interval: dict[str, Any] | None, percent: bool = False) -> str:
    """`` [0.61–0.89]`` (or `` [61.4–88.6 %]``): an interval from summary.json, or nothing without one."""
    if not interval or "low" not in interval:
        return ""
    if percent:
        return f" [{interval['low']:.1%}–{interval['high']:.1%}]".replace("%–", "–")
    return f" [{interval['low']:.3g}–{interval['high']:.3g}]"


def _method(interval: dict[str, Any]) -> str:
    method = interval.get("method", "?")
    return f"{method} (CR1, {interval['clusters']} clusters)" if "clusters" in interval else method


def _methods(intervals: dict[str, Any]) -> str:
    """The methods of a group's intervals, each once: ``wilson, t`` or ``cluster (CR1, 40 clusters)``."""
    found = [intervals[k] for k in ("pass_rate", "success_rate") if isinstance(intervals.get(k), dict)]
    found += list((intervals.get("scores") or {}).values())
    return ", ".join(dict.fromkeys(_method(iv) for iv in found)) or "—"


def _num(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _error_bars(values: list[float | None], intervals: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Plotly's asymmetric ``error_y`` for bars at ``values`` with summary.json ``intervals`` (0 where none)."""
    plus, minus = [], []
    for value, iv in zip(values, intervals):
        has = value is not None and iv is not None and "low" in iv
        plus.append(round(iv["high"] - value, 6) if has else 0)  # type: ignore[index, operator]
        minus.append(round(value - iv["low"], 6) if has else 0)  # type: ignore[index, operator]
    return {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus, "visible": True}


def _charts_section(summary: dict[str, Any], latencies: dict[str, array]) -> str:
    """The pass rate and every score mean per model × probe, each bar with its 95 % interval as an error bar."""
    groups = summary.get("groups") or []
    probes = list(dict.fromkeys(g["probe"] for g in groups))
    models = list(dict.fromkeys(g["model"] for g in groups))
    by_key = {(g["model"], g["probe"]): g for g in groups}

    def pass_rate(model: str, probe: str) -> float | None:
        return (by_key.get((model, probe)) or {}).get("pass_rate")

    def interval(model: str, probe: str, score: str | None) -> dict[str, Any] | None:
        intervals = (by_key.get((model, probe)) or {}).get("intervals") or {}
        return intervals.get("pass_rate") if score is None else (intervals.get("scores") or {}).get(score)

    data = []
    for model in models:
        ys = [pass_rate(model, p) for p in probes]
        ivs = [interval(model, p, None) for p in probes]
        data.append({"type": "bar", "name": model, "x": probes, "y": ys,
                     "text": [rate(y) for y in ys], "textposition": "inside", "insidetextanchor": "start",
                     "error_y": _error_bars(ys, ivs),
                     "hovertext": [_hover(y, iv, percent=True) for y, iv in zip(ys, ivs)], "hoverinfo": "text"})
    bars = figure("pass-rate", data, {
        "barmode": "group", "title": {"text": "Pass rate per probe and model (95 % intervals)"},
        "yaxis": {"tickformat": ".0%", "range": [0, 1.05]}, "showlegend": True,
    })
    # score means: one bar per probe × score, one trace per model
    columns = [(p, name) for p in probes
               for name in sorted({n for m in models for n in ((by_key.get((m, p)) or {}).get("scores") or {})})]
    scores_chart = ""
    if columns:
        score_data = []
        for model in models:
            ys = [((by_key.get((model, p)) or {}).get("scores") or {}).get(name) for p, name in columns]
            ivs = [interval(model, p, name) for p, name in columns]
            score_data.append({"type": "bar", "name": model, "x": [f"{p} · {name}" for p, name in columns], "y": ys,
                               "error_y": _error_bars(ys, ivs),
                               "hovertext": [_hover(y, iv) for y, iv in zip(ys, ivs)], "hoverinfo": "text"})
        scores_chart = figure("score-means", score_data, {
            "barmode": "group", "title": {"text": "Score means per probe and model (95 % intervals)"},
            "showlegend": True,
        })
    return (
        f"<section><h2>Charts</h2>{bars}{scores_chart}"
        f"{latency_chart('latency', latencies)}</section>"
    )


def _hover(value: float | None, interval: dict[str, Any] | None, percent: bool = False) -> str:
    if value is None:
        return "—"
    shown = f"{value:.1%}" if percent else f"{value:.3g}"
    if not interval or "low" not in interval:
        return shown
    return f"{shown}{_span(interval, percent)} · {_method(interval)}"


def _failures_section(failures: list[dict[str, Any]], total: int) -> str:
    if not total:
        return '<section><h2>Failing examples</h2><p class="muted">None: every example succeeded and none failed.</p></section>'
    items = "\n".join(_failure(rec) for rec in failures)
    return (
        "<section><h2>Failing examples</h2>"
        + filter_box("failures", len(failures), total, "failing examples")
        + f'<div id="failures">{items}</div></section>'
    )


def _failure(rec: dict[str, Any]) -> str:
    status = rec.get("status", "?")
    kind = "failed" if status == "success" else status
    model = (rec.get("model") or {}).get("id", "?")
    probe = (rec.get("probe") or {}).get("id", "?")
    parts = [
        f'<div class="example" data-kind="{esc(kind)}"><h3><span class="badge b-{esc(kind)}">{esc(kind)}</span>'
        f"{esc(model)} / {esc(probe)} / {esc(rec.get('example_id'))}</h3><div class=\"grid\">",
        f'<div><div class="label">input</div>{pre(prompt_of(rec.get("input"), rec.get("messages")))}</div>',
    ]
    expected = expected_of(rec.get("input"))
    if expected is not None:
        parts.append(f'<div><div class="label">expected</div>{pre(expected)}</div>')
    parts.append(f'<div><div class="label">output</div>{pre(rec.get("output"))}</div>')
    if rec.get("error"):
        err = rec["error"]
        message = f"{err.get('type')}: {err.get('message')}"
        parts.append(f'<div><div class="label">error</div>{pre(message)}</div>')
    if rec.get("scores"):
        parts.append(f'<div><div class="label">scores</div>{pre(rec["scores"])}</div>')
    parts.append("</div></div>")
    return Markup("".join(parts))
