"""diff.html: a comparison of two runs in one self-contained page, for the people reviewing a gate.

Opens with the gate verdict (which test decided each group, and whether it had the power to) and the
paired intervals per model × probe × metric; then counts per class, pass rates with the McNemar test, a
pass-rate chart (baseline vs candidate), both runs' latency distributions, and the changed examples side
by side with a unified diff of the outputs — pass→fail flips first, filterable by class and text.
"""

from __future__ import annotations

from array import array
from pathlib import Path
from typing import Any

from insideLLMs.rundir import TIMINGS, RunDirError, read_jsonl, write_atomic
from insideLLMs.diff._compare import CLASSES, Change, DiffResult, effect_tolerance
from insideLLMs.diff._gate import GateResult
from insideLLMs.diff._cost import side_tokens
from insideLLMs.diff._render import clustered, count, matched_on, output_text, unified_output_diff
from insideLLMs.diff._stats import TEST_NAME
from insideLLMs.report.page import MAX_EXAMPLES, Markup, esc, expected_of, figure, filter_box, latency_chart
from insideLLMs.report.page import page, pre, prompt_of, rate, table, usd

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
        + esc(matched_on(result)) + "</p>",
        "".join(f'<p class="meta">run configuration differs: {esc(line)}</p>' for line in result.spec_changes),
        "".join(f'<p class="gate-fail">partial comparison: {esc(p)}</p>'
                for p in result.coverage.problems(result.candidate)),
        _gate_section(gate),
        _intervals_section(result),
        _verdicts_section(gate),
        _counts_section(result),
        _cost_section(result),
        _charts_section(result),
        _changes_section(result),
    ]
    return page(f"insideLLMs diff {base_id} → {cand_id}", "\n".join(b for b in body if b))


def _gate_section(gate: GateResult | None) -> str:
    if gate is None:
        return ""
    if gate.passed:
        checked = ", ".join(gate.reasons) or "no gate option given"
        head = f'<h2 class="gate-pass">Gate passed</h2><p>{esc(checked)}</p>'
        if gate.underpowered:
            head += (f'<p class="gate-fail"><span class="badge b-fail">UNDERPOWERED</span>{len(gate.underpowered)} '
                     "verdict(s) passed on too few examples to see a change as large as the tolerance "
                     "(--fail-on-underpowered fails them).</p>")
    else:
        items = "".join(f"<li>{esc(r)}</li>" for r in gate.reasons)
        head = f'<h2 class="gate-fail">Gate failed</h2><ul>{items}</ul>'
    return f'<section id="gate">{head}</section>'


def _verdicts_section(gate: GateResult | None) -> str:
    """Per model × probe: which test decided the gate's verdict, on what numbers, and whether it had the power."""
    if gate is None or not gate.verdicts:
        return ""
    rows = []
    for v in gate.verdicts:
        mark = "UNDERPOWERED" if v.underpowered else ("pass" if v.passed else "fail")
        power = "" if v.mde is None else f"MDE {v.mde:.4g}" + (
            f" vs tolerance {v.tolerance:g}; n for it: {v.n_needed:,}" if v.n_needed is not None else "")
        rows.append([v.model, v.probe, v.metric, v.gate, v.test,
                     Markup(f'<span class="badge b-{"fail" if v.underpowered or not v.passed else "pass"}">'
                            f"{esc(mark)}</span>"), v.detail, power])
    verdicts = table(["model", "probe", "metric", "gate", "decided by", "verdict", "numbers", "power"], rows,
                     cls="verdicts")
    return f'<section id="verdicts"><h2>Gate verdicts per model × probe</h2>{verdicts}</section>'


def _interval(d: dict[str, Any], key: str) -> str:
    iv = d[key]
    return f"[{iv['low']:+.4g}, {iv['high']:+.4g}]" + clustered(iv)


def _intervals_section(result: DiffResult) -> str:
    """Per model × probe × metric: the paired difference and its 95 % interval, the unpaired one beside it, the
    correlation that made the difference, and the power (minimum detectable effect, n for the tolerance)."""
    rows = []
    for g in result.groups:
        for metric in g.metrics():
            d = g.paired_dict(metric, effect_tolerance(metric, result.tolerances))
            if "paired" not in d:
                rows.append([g.model, g.probe, metric, f"{d['n']:,}", "—", "—", "—", "too few pairs", "—", "—", "—",
                             "—"])
                continue
            r = "—" if d["correlation"] is None else f"{d['correlation']:.2f}"
            rows.append([
                g.model, g.probe, metric, f"{d['n']:,}", f"{d['baseline_mean']:.4g}", f"{d['candidate_mean']:.4g}",
                f"{d['paired']['estimate']:+.4g}", _interval(d, "paired"), f"{d['paired']['se']:.3g}",
                _interval(d, "unpaired"), r,
                f"{d['mde']:.4g}" + (f" (n for {d['tolerance']:g}: {d['n_needed']:,})" if "n_needed" in d else ""),
            ])
    if not rows:
        return ""
    intervals = table(["model", "probe", "metric", "pairs", "baseline", "candidate", "Δ", "paired 95 % interval",
                       "se", "unpaired 95 % interval", "r", "MDE"], rows, cls="intervals")
    return (
        f'<section id="intervals"><h2>Paired differences (candidate − baseline, 95 % intervals)</h2>{intervals}'
        '<p class="muted">Over the examples both runs have. pass_rate counts an error or a missing verdict as a '
        "fail. The paired interval uses each example's own difference; the unpaired one is what two independent "
        "samples would give, and the correlation r between the runs is what pairing buys. Clustered: the "
        "records name a cluster (dataset.cluster), and the standard error is cluster-robust (CR1). MDE: the smallest true "
        "difference found 80 % of the time at alpha 0.05 with this many pairs.</p></section>"
    )


