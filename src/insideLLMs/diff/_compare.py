"""Compare two run directories example by example, and decide whether a CI gate passes.

Records are matched by (model id, probe id, example id) — or by (probe id, example id) with
``match_on="example"``, to gate a model upgrade on its examples — and by the epoch in runs with epochs
(``runner.epochs``; runs with different numbers of epochs are refused). Each pair is one of:

- ``regression``: status success → error/timeout/rate_limited/skipped, passed true → false, or a
  score worse by more than its tolerance;
- ``improvement``: the reverse (a pair that is both worse and better counts as a regression);
- ``changed``: the output or another field differs, the verdict does not;
- ``unchanged``; and ``only-in-baseline`` / ``only-in-candidate``.

Volatile data (timings.jsonl, summary.json's "volatile" section) is never read. A score is
higher-is-better unless its name ends in one of :data:`LOWER_IS_BETTER_SUFFIXES`.

When records carry a ``cluster`` (``dataset.cluster``; the baseline's label, else the candidate's), the
paired intervals are clustered (CR1): each group keeps per metric the count and the sum of the differences
per cluster, so memory grows with the number of clusters (passages, conversations), assumed far smaller
than the number of examples. A pair without a cluster is a cluster of its own. In runs with epochs, the epochs
of one example are one cluster (its ``dataset.cluster`` when it has one, which holds the example's epochs too):
k epochs are not k independent pairs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from insideLLMs.diff._pairing import (
    DEFAULT_MAX_PENDING,
    DiffInputError,
    KeyFn,
    LineMatcher,
    Row,
    _TooFarApart,
    indexed_pairs,
    streaming_pairs,
)
from insideLLMs.diff._cost import CostRow, compare_costs
from insideLLMs.diff._stats import McNemarResult, mcnemar_drop
from insideLLMs.diff._verdict import LOWER_IS_BETTER_SUFFIXES, Classifier, show
from insideLLMs.rundir import INCOMPLETE, MANIFEST, RECORDS
from insideLLMs.stats import ClusterSums, PairedDifference, PairedSums, minimum_detectable_effect, sample_size_for

__all__ = [
    "CLASSES", "PASS_RATE", "Change", "Coverage", "DiffInputError", "DiffResult", "GroupStats",
    "LOWER_IS_BETTER_SUFFIXES", "MatchOn", "diff_runs", "effect_tolerance", "power_at", "run_records_path",
]

MatchOn = Literal["key", "example"]
CLASSES = ("regression", "improvement", "changed", "only-in-baseline", "only-in-candidate", "unchanged")
#: fields that never make a pair "changed": the run id names the run, and the model and probe specs
#: are run configuration (reported once, as ``spec_changes``), not an example's behaviour
IGNORED_FIELDS = ("run_id", "model", "probe")
#: ... and the example's cluster: how the statistics group examples, not what the model did
CLASSIFY_IGNORED = (*IGNORED_FIELDS, "cluster")
MAX_SPEC_CHANGES = 20
DEFAULT_LIMIT = 1000
#: the paired metric of the pass/fail verdict (1 passed, 0 not: an error or a missing verdict counts as a fail,
#: as in McNemar's flips), beside every numeric or boolean score the two runs share
PASS_RATE = "pass_rate"


@dataclass(slots=True)
class Change:
    """One example that is not unchanged, with what a reviewer needs to judge it."""

    kind: str
    model: str
    probe: str
    example_id: str
    reasons: list[str]
    fields: list[str]
    input: Any
    baseline: dict[str, Any] | None
    candidate: dict[str, Any] | None
    epoch: int | None = None  # in runs with epochs

    def to_dict(self) -> dict[str, Any]:
        return {
            "class": self.kind, "model": self.model, "probe": self.probe,
            "example_id": self.example_id, "reasons": self.reasons, "fields": self.fields,
            "input": self.input, "baseline": self.baseline, "candidate": self.candidate,
        } | ({"epoch": self.epoch} if self.epoch is not None else {})


@dataclass(slots=True)
class SideCounts:
    """One side's records of a model × probe: how many, how many with a verdict, how many passed."""

    n: int = 0
    scored: int = 0
    passed: int = 0

    def add(self, passed: bool | None, n: int = 1) -> None:
        """Count ``n`` records whose verdict is ``passed`` (None: not scored)."""
        self.n += n
        if passed is not None:
            self.scored += n
            self.passed += n if passed is True else 0

    def merge(self, other: SideCounts) -> None:
        self.n += other.n
        self.scored += other.scored
        self.passed += other.passed

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "passed": self.passed,
                "pass_rate": round(self.passed / self.scored, 6) if self.scored else None}


