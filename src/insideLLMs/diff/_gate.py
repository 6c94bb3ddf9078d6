"""The CI gate on top of a diff: which options fail it, per model × probe which test decided, and with what power.

Per-example gates (``--fail-on-changes``, ``--fail-on-regressions``) count classes. Per-group gates test
each model × probe: the exact McNemar test on pass/fail flips (``--fail-on-significant-regression``), and
the paired 95 % interval of a metric's mean difference (``--fail-on-regression-ci METRIC[:TOL]``), both
optionally Holm-corrected across groups. A per-group pass whose minimum detectable effect (alpha 0.05,
power 0.8) exceeds the tolerance is UNDERPOWERED; ``--fail-on-underpowered`` fails it. A gate never
passes on less than it was asked to compare.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from insideLLMs.diff._compare import PASS_RATE, DiffResult, GroupStats, effect_tolerance, power_at
from insideLLMs.diff._stats import TEST_NAME
from insideLLMs.diff._verdict import lower_is_better
from insideLLMs.errors import UserError
from insideLLMs.stats import (
    CONFIDENCE,
    PairedDifference,
    holm_adjust,
    probability_below,
)

__all__ = ["PAIRED_CI_TEST", "Correction", "GateResult", "GroupVerdict", "evaluate_gate"]

Correction = Literal["none", "holm"]
PAIRED_CI_TEST = "paired 95 % interval of the mean difference (t)"


@dataclass(frozen=True, slots=True)
class GroupVerdict:
    """What one per-group test decided for one gate: which test, on what numbers, and whether it had the power."""

    model: str
    probe: str
    gate: str  # the option that asked for it
    metric: str
    test: str  # the test that decided
    passed: bool
    detail: str  # the numbers, one line
    p_value: float | None
    adjusted_p: float | None  # Holm-adjusted, with --correction holm
    mde: float | None  # minimum detectable effect at this n (alpha 0.05, power 0.8)
    tolerance: float | None  # the difference worth detecting, when the user set one
    n_needed: int | None  # examples needed to detect ``tolerance``

    @property
    def underpowered(self) -> bool:
        """A pass that means little: the smallest difference this n can detect is larger than the tolerance."""
        return self.passed and bool(self.tolerance) and self.mde is not None and self.mde > self.tolerance

    def power_note(self) -> str:
        return (f"UNDERPOWERED: the minimum detectable effect {self.mde:.4g} is larger than the tolerance "
                f"{self.tolerance:g}; about {self.n_needed:,} examples would detect it")

    def to_dict(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 6)

        return {
            "model": self.model, "probe": self.probe, "gate": self.gate, "metric": self.metric, "test": self.test,
            "passed": self.passed, "detail": self.detail, "p_value": r(self.p_value), "adjusted_p": r(self.adjusted_p),
            "mde": r(self.mde), "tolerance": self.tolerance, "n_needed": self.n_needed,
            "underpowered": self.underpowered,
        }


@dataclass(frozen=True, slots=True)
class GateResult:
    passed: bool
    reasons: list[str]  # why it failed, or what was checked when it passed
    verdicts: list[GroupVerdict] = field(default_factory=list)  # per model × probe, for the per-group tests
    correction: str = "none"

    @property
    def underpowered(self) -> list[GroupVerdict]:
        return [v for v in self.verdicts if v.underpowered]

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "reasons": self.reasons, "correction": self.correction,
                "underpowered": bool(self.underpowered), "verdicts": [v.to_dict() for v in self.verdicts]}


def evaluate_gate(
    result: DiffResult,
    *,
    fail_on_changes: bool = False,
    fail_on_regressions: bool = False,
    fail_on_significant_regression: bool = False,
    alpha: float = 0.05,
    allow_missing: bool = False,
    fail_on_regression_ci: Mapping[str, float | None] | None = None,
    fail_on_underpowered: bool = False,
    correction: Correction = "none",
) -> GateResult:
    """Apply the CI gate options to a diff; no option set means the gate always passes.

    A gate that was asked for fails when the comparison is partial: nothing matched (always), or,
    unless ``allow_missing``, the candidate is incomplete or lacks some of the baseline's examples.
    ``fail_on_regression_ci`` maps a metric to its tolerance (None: the ``--tolerance`` set for it, else 0).
    Raises :class:`~insideLLMs.errors.UserError` for a metric neither run has, or ``fail_on_underpowered``
    with nothing to judge power against.
    """
    ci = dict(fail_on_regression_ci or {})
    failures: list[str] = []
    checks: list[str] = []
    if fail_on_changes or fail_on_regressions or fail_on_significant_regression or ci:
        coverage = result.coverage
        if coverage.compared == 0:
            failures.append(coverage.problems(result.candidate)[-1] + "; the gate compared nothing")
        elif not allow_missing:
            failures.extend(f"{p} (--allow-missing to gate on the examples both runs have)"
                            for p in coverage.problems(result.candidate))
    if fail_on_changes:
        checks.append("--fail-on-changes")
        changed = result.total_changes - (result.counts["only-in-baseline"] if allow_missing else 0)
        if changed:
            failures.append(f"{changed} example(s) not unchanged (--fail-on-changes)")
    if fail_on_regressions:
        checks.append("--fail-on-regressions")
        if result.counts["regression"]:
            failures.append(f"{result.counts['regression']} regression(s) (--fail-on-regressions)")
    if result.coverage.compared:  # with nothing matched, the gate fails on that alone
        _check_metrics(result, ci)
    ci = {m: (tol if tol is not None else effect_tolerance(m, result.tolerances) or 0.0) for m, tol in ci.items()}
    power_tolerances = {**{m: t for m, t in result.tolerances.items()}, **{m: t for m, t in ci.items() if t}}
    verdicts: list[GroupVerdict] = []
    if fail_on_significant_regression and result.epochs > 1:
        raise UserError(f"--fail-on-significant-regression: McNemar's test needs independent pairs, and these runs "
                        f"ask each example {result.epochs} times; gate with --fail-on-regression-ci pass_rate[:TOL] "
                        "(its interval is clustered by example)")
    if fail_on_significant_regression:
        checks.append(f"--fail-on-significant-regression (alpha={alpha:g})")
        verdicts.extend(_mcnemar_verdicts(result, alpha, correction, power_tolerances, failures))
    for metric, tol in ci.items():
        checks.append(f"--fail-on-regression-ci {metric}:{tol:g}")
        verdicts.extend(_interval_verdicts(result, metric, tol, correction, power_tolerances, allow_missing, failures))
    if correction == "holm" and verdicts:
        checks.append("--correction holm")
    if fail_on_underpowered:
        if not fail_on_significant_regression and not ci:
            raise UserError("--fail-on-underpowered judges the power of --fail-on-significant-regression or "
                            "--fail-on-regression-ci; give one of them")
        if not any(v.tolerance for v in verdicts) and verdicts:
            raise UserError("--fail-on-underpowered: no tolerance to compare the minimum detectable effect with; "
                            "give one as --fail-on-regression-ci METRIC:TOL (or --tolerance pass_rate=TOL for "
                            "--fail-on-significant-regression)")
        checks.append("--fail-on-underpowered")
        failures.extend(f"{v.model} / {v.probe}: {v.metric} {v.power_note()} (--fail-on-underpowered)"
                        for v in verdicts if v.underpowered)
    if failures:
        return GateResult(False, failures, verdicts, correction)
    return GateResult(True, checks, verdicts, correction)


def _check_metrics(result: DiffResult, ci: Mapping[str, float | None]) -> None:
    """Every metric of --fail-on-regression-ci is one the runs have, or one line says which they have."""
    known: set[str] = set()
    for g in result.groups:
        known.update(g.metrics())
        known.update(g.one_sided)
    for metric in ci:
        if metric not in known:
            have = ", ".join(sorted(known - {PASS_RATE})) or "none"
            raise UserError(f"--fail-on-regression-ci {metric}: neither run has a metric of that name (scores: "
                            f"{have}; {PASS_RATE} for the pass rate)")


def _mcnemar_verdicts(result: DiffResult, alpha: float, correction: Correction,
                      power_tolerances: Mapping[str, float], failures: list[str]) -> list[GroupVerdict]:
    groups = result.groups
    tests = [g.mcnemar for g in groups]
    adjusted = holm_adjust([m.p_value for m in tests]) if correction == "holm" else [None] * len(tests)
    verdicts = []
    tol = effect_tolerance(PASS_RATE, power_tolerances)
    for g, m, adj in zip(groups, tests, adjusted):
        p = m.p_value if adj is None else adj
        dropped = m.b > m.c and p < alpha
        shown = f"p={m.p_value:.3g}" + (f", Holm-adjusted p={adj:.3g}" if adj is not None else "")
        detail = f"McNemar b={m.b} c={m.c} {shown}"
        diff = g.difference(PASS_RATE)
        mde, needed = power_at(diff, tol) if diff is not None else (None, None)
        verdicts.append(GroupVerdict(
            g.model, g.probe, "--fail-on-significant-regression", PASS_RATE, TEST_NAME, not dropped, detail,
            m.p_value, adj, mde, tol, needed,
        ))
        if dropped:
            failures.append(f"{g.model} / {g.probe}: pass rate dropped significantly ({detail} < alpha={alpha:g})")
    return verdicts


def _interval_verdicts(result: DiffResult, metric: str, tol: float, correction: Correction,
                       power_tolerances: Mapping[str, float], allow_missing: bool,
                       failures: list[str]) -> list[GroupVerdict]:
    """--fail-on-regression-ci METRIC:TOL: a group fails when the whole 95 % interval of the paired difference is
    worse than −TOL (above +TOL for a lower-is-better metric), or when it cannot be computed on all pairs."""
    lower = metric != PASS_RATE and lower_is_better(metric, result.lower_is_better)
    rows: list[tuple[GroupStats, PairedDifference]] = []
    for g in result.groups:
        if metric not in g.sums and metric not in g.one_sided or (metric == PASS_RATE and not g.has_verdicts):
            continue  # a probe that does not score this metric: nothing to compare
        where = f"{g.model} / {g.probe}: {metric}"
        lacks_cand, lacks_base = g.missing(metric)
        if (lacks_cand or lacks_base) and not allow_missing:
            sides = [f"the candidate lacks it on {lacks_cand:,}" if lacks_cand else "",
                     f"the baseline lacks it on {lacks_base:,}" if lacks_base else ""]
            failures.append(f"{where}: {' and '.join(x for x in sides if x)} matched example(s) the other side "
                            "scored (errors?); the interval would leave them out (--allow-missing to gate on "
                            "the pairs with both)")
        diff = g.difference(metric)
        if diff is None:
            n = g.sums[metric].n if metric in g.sums else 0
            failures.append(f"{where}: {n} pair(s) with a value on both sides; an interval needs two "
                            "(--fail-on-regression-ci)")
            continue
        rows.append((g, diff))
    # oriented so that higher is better: a lower-is-better metric's difference changes sign
    oriented = [(-d.paired.high, -d.paired.low, -d.paired.estimate) if lower else
                (d.paired.low, d.paired.high, d.paired.estimate) for _, d in rows]
    p_values = [probability_below(est, d.paired.se, -tol, d.paired.df) for (_, _, est), (_, d) in zip(oriented, rows)]
    adjusted = holm_adjust(p_values) if correction == "holm" else [None] * len(rows)
    level = (1 - CONFIDENCE) / 2
    test = PAIRED_CI_TEST + (f", Holm-corrected across {len(rows)} group(s)" if correction == "holm" else "")
    tol_power = effect_tolerance(metric, power_tolerances)
    verdicts = []
    for (g, d), (_low, high, _), p, adj in zip(rows, oriented, p_values, adjusted):
        worse = high < -tol if adj is None else adj < level
        iv = d.paired
        detail = (f"Δ {iv.estimate:+.4g}, 95 % interval [{iv.low:+.4g}, {iv.high:+.4g}] (n={d.n:,}"
                  + (f", clustered: CR1, {iv.clusters} clusters" if iv.clusters is not None else "")
                  + (", lower is better" if lower else "") + ")"
                  + (f", one-sided p={p:.3g}, Holm-adjusted p={adj:.3g}" if adj is not None else ""))
        mde, needed = power_at(d, tol_power)
        verdicts.append(GroupVerdict(g.model, g.probe, "--fail-on-regression-ci", metric, test, not worse, detail,
                                     p, adj, mde, tol_power, needed))
        if worse:
            bound = f"above +{tol:g}" if lower else f"below -{tol:g}"
            why = (f"the whole interval lies {bound}" if adj is None
                   else f"Holm-adjusted p={adj:.3g} < {level:g} for a difference {bound}")
            failures.append(f"{g.model} / {g.probe}: {metric} regressed: {detail}; {why} (--fail-on-regression-ci)")
    return verdicts
