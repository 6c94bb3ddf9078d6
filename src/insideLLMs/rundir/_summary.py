"""summary.json: per model×probe aggregates built in one streaming pass over records and timings.

Records with a ``cluster`` (``dataset.cluster``) get clustered error bars: each rate and mean keeps the
per-cluster count and sum as well (memory grows with the clusters, far fewer than the examples).

With ``runner.epochs`` > 1 an example has one record per epoch (consecutive, in canonical order). Counts,
the success rate and tokens are over records (requests); the pass rate and every score are over examples,
each example's epochs reduced to one value by its reducer (``stats.Reducer``: mean by default), and each
group says how much the epochs of one example varied (``epochs.within_variance``). The success rate's
interval is then clustered by example (epochs of one example are not independent samples).

Everything outside the ``"volatile"`` section is a function of records.jsonl (and the prices the run used, as
manifest.json records them), so it is byte-identical for identical runs; latency and wall time live in
``"volatile"``, which diff ignores.

Cost is computed from token totals per model, never summed record by record: ``cost_usd`` (the graded models)
and ``judge_cost_usd`` (the judges) are None (unknown) when a model has no price or an answer came without
token counts. A record without an answer (an error before any completion) costs nothing.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from insideLLMs.canonical import SCHEMA_VERSION
from insideLLMs.models._pricing import COST_DIGITS, token_cost
from insideLLMs.stats import (
    CONFIDENCE,
    DEFAULT_REDUCER,
    ClusterSums,
    Interval,
    Reducer,
    mean_interval_from_sums,
    percentile,
    proportion_interval,
    within_variance,
)

SUCCESS_RATE, PASS_RATE = "success_rate", "pass_rate"

#: model name -> its price (``{"input": USD per 1M tokens, "output": ...}``) or None when unknown
Prices = Mapping[str, Mapping[str, Any] | None]


def judge_votes(judge: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every judge call in a record's judge section: each verdict, each of several judges' votes, each
    pairwise order. Each names its ``model`` and holds its ``usage``."""
    for verdict in judge.values():
        calls = verdict.get("votes") or verdict.get("orders")
        yield from calls if calls else [verdict]


def record_cost(record: Mapping[str, Any], prices: Prices) -> float | None:
    """What one record cost (its model's answer and its judges' verdicts), as summary.json counts it."""
    group = _Group()
    group.add(record)
    model = usage_cost(prices, group.model_tokens, group.unmetered)
    judge = usage_cost(prices, group.judge_model_tokens, group.judge_unmetered)
    return None if model is None or judge is None else round(model + judge, COST_DIGITS)


def usage_cost(prices: Prices | None, tokens: Mapping[str, list[int]], unmetered: int) -> float | None:
    """What the tokens of each model (``{model: [prompt, completion]}``) cost; None when one model has
    no price or ``unmetered`` answers came without token counts."""
    if prices is None or unmetered:
        return None
    total = 0.0
    for model, (prompt, completion) in sorted(tokens.items()):
        cost = token_cost(prices.get(model), prompt, completion)
        if cost is None:
            return None
        total += cost
    return round(total, COST_DIGITS)