@dataclass(slots=True)
class GroupStats:
    """Counts for one model × probe; pass counts are over each side's records with a verdict."""

    model: str
    probe: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLASSES, 0))
    baseline: SideCounts = field(default_factory=SideCounts)
    candidate: SideCounts = field(default_factory=SideCounts)
    pass_to_fail: int = 0
    fail_to_pass: int = 0
    #: running sums of each metric over the pairs that have it on both sides (pass_rate over every pair)
    sums: dict[str, PairedSums] = field(default_factory=dict)
    #: pairs where only the baseline [0] or only the candidate [1] has a metric's value
    one_sided: dict[str, list[int]] = field(default_factory=dict)
    #: per metric, the differences of the pairs with a cluster, summed per cluster
    clusters: dict[str, ClusterSums] = field(default_factory=dict)

    @property
    def mcnemar(self) -> McNemarResult:
        return mcnemar_drop(self.pass_to_fail, self.fail_to_pass)

    @property
    def has_verdicts(self) -> bool:
        return bool(self.baseline.scored or self.candidate.scored)

    def metrics(self) -> list[str]:
        """The metrics with paired values: pass_rate (when either side has verdicts), then scores by name."""
        names = sorted(name for name in self.sums if name != PASS_RATE)
        return ([PASS_RATE] if self.has_verdicts and PASS_RATE in self.sums else []) + names

    def difference(self, metric: str) -> PairedDifference | None:
        """The paired difference of ``metric`` (None with fewer than two pairs), clustered when pairs carry a
        cluster (and fall in two clusters at least; in one, the interval is not clustered and says so: no
        ``clusters``)."""
        sums = self.sums.get(metric)
        if sums is None or sums.n < 2:
            return None
        clusters = self.clusters.get(metric)
        if clusters:
            try:
                return sums.difference(clusters=clusters)
            except ValueError:  # one cluster
                pass
        return sums.difference()

    def cluster(self, metric: str) -> ClusterSums:
        sums = self.clusters.get(metric)
        if sums is None:
            sums = self.clusters[metric] = ClusterSums()
        return sums

    def missing(self, metric: str) -> tuple[int, int]:
        """(pairs lacking the candidate's value, pairs lacking the baseline's) of a metric the other side has."""
        b_only, c_only = self.one_sided.get(metric, (0, 0))
        return b_only, c_only

    def paired_dict(self, metric: str, tolerance: float | None) -> dict[str, Any]:
        """One metric's paired statistics, and its power against ``tolerance`` (when one is set)."""
        sums = self.sums.get(metric)
        lacks_candidate, lacks_baseline = self.missing(metric)
        out: dict[str, Any] = {"n": sums.n if sums else 0, "candidate_lacks": lacks_candidate,
                               "baseline_lacks": lacks_baseline}
        diff = self.difference(metric)
        if diff is None:
            return out
        out.update(diff.to_dict())
        out["baseline_mean"] = round(sums.sum_a / sums.n, 6)  # type: ignore[union-attr]
        out["candidate_mean"] = round(sums.sum_b / sums.n, 6)  # type: ignore[union-attr]
        mde, needed = power_at(diff, tolerance)
        out["mde"] = round(mde, 6)
        if needed is not None:
            out["tolerance"] = tolerance
            out["n_needed"] = needed
        return out

    def to_dict(self, tolerances: Mapping[str, float] | None = None) -> dict[str, Any]:
        return {
            "model": self.model, "probe": self.probe, "counts": self.counts,
            "baseline": self.baseline.to_dict(), "candidate": self.candidate.to_dict(),
            "mcnemar": self.mcnemar.to_dict(),
            "paired": {m: self.paired_dict(m, effect_tolerance(m, tolerances or {})) for m in self.metrics()},
        }

    def add_pair(self, b: dict[str, Any], c: dict[str, Any], cluster: str | None = None) -> None:
        """Fold one matched pair of records (in ``cluster``, when they carry one) into the paired sums of pass
        rate and of every score."""
        sums = self.sums
        pass_sums = sums.get(PASS_RATE)
        if pass_sums is None:
            pass_sums = sums[PASS_RATE] = PairedSums()
        pa, pb = 1.0 if b.get("passed") is True else 0.0, 1.0 if c.get("passed") is True else 0.0
        pass_sums.add(pa, pb)
        if cluster is not None:
            self.cluster(PASS_RATE).add(cluster, pb - pa)
        bs, cs = b.get("scores") or {}, c.get("scores") or {}
        if not (bs or cs):
            return
        for name in bs.keys() | cs.keys():
            va, vb = _number(bs.get(name)), _number(cs.get(name))
            if va is not None and vb is not None:
                metric = sums.get(name)
                if metric is None:
                    metric = sums[name] = PairedSums()
                metric.add(va, vb)
                if cluster is not None:
                    self.cluster(name).add(cluster, vb - va)
            elif va is not None or vb is not None:
                counts = self.one_sided.setdefault(name, [0, 0])
                counts[0 if vb is None else 1] += 1

    def add_same(self, passed: Any, n: int) -> None:
        """Fold the verdicts of ``n`` identical pairs (their scores come through :meth:`add_same_sums`)."""
        pass_sums = self.sums.get(PASS_RATE)
        if pass_sums is None:
            pass_sums = self.sums[PASS_RATE] = PairedSums()
        pass_sums.add_same(1.0 if passed is True else 0.0, n)

    def add_same_sums(self, name: str, n: int, total: float, squares: float) -> None:
        """``n`` identical pairs of score ``name`` whose values sum to ``total`` and their squares to ``squares``."""
        metric = self.sums.get(name)
        if metric is None:
            metric = self.sums[name] = PairedSums()
        metric.add_same_sums(n, total, squares)

    def merge(self, other: GroupStats) -> None:
        for kind, n in other.counts.items():
            self.counts[kind] += n
        self.baseline.merge(other.baseline)
        self.candidate.merge(other.candidate)
        self.pass_to_fail += other.pass_to_fail
        self.fail_to_pass += other.fail_to_pass
        for name, sums in other.sums.items():
            mine = self.sums.get(name)
            if mine is None:
                self.sums[name] = sums
            else:
                mine.merge(sums)
        for name, (b_only, c_only) in other.one_sided.items():
            counts = self.one_sided.setdefault(name, [0, 0])
            counts[0] += b_only
            counts[1] += c_only
        for name, clusters in other.clusters.items():
            self.cluster(name).merge(clusters)


