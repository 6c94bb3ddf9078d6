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


from insideLLMs.rundir import REPORT, SUMMARY, RunReader, summarize, write_atomic
from insideLLMs.canonical import dumps_pretty
from insideLLMs.report.page import MAX_EXAMPLES, Markup, esc, expected_of, figure, filter_box, latency_chart
from insideLLMs.report.page import page, pre, prompt_of, rate, table

__all__ = ["ReportData", "rebuild_summary", "render_report", "write_report"]


def rebuild_summary(run_dir: Path) -> Path:
    """Recompute summary.json from records.jsonl and timings.jsonl (keeping the recorded wall time)."""
    reader = RunReader(run_dir)
    old = reader.summary or {}
    run_id = (reader.manifest or {}).get("run_id") or old.get("run_id")
    summary = summarize(reader.records(), reader.timings(), run_id=run_id)
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
    if summary is None:  # an interrupted run: summarize what is there
        summary = summarize(reader.records(), reader.timings())
    manifest = reader.manifest or {}
    run_id = manifest.get("run_id") or summary.get("run_id") or "?"
    body = [
        f"<h1>insideLLMs run {esc(run_id)}</h1>",
        f'<p class="meta">{esc(run_dir.name)} · {data.records:,} records · {data.n_failures:,} failing'
        + ("" if reader.complete else " · <b>incomplete run</b>") + "</p>",
        _summary_section(summary),
        _charts_section(summary, data.latencies),
        _failures_section(data.failures, data.n_failures),
    ]
    return page(f"insideLLMs run {run_id}", "\n".join(body))


def _summary_section(summary: dict[str, Any]) -> str:
    groups = summary.get("groups") or []
    score_names = sorted({name for g in groups for name in (g.get("scores") or {})})
    lat = (summary.get("volatile") or {}).get("latency_ms") or {}
    headers = ["model", "probe", "n", "success", "errors", "pass rate", *score_names,
               "tokens in/out", "latency p50 / p95 ms"]
    rows = []
    for g in groups:
        gl = lat.get(f"{g['model']}/{g['probe']}") or {}
        tokens = g.get("tokens") or {}
        rows.append([
            g["model"], g["probe"], f"{g['n']:,}", rate(g.get("success_rate")), g.get("error_count", 0),
            rate(g.get("pass_rate")) + (f" ({g['passed']:,}/{g['scored']:,})" if g.get("scored") else ""),
            *[_num((g.get("scores") or {}).get(name)) for name in score_names],
            f"{tokens.get('prompt', 0):,} / {tokens.get('completion', 0):,}",
            f"{_num(gl.get('p50'))} / {_num(gl.get('p95'))}",
        ])
    return f"<section><h2>Summary per model × probe</h2>{table(headers, rows)}</section>"


def _num(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _charts_section(summary: dict[str, Any], latencies: dict[str, array]) -> str:
    groups = summary.get("groups") or []
    probes = list(dict.fromkeys(g["probe"] for g in groups))
    models = list(dict.fromkeys(g["model"] for g in groups))
    by_key = {(g["model"], g["probe"]): g.get("pass_rate") for g in groups}
    data = [
        {"type": "bar", "name": model, "x": probes, "y": [by_key.get((model, p)) for p in probes],
         "text": [rate(by_key.get((model, p))) for p in probes], "textposition": "auto"}
        for model in models
    ]
    bars = figure("pass-rate", data, {
        "barmode": "group", "title": {"text": "Pass rate per probe and model"},
        "yaxis": {"tickformat": ".0%", "range": [0, 1.05]}, "showlegend": True,
    })
    return (
        f"<section><h2>Charts</h2>{bars}"
        f"{latency_chart('latency', latencies)}</section>"
    )


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