@dataclass
class _Group:
    n: int = 0
    status_counts: dict[str, int] = field(default_factory=dict)
    passed: float = 0  # an int, but for an epochs run whose pass reducer gives fractions
    scored: int = 0
    pass_squares: float = 0.0  # Σ of squared pass values (for fractions; equal to ``passed`` for 0/1 values)
    pass_numeric: bool = False  # some pass value is a fraction (reduced epochs): a normal interval, not Wilson
    score_sums: dict[str, float] = field(default_factory=dict)
    score_squares: dict[str, float] = field(default_factory=dict)
    score_counts: dict[str, int] = field(default_factory=dict)
    numeric_scores: set[str] = field(default_factory=set)  # scores with a value that is not a boolean
    prompt_tokens: int = 0
    completion_tokens: int = 0
    judged: int = 0  # records with a judge section; their judges' tokens are counted apart
    judge_prompt_tokens: int = 0
    judge_completion_tokens: int = 0
    #: token totals per model name ([prompt, completion]), graded models and judges apart: what cost is computed from
    model_tokens: dict[str, list[int]] = field(default_factory=dict)
    judge_model_tokens: dict[str, list[int]] = field(default_factory=dict)
    unmetered: int = 0  # answers that came without token counts: their cost is unknown
    judge_unmetered: int = 0
    latencies: array = field(default_factory=lambda: array("d"))  # 8 bytes per example, not a float object
    #: per metric (success_rate, pass_rate, a score's name): its values' sums per cluster
    clusters: dict[str, ClusterSums] = field(default_factory=dict)
    #: epochs runs: the examples reduced, and per metric [Σ of the examples' within-epoch variances, examples]
    examples: int = 0
    within: dict[str, list[float]] = field(default_factory=dict)
    reducers: dict[str, str] = field(default_factory=dict)  # metric -> the reducer that reduced it

    def add(self, record: dict[str, Any]) -> None:
        """One record of a one-epoch run: :meth:`_count` and :meth:`_values` written out in one. This runs once per
        record: calling the two made ``summarize`` of 300,000 records ~25 % slower (the "summary" rows of
        bench/diff_scale.py time the same code end to end)."""
        self.n += 1
        status = record["status"]
        self.status_counts[status] = self.status_counts.get(status, 0) + 1
        passed = record.get("passed")
        if passed is not None:
            self.scored += 1
            self.passed += bool(passed)
            self.pass_squares += bool(passed)
        for name, value in (record.get("scores") or {}).items():
            if isinstance(value, (int, float)):
                self.score_sums[name] = self.score_sums.get(name, 0.0) + float(value)
                self.score_squares[name] = self.score_squares.get(name, 0.0) + float(value) ** 2
                self.score_counts[name] = self.score_counts.get(name, 0) + 1
                if not isinstance(value, bool):
                    self.numeric_scores.add(name)
        self._tokens(record)
        label = record.get("cluster")
        if label is not None:
            self._cluster(SUCCESS_RATE).add(label, 1.0 if status == "success" else 0.0)
            if passed is not None:
                self._cluster(PASS_RATE).add(label, 1.0 if passed else 0.0)
            for name, value in (record.get("scores") or {}).items():
                if isinstance(value, (int, float)):
                    self._cluster(name).add(label, float(value))

    def _values(self, passed: Any, scores: Mapping[str, Any], label: str | None) -> None:
        """One example's pass verdict and scores (a record's, or an example's epochs reduced)."""
        if passed is not None:
            self.scored += 1
            if passed.__class__ is bool:
                self.passed += passed
                self.pass_squares += passed
            else:
                self.passed += passed
                self.pass_squares += passed * passed
                self.pass_numeric = True
        for name, value in scores.items():
            if isinstance(value, (int, float)):
                self.score_sums[name] = self.score_sums.get(name, 0.0) + float(value)
                self.score_squares[name] = self.score_squares.get(name, 0.0) + float(value) ** 2
                self.score_counts[name] = self.score_counts.get(name, 0) + 1
                if not isinstance(value, bool):
                    self.numeric_scores.add(name)
        if label is not None:
            if passed is not None:
                self._cluster(PASS_RATE).add(label, float(passed))
            for name, value in scores.items():
                if isinstance(value, (int, float)):
                    self._cluster(name).add(label, float(value))

    def _count(self, record: dict[str, Any], label: Any) -> None:
        """What is counted per record (request) of an epochs run: status, tokens, judge tokens; the success
        rate is clustered by ``label`` (the record's cluster, else its example)."""
        self.n += 1
        status = record["status"]
        self.status_counts[status] = self.status_counts.get(status, 0) + 1
        self._cluster(SUCCESS_RATE).add(label, 1.0 if status == "success" else 0.0)
        self._tokens(record)

    def _tokens(self, record: dict[str, Any]) -> None:
        """A record's tokens, per model, and its judges' apart; answers without token counts are unmetered."""
        usage = record.get("usage")
        model = _tokens_of(self.model_tokens, record["model"]["id"])
        if usage:
            prompt, completion = usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0
            self.prompt_tokens += prompt
            self.completion_tokens += completion
            model[0] += prompt
            model[1] += completion
        elif record.get("output") is not None:
            self.unmetered += 1
        judge = record.get("judge")
        if judge:
            self.judged += 1
            for vote in judge_votes(judge):
                used = vote.get("usage")
                tokens = _tokens_of(self.judge_model_tokens, str(vote.get("model")))
                if used:
                    prompt, completion = used.get("prompt_tokens") or 0, used.get("completion_tokens") or 0
                    self.judge_prompt_tokens += prompt
                    self.judge_completion_tokens += completion
                    tokens[0] += prompt
                    tokens[1] += completion
                elif "grade" in vote or vote.get("output") is not None:  # answered, but not metered
                    self.judge_unmetered += 1

    def add_example(self, epochs: list[dict[str, Any]], reducers: "_Reducers") -> None:
        """One example's epoch records (already counted): its pass verdict and each score reduced to one value,
        and the spread of each across the epochs."""
        self.examples += 1
        passes = [float(r["passed"]) for r in epochs if r.get("passed") is not None]
        by_score: dict[str, list[float]] = {}
        numeric: set[str] = set()  # scores with a value that is not a boolean
        for r in epochs:
            for name, value in (r.get("scores") or {}).items():
                if isinstance(value, (int, float)):
                    by_score.setdefault(name, []).append(float(value))
                    if value.__class__ is not bool:
                        numeric.add(name)
        passed = self._reduce(PASS_RATE, passes, reducers, True)
        scores = {}
        for name in sorted(by_score):
            values = by_score[name]
            value = self._reduce(name, values, reducers, name not in numeric)
            if value is not None:
                scores[name] = value
        self._values(passed, scores, epochs[0].get("cluster"))

    def _reduce(self, metric: str, values: list[float], reducers: "_Reducers", boolean: bool) -> Any:
        reducer = reducers.get(metric)
        self.reducers[metric] = reducer.name
        variance = within_variance(values)
        if variance is not None:
            acc = self.within.setdefault(metric, [0.0, 0])
            acc[0] += variance
            acc[1] += 1
        value = reducer.reduce(values)
        if value is not None and boolean and value in (0.0, 1.0):
            return value == 1.0  # 0/1 in, 0/1 out (every epoch agreed, or a 0/1 reducer): a rate, with Wilson
        return value

    def _cluster(self, metric: str) -> ClusterSums:
        sums = self.clusters.get(metric)
        if sums is None:
            sums = self.clusters[metric] = ClusterSums()
        return sums

    def merge(self, other: "_Group") -> None:
        self.n += other.n
        for k, v in other.status_counts.items():
            self.status_counts[k] = self.status_counts.get(k, 0) + v
        self.passed += other.passed
        self.scored += other.scored
        self.pass_squares += other.pass_squares
        self.pass_numeric |= other.pass_numeric
        self.examples += other.examples
        for metric, (total, count) in other.within.items():
            acc = self.within.setdefault(metric, [0.0, 0])
            acc[0] += total
            acc[1] += count
        for metric, name in other.reducers.items():
            self.reducers.setdefault(metric, name)
        for k, v in other.score_sums.items():
            self.score_sums[k] = self.score_sums.get(k, 0.0) + v
            self.score_squares[k] = self.score_squares.get(k, 0.0) + other.score_squares[k]
            self.score_counts[k] = self.score_counts.get(k, 0) + other.score_counts[k]
        self.numeric_scores |= other.numeric_scores
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.judged += other.judged
        self.judge_prompt_tokens += other.judge_prompt_tokens
        self.judge_completion_tokens += other.judge_completion_tokens
        for mine, theirs in ((self.model_tokens, other.model_tokens), (self.judge_model_tokens, other.judge_model_tokens)):
            for name, (prompt, completion) in theirs.items():
                tokens = _tokens_of(mine, name)
                tokens[0] += prompt
                tokens[1] += completion
        self.unmetered += other.unmetered
        self.judge_unmetered += other.judge_unmetered
        self.latencies.extend(other.latencies)
        for metric, sums in other.clusters.items():  # a cluster label names the same cluster in every group
            self._cluster(metric).merge(sums)

    def to_dict(self, prices: Prices | None = None) -> dict[str, Any]:
        success = self.status_counts.get("success", 0)
        out = {
            "n": self.n,
            "status_counts": dict(sorted(self.status_counts.items())),
            "success_rate": _ratio(success, self.n),
            "error_count": self.n - success,
            "passed": self.passed if self.passed.__class__ is int else round(self.passed, 6),
            "scored": self.scored,
            "pass_rate": _ratio(self.passed, self.scored),
            "scores": {k: round(self.score_sums[k] / self.score_counts[k], 6) for k in sorted(self.score_sums)},
            "tokens": {"prompt": self.prompt_tokens, "completion": self.completion_tokens},
            "cost_usd": usage_cost(prices, self.model_tokens, self.unmetered),
            "intervals": self._intervals(success),
        }
        if self.judged:  # only runs with a judge
            out["judge_tokens"] = {"prompt": self.judge_prompt_tokens, "completion": self.judge_completion_tokens}
            out["judge_cost_usd"] = usage_cost(prices, self.judge_model_tokens, self.judge_unmetered)
        return out

    def epochs_dict(self, epochs: int) -> dict[str, Any]:
        """An epochs run's group section: k, the examples, each metric's reducer, and the mean within-example
        variance across epochs (what resampling averaged away)."""
        return {
            "k": epochs, "examples": self.examples, "reducers": dict(sorted(self.reducers.items())),
            "within_variance": {m: round(total / count, 6) for m, (total, count) in sorted(self.within.items())},
        }

    def _intervals(self, success: int) -> dict[str, Any]:
        """The 95 % interval and standard error of each rate and score mean, with its method: Wilson for
        rates and boolean scores, the t interval for numeric score means (two values at least);
        ``cluster`` (CR1, with the number of clusters) for every one of them when records carry a cluster
        (two clusters at least; a rate's interval is kept inside [0, 1])."""
        out: dict[str, Any] = {"confidence": CONFIDENCE}
        shown: dict[str, Any] | None
        if self.n:
            shown = self._clustered(SUCCESS_RATE, self.n, success, success, True)
            out[SUCCESS_RATE] = _shown(proportion_interval(success, self.n)) if shown is _UNCLUSTERED else shown
        if self.scored:
            squares = self.pass_squares if self.pass_numeric else self.passed
            shown = self._clustered(PASS_RATE, self.scored, self.passed, squares, True)
            if shown is not _UNCLUSTERED:
                out[PASS_RATE] = shown
            elif not self.pass_numeric:
                out[PASS_RATE] = _shown(proportion_interval(int(self.passed), self.scored))
            elif self.scored >= 2:
                out[PASS_RATE] = _shown(mean_interval_from_sums(self.scored, self.passed, self.pass_squares).clipped())
        scores: dict[str, Any] = {}
        for name in sorted(self.score_sums):
            n, total, squares = self.score_counts[name], self.score_sums[name], self.score_squares[name]
            boolean = name not in self.numeric_scores
            shown = self._clustered(name, n, total, squares, boolean)
            if shown is not _UNCLUSTERED:
                scores[name] = shown
            elif boolean:
                scores[name] = _shown(proportion_interval(round(total), n))
            elif n >= 2:
                scores[name] = _shown(mean_interval_from_sums(n, total, squares))
        out["scores"] = {k: v for k, v in scores.items() if v is not None}
        return {k: v for k, v in out.items() if v is not None}

    def _clustered(self, metric: str, n: int, total: float, squares: float, rate: bool) -> dict[str, Any] | None:
        """A metric's clustered interval; ``_UNCLUSTERED`` when its records carry no cluster, and None when they
        are all in one cluster (one cluster says nothing about the spread between clusters: no interval)."""
        sums = self.clusters.get(metric)
        if not sums:
            return _UNCLUSTERED
        try:
            interval = sums.interval(n, total, squares)
        except ValueError:
            return None
        return _shown(interval.clipped() if rate else interval)

    def latency(self) -> dict[str, float | None]:
        xs = sorted(self.latencies)
        if not xs:
            return {"p50": None, "p95": None, "mean": None}
        return {
            "p50": round(percentile(xs, 50), 3),
            "p95": round(percentile(xs, 95), 3),
            "mean": round(sum(xs) / len(xs), 3),
        }