def _number(value: Any) -> float | None:
    """A score's value as a number for the paired statistics (booleans are 0/1); None for anything else."""
    if value.__class__ is bool:
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def power_at(diff: PairedDifference, tolerance: float | None) -> tuple[float, int | None]:
    """(minimum detectable effect, examples needed to detect ``tolerance``; None without one) of a paired
    difference, at alpha 0.05 and power 0.8."""
    se = diff.paired.se
    mde = minimum_detectable_effect(se)
    if not tolerance:
        return mde, None
    return mde, (sample_size_for(tolerance, se, diff.n) if se > 0 else diff.n)


def effect_tolerance(metric: str, tolerances: Mapping[str, float]) -> float | None:
    """The tolerance a user set for ``metric``, the difference worth detecting: its own, else ``"*"`` (a score's
    only: the pass rate takes ``pass_rate=`` alone). None when there is none, or it is 0."""
    tol = tolerances.get(metric)
    if tol is None and metric != PASS_RATE:
        tol = tolerances.get("*")
    return tol or None


@dataclass(frozen=True, slots=True)
class Coverage:
    """How much of the baseline the comparison covered: a gate must not pass on less than it was asked to compare."""

    baseline_n: int
    candidate_n: int
    compared: int  # examples present on both sides
    candidate_complete: bool  # false for an interrupted run (``.incomplete``, or no manifest.json)

    @property
    def missing(self) -> int:
        """Baseline examples the candidate does not have."""
        return self.baseline_n - self.compared

    def problems(self, candidate: Path) -> list[str]:
        """What makes this comparison partial, one sentence each (empty: it covers the whole baseline)."""
        found = []
        if not self.candidate_complete:
            found.append(f"the candidate {candidate} is an incomplete run (interrupted: finish it with --resume)")
        if self.compared == 0:
            found.append(f"no example matched: the baseline has {self.baseline_n:,} and the candidate "
                         f"{self.candidate_n:,}, none with the same key (different probes or models? see --match-on)")
        elif self.missing:
            found.append(f"the candidate lacks {self.missing:,} of the baseline's {self.baseline_n:,} examples")
        return found

    def to_dict(self) -> dict[str, Any]:
        return {"baseline_n": self.baseline_n, "candidate_n": self.candidate_n, "compared": self.compared,
                "candidate_complete": self.candidate_complete}