def _cost_section(result: DiffResult) -> str:
    """Cost and tokens of both runs and the change, per model × probe and in total (— where unknown)."""
    if not result.costs:
        return ""
    judged = any(row.judged for row in result.costs)

    rows = []
    for row in result.costs:
        b, c, change = row.baseline or {}, row.candidate or {}, row.change
        bt, ct = side_tokens(row.baseline), side_tokens(row.candidate)
        cells = [row.model if row.probe else Markup("<b>total</b>"), row.probe,
                 usd(b.get("cost_usd")), usd(c.get("cost_usd")), usd(change["cost_usd"], sign=True),
                 count(bt), count(ct), count(None if bt is None or ct is None else ct - bt, sign=True)]
        if judged:
            cells += [usd(b.get("judge_cost_usd")), usd(c.get("judge_cost_usd")),
                      usd(change["judge_cost_usd"], sign=True)]
        rows.append(cells)
    headers = ["model", "probe", "cost base", "cost cand", "Δ cost", "tokens base", "tokens cand", "Δ tokens"]
    if judged:
        headers += ["judge cost base", "judge cost cand", "Δ judge cost"]
    return (f'<section id="cost"><h2>Cost and tokens</h2>{table(headers, rows)}'
            '<p class="muted">List prices of the tokens each run\'s provider reported, at the prices that run '
            "used (its manifest.json); — where a model has no price or a run has no summary.json.</p></section>")


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
            f"b={m.b}, c={m.c}" + ("" if result.epochs > 1 else f", p={m.p_value:.3g}"),
        ])
    groups = table(["model", "probe", "n base / cand", "pass rate", "regressed", "improved", "changed",
                    "only one side", "McNemar"], rows)
    return (
        f"<section><h2>What changed</h2>{counts}</section>"
        f"<section><h2>Per model × probe</h2>{groups}"
        f'<p class="muted">McNemar: {esc(TEST_NAME)}; b = pass→fail flips, c = fail→pass flips, '
        "p = probability of at least b of the b + c flips going down by chance"
        + (" (not shown with epochs: the epochs of one example are not independent pairs)" if result.epochs > 1 else "")
        + ".</p></section>"
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


def flip(ch: Change) -> str:
    """``pass→fail``, ``fail→pass`` or ``""``: how the example's verdict moved."""
    if ch.baseline is None or ch.candidate is None:
        return ""
    before, after = ch.baseline.get("passed") is True, ch.candidate.get("passed") is True
    return "" if before == after else ("pass→fail" if before else "fail→pass")


_ORDER = {"regression": 1, "improvement": 3, "changed": 4, "only-in-baseline": 5, "only-in-candidate": 5}


def _rank(ch: Change) -> int:
    """pass→fail flips first, then the other regressions, fail→pass flips, other improvements, the rest."""
    moved = flip(ch)
    if moved == "pass→fail":
        return 0
    if moved == "fail→pass":
        return 2
    return _ORDER.get(ch.kind, 6)


# the class filter's select, set by the three buttons (the page's own filter script does the hiding)
_PICK_JS = """<script>(function(){
 document.querySelectorAll('button.pick').forEach(function(b){
  b.addEventListener('click',function(){
   var sel=document.querySelector('select.kind[data-target="'+b.dataset.target+'"]');
   if(sel){sel.value=b.dataset.kind;sel.dispatchEvent(new Event('input'));}
   document.querySelectorAll('button.pick').forEach(function(o){o.setAttribute('aria-pressed',o===b?'true':'false');});
  });
 });
})();</script>"""
_PICK_CSS = ("<style>button.pick{padding:4px 10px;border:1px solid #d0d5dd;border-radius:6px;background:#fff;"
             "cursor:pointer;margin-right:4px}button.pick[aria-pressed=true]{background:#1d2330;color:#fff}</style>")


def _changes_section(result: DiffResult) -> str:
    shown = sorted(result.changes[:MAX_EXAMPLES], key=_rank)
    if not shown:
        return '<section><h2>Changed examples</h2><p class="muted">None: the runs agree on every example.</p></section>'
    kinds = ["regression", "improvement"] + [k for k in CLASSES[2:] if k != "unchanged" and result.counts[k]]
    picks = "".join(
        f'<button type="button" class="pick" data-target="changes" data-kind="{kind}" '
        f'aria-pressed="{"true" if not kind else "false"}">{label}</button>'
        for kind, label in (("regression", "Regressions"), ("improvement", "Improvements"), ("", "All")))
    items = "\n".join(_change(ch) for ch in shown)
    return (
        f"<section><h2>Changed examples</h2>{_PICK_CSS}"
        f'<p class="muted">Pass→fail flips first, then other regressions, fail→pass flips, other improvements and '
        f"the rest.</p><div class=\"picks\">{picks}</div>"
        + filter_box("changes", len(shown), result.total_changes, "changed examples", kinds)
        + f'<div id="changes">{items}</div>{_PICK_JS}</section>'
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
        f'<div class="example" data-kind="{esc(ch.kind)}" data-flip="{flip(ch)}">'
        f'<h3><span class="badge b-{esc(ch.kind)}">{esc(ch.kind)}</span>'
        + (f'<span class="badge b-{esc(ch.kind)}">{flip(ch)}</span>' if flip(ch) else "")
        + f"{esc(ch.model)} / {esc(ch.probe)} / {esc(ch.example_id)}"
        + (f" / epoch {ch.epoch}" if ch.epoch is not None else "") + "</h3>",
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