#: "this metric's records carry no cluster" (a clustered metric in one cluster has no interval: None)
_UNCLUSTERED: dict[str, Any] = {}


def _shown(interval: Interval) -> dict[str, Any]:
    shown: dict[str, Any] = {"se": round(interval.se, 6), "low": round(interval.low, 6),
                             "high": round(interval.high, 6), "method": interval.method}
    if interval.clusters is not None:
        shown["clusters"] = interval.clusters
    return shown


def _tokens_of(tokens: dict[str, list[int]], model: str) -> list[int]:
    found = tokens.get(model)
    if found is None:
        found = tokens[model] = [0, 0]
    return found


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 6) if b else None


class _Reducers:
    """Which reducer reduces each metric: ``reducer`` is one name for all, or metric name -> name (``pass_rate``
    for the pass verdict; an unlisted metric is reduced by the mean)."""

    def __init__(self, reducer: str | Mapping[str, str] | None, epochs: int | None) -> None:
        default = reducer if isinstance(reducer, str) else DEFAULT_REDUCER
        self.default = Reducer.parse(default, epochs)
        self.named = {k: Reducer.parse(v, epochs) for k, v in (reducer.items() if isinstance(reducer, Mapping) else ())}

    def get(self, metric: str) -> Reducer:
        return self.named.get(metric, self.default)


