"""diff.html: a comparison of two runs in one self-contained page, for the people reviewing a gate.

Shows the gate verdict, counts per class, per model × probe pass rates with the McNemar test, a
pass-rate chart (baseline vs candidate), both runs' latency distributions, and the changed
examples side by side with a unified diff of the outputs, filterable by class and text.
"""

from __future__ import annotations

from array import array
from pathlib import Path

from insideLLMs.rundir import TIMINGS, RunDirError, read_jsonl, write_atomic
from insideLLMs.diff._compare import CLASSES, Change, DiffResult
from insideLLMs.diff._gate import GateResult
from insideLLMs.diff._render import output_text, unified_output_diff
from insideLLMs.diff._stats import TEST_NAME
from insideLLMs.report.page import MAX_EXAMPLES, Markup, esc, expected_of, figure, filter_box, latency_chart
from insideLLMs.report.page import page, pre, prompt_of, rate, table

__all__ = ["render_diff_report", "write_diff_report"]


def write_diff_report(result: DiffResult, path: Path, gate: GateResult | None = None) -> Path:
    """Write diff.html for ``result`` to ``path``."""
    path = Path(path)
    write_atomic(path, render_diff_report(result, gate))
    return path


def render_diff_report(result: DiffResult, gate: GateResult | None = None) -> bytes:
    base_id = result.baseline_run_id or result.baseline.name
    cand_id = result.candidate_run_id or result.candidate.name
    body = [
        f"<h1>insideLLMs diff: {esc(base_id)} → {esc(cand_id)}</h1>",
        f'<p class="meta">baseline {esc(result.baseline)} · candidate {esc(result.candidate)} · matched on '
        + ("probe/example (model ignored)" if result.match_on == "example" else "model/probe/example")
        + "</p>",
        "".join(f'<p class="meta">run configuration differs: {esc(line)}</p>' for line in result.spec_changes),
        "".join(f'<p class="gate-fail">partial comparison: {esc(p)}</p>'
                for p in result.coverage.problems(result.candidate)),
        _gate_section(gate),
        _counts_section(result),
        _charts_section(result),
        _changes_section(result),
    ]
    return page(f"insideLLMs diff {base_id} → {cand_id}", "\n".join(b for b in body if b))


def _gate_section(gate: GateResult | None) -> str:
    if gate is None:
        return ""
    if gate.passed:
        checked = ", ".join(gate.reasons) or "no gate option given"
        return f'<section><h2 class="gate-pass">Gate passed</h2><p>{esc(checked)}</p></section>'
    items = "".join(f"<li>{esc(r)}</li>" for r in gate.reasons)
    return f'<section><h2 class="gate-fail">Gate failed</h2><ul>{items}</ul></section>'


def _counts_section(result: DiffResult) -> str:
    counts = table(["class", "examples"], [[Markup(f'<span class="badge b-{k}">{k}</span>'), f"{result.counts[k]:,}"]
                                           for k in CLASSES], cls="narrow")
    rows = []
    for g in result.groups:
        d, m = g.to_dict(), g.mcnemar
        rows.append([
            g.model, g.probe, f"{g.baseline.n:,} / {g.candidate.n:,}",
            f"{rate(d['baseline']['pass_rate'])} → {rate(d['candidate']['pass_rate'])}",
            g.counts["regression"], g.counts["improvement"], g.counts["changed"],
            g.counts["only-in-baseline"] + g.counts["only-in-candidate"],
            f"b={m.b}, c={m.c}, p={m.p_value:.3g}",
        ])
    groups = table(["model", "probe", "n base / cand", "pass rate", "regressed", "improved", "changed",
                    "only one side", "McNemar"], rows)
    return (
        f"<section><h2>What changed</h2>{counts}</section>"
        f"<section><h2>Per model × probe</h2>{groups}"
        f'<p class="muted">McNemar: {esc(TEST_NAME)}; b = pass→fail flips, c = fail→pass flips, '
        "p = probability of at least b of the b + c flips going down by chance.</p></section>"
    )


def _timings(run_dir: Path) -> array:
    path = run_dir / TIMINGS
    out = array("d")
    if path.exists():
        try:
            out.extend(float(t["latency_ms"]) for t in read_jsonl(path))
        except (RunDirError, KeyError, TypeError, ValueError):
            pass  # latency is a volatile extra; a damaged timings file only loses the chart
    return out


def _charts_section(result: DiffResult) -> str:
    labels = [f"{g.model} / {g.probe}" for g in result.groups]
    dicts = [g.to_dict() for g in result.groups]
    data = [
        {"type": "bar", "name": side, "x": labels, "y": [d[side]["pass_rate"] for d in dicts],
         "text": [rate(d[side]["pass_rate"]) for d in dicts], "textposition": "auto"}
        for side in ("baseline", "candidate")
    ]
    bars = figure("pass-rate", data, {
        "barmode": "group", "title": {"text": "Pass rate per model × probe: baseline vs candidate"},
        "yaxis": {"tickformat": ".0%", "range": [0, 1.05]},
    })
    latency = latency_chart("latency", {"baseline": _timings(result.baseline), "candidate": _timings(result.candidate)})
    return f"<section><h2>Charts</h2>{bars}{latency}</section>"


def _changes_section(result: DiffResult) -> str:
    shown = result.changes[:MAX_EXAMPLES]
    if not shown:
        return '<section><h2>Changed examples</h2><p class="muted">None: the runs agree on every example.</p></section>'
    kinds = [k for k in CLASSES if k != "unchanged" and result.counts[k]]
    items = "\n".join(_change(ch) for ch in shown)
    return (
        "<section><h2>Changed examples</h2>"
        + filter_box("changes", len(shown), result.total_changes, "changed examples", kinds)
        + f'<div id="changes">{items}</div></section>'
    )


def _diff_block(change: Change) -> str:
    lines = unified_output_diff(change, context=2)
    if not lines:
        return ""
    html_lines = []
    for ln in lines:
        cls = "add" if ln.startswith("+") and not ln.startswith("+++") else (
            "del" if ln.startswith("-") and not ln.startswith("---") else "")
        html_lines.append(f'<span class="{cls}">{esc(ln) or " "}</span>')
    return f'<div><div class="label">output diff</div><pre class="diff">{"".join(html_lines)}</pre></div>'


def _change(ch: Change) -> str:
    parts = [
        f'<div class="example" data-kind="{esc(ch.kind)}"><h3><span class="badge b-{esc(ch.kind)}">{esc(ch.kind)}</span>'
        f"{esc(ch.model)} / {esc(ch.probe)} / {esc(ch.example_id)}</h3>",
        f'<p class="meta">{esc("; ".join(ch.reasons))}</p><div class="grid">',
        f'<div><div class="label">input</div>{pre(prompt_of(ch.input))}</div>',
    ]
    expected = expected_of(ch.input)
    if expected is not None:
        parts.append(f'<div><div class="label">expected</div>{pre(expected)}</div>')
    for name, side in (("baseline", ch.baseline), ("candidate", ch.candidate)):
        if side is None:
            parts.append(f'<div><div class="label">{name}</div><p class="muted">not in the {name}</p></div>')
            continue
        verdict = f"{side['status']}, passed={side['passed']}"
        body = output_text(side["output"])
        if side.get("error"):
            body += f"\n[{side['error'].get('type')}: {side['error'].get('message')}]"
        parts.append(f'<div><div class="label">{name} output ({esc(verdict)})</div>{pre(body)}</div>')
    parts.append("</div>")
    parts.append(_diff_block(ch))
    parts.append("</div>")
    return "".join(parts)
