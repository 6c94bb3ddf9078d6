"""Turn a :class:`~insideLLMs.diff._compare.DiffResult` into what people and machines read: text and JSON."""

from __future__ import annotations

import difflib
from typing import Any

from insideLLMs import canonical
from insideLLMs.diff._cost import side_tokens
from insideLLMs.diff._compare import CLASSES, Change, DiffResult, GroupStats, effect_tolerance
from insideLLMs.diff._gate import GateResult
from insideLLMs.diff._stats import TEST_NAME
from insideLLMs.report.page import usd

MAX_DIFF_LINES = 14
MAX_LINE_CHARS = 160


def output_text(output: Any) -> str:
    """A record's output as one text: multi-answer probes store a list of answers."""
    if output is None:
        return ""
    if isinstance(output, list):
        return "\n".join(f"[answer {i + 1}] {t}" for i, t in enumerate(output))
    return str(output)


def unified_output_diff(change: Change, context: int = 1) -> list[str]:
    """A compact unified diff of baseline → candidate output ('' when the texts are equal)."""
    if change.baseline is None or change.candidate is None:
        return []
    a = output_text(change.baseline["output"]).splitlines()
    b = output_text(change.candidate["output"]).splitlines()
    if a == b:
        return []
    lines = list(difflib.unified_diff(a, b, "baseline output", "candidate output", lineterm="", n=context))
    clipped = [ln if len(ln) <= MAX_LINE_CHARS else ln[: MAX_LINE_CHARS - 1] + "…" for ln in lines]
    if len(clipped) > MAX_DIFF_LINES:
        clipped = clipped[:MAX_DIFF_LINES] + [f"… {len(lines) - MAX_DIFF_LINES} more diff lines"]
    return clipped


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def signed(x: float) -> str:
    """A difference with its sign, four significant digits."""
    return f"{x:+.4g}"


def clustered(interval: dict[str, Any]) -> str:
    """`` clustered (CR1, 12 clusters)`` for an interval with clustered errors, else nothing."""
    return f" clustered (CR1, {interval['clusters']} clusters)" if "clusters" in interval else ""


def paired_lines(g: GroupStats, tolerances: dict[str, float]) -> list[str]:
    """One line per metric of a group: the paired difference, its interval, the unpaired one, r, n, power."""
    lines = []
    for metric in g.metrics():
        d = g.paired_dict(metric, effect_tolerance(metric, tolerances))
        if "paired" not in d:
            lines.append(f"    {metric}: {d['n']} pair(s), too few for an interval")
            continue
        pi, ui = d["paired"], d["unpaired"]
        r = "—" if d["correlation"] is None else f"{d['correlation']:.2f}"
        line = (f"    {metric}: Δ {signed(pi['estimate'])}, paired 95 %{clustered(pi)} [{signed(pi['low'])}, "
                f"{signed(pi['high'])}]"
                f" (unpaired [{signed(ui['low'])}, {signed(ui['high'])}]), r={r}, n={d['n']:,}, MDE {d['mde']:.4g}")
        if "n_needed" in d:
            line += f", n for {d['tolerance']:g}: {d['n_needed']:,}"
        lines.append(line)
    return lines


def _run_label(path: Any, run_id: str | None) -> str:
    return f"{path}" + (f" (run {run_id})" if run_id else "")


def matched_on(result: DiffResult) -> str:
    """How records were paired: ``model/probe/example`` (or without the model), and the epoch in runs with epochs."""
    text = "probe/example (model ignored)" if result.match_on == "example" else "model/probe/example"
    if result.epochs > 1:
        text += f" and epoch ({result.epochs} epochs per example; intervals clustered by example)"
    return text


def render_text(result: DiffResult, gate: GateResult | None = None, top: int = 10) -> str:
    """The human summary: counts per class, per model × probe, then the top ``top`` changes."""
    out: list[str] = [
        f"baseline:  {_run_label(result.baseline, result.baseline_run_id)}",
        f"candidate: {_run_label(result.candidate, result.candidate_run_id)}",
        "matched on " + matched_on(result),
        "",
    ]
    problems = result.coverage.problems(result.candidate)
    if problems:
        out.extend(f"! partial comparison: {p}" for p in problems)
        out.append("")
    if result.spec_changes:
        out.append("run configuration differs (not counted per example):")
        out.extend(f"  {line}" for line in result.spec_changes)
        out.append("")
    width = max(len(k) for k in CLASSES)
    for kind in CLASSES:
        out.append(f"  {kind:<{width}}  {result.counts[kind]:>9,}")
    out.append("")
    if result.groups:
        epochs = result.epochs > 1  # epoch pairs are not independent: no McNemar p-value
        out.append("per model × probe (" + ("pairs are (example, epoch); no McNemar test, its pairs must be "
                                           "independent" if epochs else f"{TEST_NAME} for a drop in pass rate") + "):")
        for g in result.groups:
            d = g.to_dict()
            m = g.mcnemar
            out.append(
                f"  {g.model} / {g.probe}: pass rate {_rate(d['baseline']['pass_rate'])} → "
                f"{_rate(d['candidate']['pass_rate'])}; {g.counts['regression']} regressed, "
                f"{g.counts['improvement']} improved, {g.counts['changed']} changed; "
                f"flips pass→fail b={m.b}, fail→pass c={m.c}" + ("" if epochs else f", p={m.p_value:.3g}")
            )
            out.extend(paired_lines(g, result.tolerances))
        out.append("  (Δ = candidate − baseline over the examples both runs have; MDE = the smallest true Δ "
                   "found 80 % of the time at alpha 0.05)")
        out.append("")
    out.extend(cost_lines(result))
    shown = result.changes[:top]
    if shown:
        more = result.total_changes - len(shown)
        out.append(f"top {len(shown)} change(s)" + (f" ({more:,} more not shown)" if more > 0 else "") + ":")
        for ch in shown:
            out.extend(_render_change(ch))
    else:
        out.append("no changes.")
    if gate is not None:
        out.append("")
        out.extend(gate_lines(gate))
    return "\n".join(out) + "\n"