class SummaryBuilder:
    """Feed records (dicts, in record order) and timings; ``build()`` gives summary.json's content.

    ``epochs`` > 1: each example's consecutive epoch records are reduced by ``reducer`` (see :class:`_Reducers`);
    None: as the records say (records with an ``epoch`` are reduced; k is the number of epochs seen).
    ``prices``: each model's price (manifest.json's ``pricing.models``); without them every cost is unknown."""

    def __init__(self, run_id: str, epochs: int | None = 1, reducer: str | Mapping[str, str] | None = None,
                 prices: Prices | None = None) -> None:
        self.run_id = run_id
        self.prices = prices
        self.epochs = epochs
        self._reducer = reducer
        self._reducers = _Reducers(reducer, epochs) if epochs is not None and epochs > 1 else None
        self._epochs_seen = 0
        self._groups: dict[tuple[str, str], _Group] = {}
        #: epochs runs: per group, the example whose epoch records are being gathered, and those records
        self._open: dict[tuple[str, str], tuple[str, list[dict[str, Any]]]] = {}

    def _group(self, model_id: str, probe_id: str) -> _Group:
        key = (model_id, probe_id)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group()
        return group

    def add_record(self, record: dict[str, Any]) -> None:
        if self._reducers is None and (self.epochs is not None or "epoch" not in record):
            self._group(record["model"]["id"], record["probe"]["id"]).add(record)
            return
        key = (record["model"]["id"], record["probe"]["id"])
        group = self._group(*key)
        if self._reducers is None:
            self._reducers = _Reducers(self._reducer, None)  # records of a run with epochs, k not told
        if self.epochs is None:
            self._epochs_seen = max(self._epochs_seen, record["epoch"] + 1)
        example_id = record["example_id"]
        label = record.get("cluster")
        group._count(record, ("example", key[1], example_id) if label is None else label)
        current = self._open.get(key)
        if current is not None and current[0] == example_id:
            current[1].append(record)
            return
        if current is not None:
            group.add_example(current[1], self._reducers)
        self._open[key] = (example_id, [record])

    def _close_examples(self) -> None:
        assert self._reducers is not None
        for key, (_, records) in self._open.items():
            self._groups[key].add_example(records, self._reducers)
        self._open.clear()

    def add_timing(self, timing: dict[str, Any]) -> None:
        self._group(timing["model"], timing["probe"]).latencies.append(float(timing["latency_ms"]))

    def latencies(self) -> dict[tuple[str, str], array]:
        """The latencies fed so far per (model, probe), in feeding order (not copies)."""
        return {key: group.latencies for key, group in self._groups.items()}

    def build(self, wall_time_s: float | None = None) -> dict[str, Any]:
        epochs = self.epochs or self._epochs_seen
        if self._reducers is not None:
            self._close_examples()
        totals = _Group()
        groups = []
        for (model_id, probe_id), group in self._groups.items():
            totals.merge(group)
            groups.append({"model": model_id, "probe": probe_id, **group.to_dict(self.prices)})
            if self._reducers is not None:
                groups[-1]["epochs"] = group.epochs_dict(epochs)
        totals_dict = totals.to_dict(self.prices)
        if self._reducers is not None:
            totals_dict["epochs"] = totals.epochs_dict(epochs)
        return {
            "run_id": self.run_id,
            "schema_version": SCHEMA_VERSION,
            "groups": groups,
            "totals": totals_dict,
            "volatile": {
                "latency_ms": {f"{m}/{p}": g.latency() for (m, p), g in self._groups.items()}
                | {"all": totals.latency()},
                "wall_time_s": None if wall_time_s is None else round(wall_time_s, 3),
            },
        }


