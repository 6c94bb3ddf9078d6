"""Tables of tracked runs: one run's metrics per model × probe, and runs side by side (metric and
param tables and a self-contained HTML page).

Only run-level metrics (logged without a step) go in the metric tables; step series get a chart each
on the page, one line per run. plotly's JavaScript is inlined once, so the page opens offline.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from insideLLMs.tracking._evaluation import INTERVAL_SUFFIXES
from insideLLMs.tracking.store._views import RunView

ALL = "all"  # the model or probe column of a row over the whole run
# the evaluation's run-level metrics by theme, in the order a reader looks for them
_RESULTS = ("n", "pass_rate", "passed_count", "success_rate", "error_count")
_COST = ("latency_p50_ms", "latency_p95_ms", "latency_mean_ms", "prompt_tokens", "completion_tokens", "total_tokens",
         "wall_time_s")


@dataclass(frozen=True)
class MetricGrid:
    """Run-level metrics as tables: one row per model × probe, one column per metric name, the
    columns split by theme (results, score means, latency and cost, the rest) so each table fits."""

    sections: list[tuple[str, list[str]]]  # (title, metric names)
    rows: list[tuple[str, str, dict[str, float]]]  # (model, probe, metric name -> value)


def metric_grid(metrics: Mapping[str, float], params: Mapping[str, Any]) -> MetricGrid:
    """Rows from a run's run-level metrics: ``<model>/<probe>/<name>`` keys (a grid run) make a row per
    model × probe; the bare names make one more row, over the whole run (labelled with the run's model
    and probe when it has only one of each). A model id may hold ``/`` itself; a probe id and a
    metric name do not."""
    overall: dict[str, float] = {}
    groups: dict[tuple[str, str], dict[str, float]] = {}
    for key, value in metrics.items():
        if key.count("/") >= 2:
            model, probe, name = key.rsplit("/", 2)
            groups.setdefault((model, probe), {})[name] = value
        else:
            overall[key] = value
    rows = [(model, probe, values) for (model, probe), values in groups.items()]
    if overall:
        model, probe = params.get("model_name"), params.get("probe_type")  # "a, b" for several (run_params)
        one_group = not groups and model and probe and ", " not in f"{model}{probe}"
        rows.append((str(model), str(probe), overall) if one_group else (ALL, ALL, overall))
    # an interval is shown with its metric ("0.68 (0.50–0.82)"), not as columns of its own
    names = {name for _, _, values in rows for name in values if not name.endswith(INTERVAL_SUFFIXES)}
    means = sorted(n for n in names if n.endswith("_mean") and n not in _COST)
    other = sorted(names.difference(_RESULTS, _COST, means))
    sections = [("Metrics", [n for n in _RESULTS if n in names]), ("Score means", means),
                ("Latency and tokens", [n for n in _COST if n in names]), ("Other metrics", other)]
    return MetricGrid([(title, cols) for title, cols in sections if cols], rows)


@dataclass(frozen=True)
class Comparison:
    runs: list[RunView]
    metric_names: list[str]
    param_names: list[str]  # params whose values differ between runs come first
    differing_params: set[str]
    series_names: list[str]

    def metric(self, run: RunView, name: str) -> float | None:
        return run.run_metrics.get(name)

    def param(self, run: RunView, name: str) -> Any:
        return run.state.params.get(name)


def compare(runs: list[RunView]) -> Comparison:
    """The runs' run-level metrics and params side by side (the params that differ first), and their series."""
    metric_names = sorted({m for r in runs for m in r.run_metrics})
    param_names = sorted({p for r in runs for p in r.state.params})
    missing = object()
    differing = {p for p in param_names if len({repr(r.state.params.get(p, missing)) for r in runs}) > 1}
    param_names.sort(key=lambda p: (p not in differing, p))
    series = sorted({s for r in runs for s in r.state.series})
    return Comparison(runs, metric_names, param_names, differing, series)


def format_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.6g}"
    return str(value)


def format_with_interval(values: Mapping[str, Any], name: str) -> str:
    """``name``'s value, followed by its 95 % interval when the run logged one: ``0.68 (0.5–0.82)``."""
    low, high = values.get(f"{name}_ci_low"), values.get(f"{name}_ci_high")
    shown = format_value(values.get(name))
    return shown if low is None or high is None else f"{shown} ({format_value(low)}–{format_value(high)})"


def run_label(run: RunView) -> str:
    return f"{run.state.name} ({run.key})" if run.state.name and run.state.name != run.key else run.key


def _table(headers: list[str], rows: list[list[str]], highlight: set[int] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = ' class="diff"' if highlight and i in highlight else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_html(comparison: Comparison, title: str = "insideLLMs — tracked runs compared") -> str:
    import plotly.graph_objects as go
    import plotly.io as pio

    runs = comparison.runs
    labels = [run_label(r) for r in runs]
    overview = _table(
        ["run", "status", "started", "duration (s)", "backends"],
        [[run_label(r), r.status, _when(r.state.started_at), format_value(r.duration_s), ", ".join(r.backends)]
         for r in runs],
    )
    metrics = _table(["metric", *labels],
                     [[m, *(format_value(comparison.metric(r, m)) for r in runs)] for m in comparison.metric_names])
    params = _table(["parameter", *labels],
                    [[p, *(format_value(comparison.param(r, p)) for r in runs)] for p in comparison.param_names],
                    highlight={i for i, p in enumerate(comparison.param_names) if p in comparison.differing_params})
    charts = []
    for i, name in enumerate(comparison.series_names):
        fig = go.Figure()
        for run, label in zip(runs, labels, strict=False):
            points = sorted(run.state.series.get(name, []))
            if points:
                fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], mode="lines", name=label))
        fig.update_layout(title=name, xaxis_title="step", yaxis_title=name, height=360, margin=dict(l=50, r=20, t=50, b=40))
        charts.append(pio.to_html(fig, full_html=False, include_plotlyjs=(i == 0), config={"displaylogo": False}))
    charts_html = "\n".join(charts) if charts else "<p>No step series were logged in these runs.</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5rem 0 1.5rem; }}
th, td {{ border: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: left; font-variant-numeric: tabular-nums; }}
th {{ background: #f4f4f4; }} tr.diff td {{ background: #fff6d6; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<h2>Runs</h2>{overview}
<h2>Metrics</h2>{metrics}
<h2>Parameters</h2><p>Highlighted rows differ between runs.</p>{params}
<h2>Step series</h2>
{charts_html}
</body></html>
"""


def write_html(comparison: Comparison, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(comparison), encoding="utf-8")
    return out


def _when(ts: float | None) -> str:
    if ts is None:
        return "—"
    import datetime as dt

    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")