@dataclass(slots=True)
class DiffResult:
    baseline: Path
    candidate: Path
    baseline_run_id: str | None
    candidate_run_id: str | None
    match_on: MatchOn
    tolerances: dict[str, float]
    counts: dict[str, int]
    groups: list[GroupStats]
    changes: list[Change]
    limit: int
    coverage: Coverage
    spec_changes: list[str] = field(default_factory=list)
    lower_is_better: frozenset[str] = frozenset()  # from --lower-is-better (name suffixes apply as well)
    costs: list[CostRow] = field(default_factory=list)  # tokens and USD of both sides per group, the total last
    epochs: int = 1  # epochs per example of both runs (``runner.epochs``)

    @property
    def total_changes(self) -> int:
        return sum(n for kind, n in self.counts.items() if kind != "unchanged")

    def to_dict(self) -> dict[str, Any]:
        """The diff.json payload: deterministic for the same two inputs (no paths, no clock)."""
        return {
            "baseline": {"run_id": self.baseline_run_id},
            "candidate": {"run_id": self.candidate_run_id},
            "match_on": self.match_on,
            "tolerances": self.tolerances,
            "lower_is_better_suffixes": list(LOWER_IS_BETTER_SUFFIXES),
            "counts": self.counts,
            "coverage": self.coverage.to_dict(),
            "spec_changes": self.spec_changes,
            "groups": [g.to_dict(self.tolerances) for g in self.groups],
            "changes": [c.to_dict() for c in self.changes],
            "changes_total": self.total_changes,
            "changes_truncated": self.total_changes > len(self.changes),
            "cost": {"groups": [row.to_dict() for row in self.costs[:-1]],
                     "total": self.costs[-1].to_dict() if self.costs else None},
        } | ({"epochs": self.epochs} if self.epochs > 1 else {})


def run_records_path(run_dir: Path, role: str) -> Path:
    """``run_dir/records.jsonl``, or a DiffInputError that says what is wrong with ``run_dir``."""
    if not run_dir.exists():
        raise DiffInputError(f"{role} {run_dir}: no such directory")
    if not run_dir.is_dir():
        raise DiffInputError(f"{role} {run_dir}: not a directory (give a run directory)")
    records = run_dir / RECORDS
    if not records.is_file():
        raise DiffInputError(f"{role} {run_dir}: not a run directory (no {RECORDS})")
    return records


def _run_id(run_dir: Path) -> str | None:
    try:
        return orjson.loads((run_dir / "manifest.json").read_bytes()).get("run_id")
    except (OSError, orjson.JSONDecodeError, AttributeError):
        return None


def _side(row: Row) -> dict[str, Any]:
    rec = row[2]
    return {
        "line": row[1], "status": rec.get("status"), "passed": rec.get("passed"),
        "scores": rec.get("scores") or {}, "output": rec.get("output"), "error": rec.get("error"),
    }


def _key_fn(match_on: MatchOn) -> KeyFn:
    """A record's key: (model id, probe id, example id), without the model with ``match_on="example"``, and with
    the epoch in a run with epochs."""
    if match_on == "example":
        return lambda r: (r["probe"]["id"], r["example_id"]) + ((str(r["epoch"]),) if "epoch" in r else ())
    return lambda r: (r["model"]["id"], r["probe"]["id"], r["example_id"]) + ((str(r["epoch"]),) if "epoch" in r else ())