def summary_settings(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """How a run's summary is built, as its manifest.json records it: ``epochs``, ``reducer`` and ``prices``
    (keyword arguments for :func:`summarize` and :class:`SummaryBuilder`)."""
    return {"epochs": manifest.get("epochs"), "reducer": manifest.get("reducer"),
            "prices": (manifest.get("pricing") or {}).get("models")}


def summarize(
    records: Iterable[dict[str, Any]], timings: Iterable[dict[str, Any]] = (), *, run_id: str | None = None,
    epochs: int | None = None, reducer: str | Mapping[str, str] | None = None, prices: Prices | None = None,
) -> dict[str, Any]:
    """summary.json content from record dicts (and optional timing dicts), streaming; ``epochs`` and ``reducer``
    as the run had them (its manifest says; by default, epochs as the records say, reduced by the mean); ``prices``
    as its manifest.json records them (``pricing.models``), else costs are unknown."""
    builder: SummaryBuilder | None = SummaryBuilder(run_id, epochs, reducer, prices) if run_id else None
    for record in records:
        if builder is None:
            builder = SummaryBuilder(record["run_id"], epochs, reducer, prices)
        builder.add_record(record)
    builder = builder or SummaryBuilder("", epochs, reducer, prices)
    for timing in timings:
        builder.add_timing(timing)
    return builder.build()