def count(value: int | None, sign: bool = False) -> str:
    """A token count (``+1,234`` for a change), ``—`` when unknown."""
    return "—" if value is None else (f"{value:+,}" if sign else f"{value:,}")


def _change(b: Any, c: Any, shown: Any) -> str:
    return "—" if b is None or c is None else shown(c - b)


def cost_lines(result: DiffResult) -> list[str]:
    """Cost and tokens of both runs and the change, per model × probe and in total (— where unknown)."""
    if not result.costs:
        return []
    out = ["cost and tokens (baseline → candidate, change):"]
    for row in result.costs:
        b, c = row.baseline, row.candidate
        name = "total" if row.model == "total" and not row.probe else f"{row.model} / {row.probe}"
        bc, cc = (b or {}).get("cost_usd"), (c or {}).get("cost_usd")
        bt, ct = side_tokens(b), side_tokens(c)
        line = (f"  {name}: cost {usd(bc)} → {usd(cc)} ({_change(bc, cc, lambda d: usd(d, sign=True))}); "
                f"tokens {count(bt)} → {count(ct)} ({_change(bt, ct, lambda d: count(d, True))})")
        if row.judged:
            bj, cj = (b or {}).get("judge_cost_usd"), (c or {}).get("judge_cost_usd")
            bjt, cjt = side_tokens(b, True), side_tokens(c, True)
            line += (f"; judge cost {usd(bj)} → {usd(cj)} ({_change(bj, cj, lambda d: usd(d, sign=True))}), "
                     f"judge tokens {count(bjt)} → {count(cjt)} ({_change(bjt, cjt, lambda d: count(d, True))})")
        out.append(line)
    out.append("")
    return out


def gate_lines(gate: GateResult) -> list[str]:
    """The verdict, then per model × probe which test decided and whether it had the power to."""
    out = []
    if gate.passed:
        checked = ", ".join(gate.reasons) if gate.reasons else "no gate option given"
        out.append(f"gate: PASSED ({checked})")
        if gate.underpowered:
            out.append(f"  UNDERPOWERED: {len(gate.underpowered)} verdict(s) passed on too few examples to see "
                       "a change as large as the tolerance (--fail-on-underpowered fails them)")
    else:
        out.append("gate: FAILED")
        out.extend(f"  - {r}" for r in gate.reasons)
    if gate.verdicts:
        out.append("  decided per model × probe:")
    for v in gate.verdicts:
        out.append(f"    {v.model} / {v.probe} {v.metric}: {'pass' if v.passed else 'FAIL'} by {v.test} ({v.detail})")
        if v.underpowered:
            out.append(f"      {v.power_note()}")
    return out


def _render_change(ch: Change) -> list[str]:
    where = []
    if ch.baseline:
        where.append(f"baseline line {ch.baseline['line']}")
    if ch.candidate:
        where.append(f"candidate line {ch.candidate['line']}")
    epoch = f" / epoch {ch.epoch}" if ch.epoch is not None else ""
    lines = [f"[{ch.kind}] {ch.model} / {ch.probe} / {ch.example_id}{epoch}  ({', '.join(where)})"]
    lines.extend(f"    {r}" for r in ch.reasons)
    for side in (ch.baseline, ch.candidate):
        if side and side.get("error"):
            err = side["error"]
            lines.append(f"    error: {err.get('type')}: {str(err.get('message'))[:MAX_LINE_CHARS]}")
    lines.extend(f"    {ln}" for ln in unified_output_diff(ch))
    return lines


def render_json(result: DiffResult, gate: GateResult | None = None) -> bytes:
    """diff.json: canonical JSON (sorted keys, compact) plus a newline; same inputs, same bytes."""
    payload = result.to_dict()
    if gate is not None:
        payload["gate"] = gate.to_dict()
    return canonical.dumps_bytes(payload) + b"\n"