def _cluster_of(rec: dict[str, Any]) -> Any:
    """The cluster a record's pair counts in: its ``dataset.cluster``, else in a run with epochs its example (the
    epochs of one example are one cluster, not k independent pairs), else none (a pair is its own cluster)."""
    cluster = rec.get("cluster")
    if cluster is None and "epoch" in rec:
        return ("example", rec["probe"]["id"], rec["example_id"])
    return cluster


def _epochs_of(run_dir: Path) -> int | None:
    """A finished run's number of epochs (its manifest's; 1 when it names none), None without a manifest."""
    try:
        manifest = orjson.loads((run_dir / MANIFEST).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return manifest.get("epochs", 1) if isinstance(manifest, dict) else None


def _check_epochs(baseline: Path, candidate: Path, seen: tuple[int, int] | None = None) -> None:
    """Runs with different numbers of epochs are not compared: pairs by (example, epoch) would leave epochs
    unpaired, and per-example means of k and k' epochs differ in noise. ``seen``: the epochs found in the records
    (for runs without a manifest)."""
    b, c = _epochs_of(baseline), _epochs_of(candidate)
    if seen is not None:
        b, c = b or seen[0], c or seen[1]
    if b is not None and c is not None and b != c:
        raise DiffInputError(f"{candidate}: has {c} epoch(s) per example, the baseline {baseline} has {b}; "
                             "compare runs with the same runner.epochs")


class _Accumulator:
    """Folds the stream of pairs into counts, per-group stats and the capped list of changes."""

    def __init__(self, classifier: Classifier, match_on: MatchOn, base_path: Path, cand_path: Path, limit: int):
        self.classifier = classifier
        self.match_on = match_on
        self.paths = (base_path, cand_path)
        self.limit = limit
        self.counts = dict.fromkeys(CLASSES, 0)
        self.groups: dict[tuple[str, str], GroupStats] = {}
        self.kept: dict[str, list[Change]] = {k: [] for k in CLASSES if k != "unchanged"}
        self.models: list[str | None] = [None, None]  # the one model per side, for match_on="example"
        self.label = "?"
        #: identical pairs per (model, probe, verdict): {None: count, score: [n, Σx, Σx²]}
        self.identical: dict[tuple[str, str, Any], dict[str | None, Any]] = {}
        #: identical pairs with a cluster per (model, probe, metric, cluster): their differences are all zero
        self.identical_clusters: dict[tuple[str, str, str, Any], int] = {}
        self.ignore = CLASSIFY_IGNORED
        self.spec_changes: set[str] = set()
        self.epochs = [0, 0]  # the most epochs seen on each side (0: records without an epoch)

    def _model(self, side: int, rec: dict[str, Any], lineno: int) -> str:
        model_id = rec["model"]["id"]
        if self.match_on == "example":
            seen = self.models[side]
            if seen is None:
                self.models[side] = model_id
            elif seen != model_id:
                raise DiffInputError(
                    f"{self.paths[side]}:{lineno}: a second model {model_id!r} (after {seen!r}); "
                    "--match-on example compares runs of one model each"
                )
        return model_id

    def _group(self, model: str, probe: str) -> GroupStats:
        g = self.groups.get((model, probe))
        if g is None:
            g = self.groups[(model, probe)] = GroupStats(model, probe)
        return g

    def add_identical(self, rec: dict[str, Any]) -> None:
        """The hot path: a pair identical up to ignored fields. Counted per model, probe and verdict, with each
        numeric score's running [n, Σx, Σx²] (both sides are equal); folded into the groups at the end."""
        key = (rec["model"]["id"], rec["probe"]["id"], rec.get("passed"))
        acc = self.identical.get(key)
        if acc is None:
            acc = self.identical[key] = {}
        acc[None] = acc.get(None, 0) + 1
        scores = rec.get("scores")
        cluster = _cluster_of(rec)
        epoch = rec.get("epoch")
        if epoch is not None:  # an identical pair: the same epoch on both sides
            self.epochs[0], self.epochs[1] = max(self.epochs[0], epoch + 1), max(self.epochs[1], epoch + 1)
        if cluster is not None:
            self._identical_in_cluster(key[0], key[1], PASS_RATE, cluster)
        if scores:
            for name, v in scores.items():
                kind = v.__class__
                if kind is float or kind is int or kind is bool:  # JSON numbers are finite (orjson rejects NaN)
                    sums = acc.get(name)
                    if sums is None:
                        sums = acc[name] = [0, 0.0, 0.0]
                    sums[0] += 1
                    sums[1] += v
                    sums[2] += v * v
                    if cluster is not None:
                        self._identical_in_cluster(key[0], key[1], name, cluster)

    def _identical_in_cluster(self, model: str, probe: str, metric: str, cluster: Any) -> None:
        key = (model, probe, metric, cluster)
        self.identical_clusters[key] = self.identical_clusters.get(key, 0) + 1

    def _fold_identical(self) -> None:
        example = self.match_on == "example"
        for (model, probe, passed), acc in self.identical.items():
            g = self._group(self.label if example else model, probe)
            n = acc.pop(None)
            g.counts["unchanged"] += n
            g.baseline.add(passed, n)
            g.candidate.add(passed, n)
            g.add_same(passed, n)
            for name, (count, total, squares) in acc.items():
                g.add_same_sums(name, count, total, squares)
        self.identical.clear()
        for (model, probe, metric, cluster), count in self.identical_clusters.items():
            self._group(self.label if example else model, probe).cluster(metric).add(cluster, 0.0, count)
        self.identical_clusters.clear()

    def add(self, b_row: Row | None, c_row: Row | None) -> None:
        b = b_row[2] if b_row else None
        c = c_row[2] if c_row else None
        bm = self._model(0, b, b_row[1]) if b_row else None
        cm = self._model(1, c, c_row[1]) if c_row else None
        probe = (b or c)["probe"]["id"]  # type: ignore[index]
        if self.match_on == "example":
            label = self.label = self._example_label()
        else:
            label = bm if bm is not None else cm
        g = self._group(label, probe)  # type: ignore[arg-type]
        for side, rec in enumerate((b, c)):
            if rec is not None:
                (g.candidate if side else g.baseline).add(rec.get("passed"))
                epoch = rec.get("epoch")
                if epoch is not None and epoch >= self.epochs[side]:
                    self.epochs[side] = epoch + 1
        if b is None or c is None:
            kind = "only-in-baseline" if c is None else "only-in-candidate"
            reasons = [f"example only in the {kind[8:]}"]
            fields: list[str] = []
        else:
            for name in ("model", "probe"):
                if b.get(name) != c.get(name) and len(self.spec_changes) < MAX_SPEC_CHANGES:
                    self.spec_changes.add(_spec_change(name, b.get(name), c.get(name)))
            cluster = _cluster_of(b)
            if cluster is None:
                cluster = _cluster_of(c)
            for name in self.ignore:
                b.pop(name, None)
                c.pop(name, None)
            g.add_pair(b, c, cluster)
            if b == c:
                g.counts["unchanged"] += 1
                return
            kind, reasons, fields = self.classifier.classify(b, c)
            bpass, cpass = b.get("passed") is True, c.get("passed") is True
            if bpass and not cpass:
                g.pass_to_fail += 1
            elif cpass and not bpass:
                g.fail_to_pass += 1
        g.counts[kind] += 1
        if kind != "unchanged":
            self.counts[kind] += 1
        kept = self.kept.get(kind)
        if kept is not None and len(kept) < self.limit:
            rec = b or c
            kept.append(Change(
                kind, label, probe, rec["example_id"], reasons, fields,  # type: ignore[index, arg-type]
                (c or b).get("input"),  # type: ignore[union-attr]
                _side(b_row) if b_row else None, _side(c_row) if c_row else None, rec.get("epoch"),  # type: ignore[union-attr]
            ))

    def _example_label(self) -> str:
        bm, cm = self.models
        if bm and cm and bm != cm:
            return f"{bm} → {cm}"
        return bm or cm or "?"

    def result(self, base_dir: Path, cand_dir: Path, tolerances: dict[str, float]) -> DiffResult:
        _check_epochs(base_dir, cand_dir, (max(self.epochs[0], 1), max(self.epochs[1], 1)))
        self._fold_identical()
        self.counts["unchanged"] = sum(g.counts["unchanged"] for g in self.groups.values())
        changes = [ch for kind in CLASSES if kind != "unchanged" for ch in self.kept[kind]][: self.limit]
        if self.match_on == "example":  # labels were fixed before both models were known
            label = self._example_label()
            for g in self.groups.values():
                g.model = label
            for ch in changes:
                ch.model = label
            merged: dict[tuple[str, str], GroupStats] = {}
            for g in self.groups.values():
                merged[(g.model, g.probe)] = _merge_groups(merged.get((g.model, g.probe)), g)
            self.groups = merged
        baseline_n = sum(g.baseline.n for g in self.groups.values())
        coverage = Coverage(
            baseline_n=baseline_n, candidate_n=sum(g.candidate.n for g in self.groups.values()),
            compared=baseline_n - self.counts["only-in-baseline"],
            candidate_complete=(cand_dir / MANIFEST).is_file() and not (cand_dir / INCOMPLETE).exists(),
        )
        return DiffResult(
            baseline=base_dir, candidate=cand_dir, coverage=coverage,
            baseline_run_id=_run_id(base_dir), candidate_run_id=_run_id(cand_dir),
            match_on=self.match_on, tolerances=tolerances, counts=self.counts,
            groups=sorted(self.groups.values(), key=lambda g: (g.model, g.probe)),
            changes=changes, limit=self.limit, spec_changes=sorted(self.spec_changes),
            lower_is_better=self.classifier.lower, epochs=max(self.epochs[0], 1),
        )


def _spec_change(name: str, b: Any, c: Any) -> str:
    b, c = b or {}, c or {}
    if b.get("id") != c.get("id"):
        return f"{name} {b.get('id')} → {c.get('id')}"
    diffs = [f"{k} {show(b.get(k))} → {show(c.get(k))}" for k in sorted(b.keys() | c.keys()) if b.get(k) != c.get(k)]
    text = f"{name} {b.get('id')}: " + "; ".join(diffs)
    return text if len(text) <= 300 else text[:299] + "…"


def _merge_groups(a: GroupStats | None, b: GroupStats) -> GroupStats:
    if a is None:
        return b
    a.merge(b)
    return a


def diff_runs(
    baseline: Path,
    candidate: Path,
    *,
    match_on: MatchOn = "key",
    tolerances: Mapping[str, float] | None = None,
    lower_is_better: frozenset[str] = frozenset(),
    limit: int = DEFAULT_LIMIT,
    max_pending: int = DEFAULT_MAX_PENDING,
) -> DiffResult:
    """Compare two run directories. ``tolerances`` maps score name (or ``"*"``) to allowed change.

    Streams both records.jsonl files; memory stays bounded however large the runs are. ``limit``
    caps how many changes are kept with their details (counts always cover every example).
    Raises :class:`DiffInputError` for a missing or malformed run directory.
    """
    baseline, candidate = Path(baseline), Path(candidate)
    base_records = run_records_path(baseline, "baseline")
    cand_records = run_records_path(candidate, "candidate")
    if base_records.samefile(cand_records):  # a comparison of a run with itself gates nothing
        raise DiffInputError(f"{candidate}: the baseline and the candidate are the same run directory; "
                             "give the run to compare against the baseline")
    _check_epochs(baseline, candidate)
    tols = dict(sorted((tolerances or {}).items()))
    key_fn = _key_fn(match_on)
    def fold(pairs: Callable[[Callable[[dict[str, Any]], None]], Iterator[tuple[Row | None, Row | None]]]) -> DiffResult:
        acc = _Accumulator(Classifier(tols, lower_is_better, CLASSIFY_IGNORED), match_on, base_records, cand_records, limit)
        for b_row, c_row in pairs(acc.add_identical):
            acc.add(b_row, c_row)
        return acc.result(baseline, candidate, tols)

    try:
        result = fold(lambda identical: streaming_pairs(
            base_records, cand_records, key_fn, LineMatcher(IGNORED_FIELDS), identical, max_pending))
    except _TooFarApart:
        result = fold(lambda identical: indexed_pairs(base_records, cand_records, key_fn))
    result.costs = compare_costs(baseline, candidate, [(g.model, g.probe) for g in result.groups], match_on)
    return result
