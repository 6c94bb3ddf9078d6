"""``TrackingListener``: turns the runner's events into tracker calls, for ``insidellms run``/``harness``.

What a tracked run records: params (model, provider, generation, probe, dataset, concurrency,
run_id, library version), a step series per example (latency_ms, success, passed, each score),
final metrics from the summary (per model×probe too when there are several), the run directory's
files as artifacts, the per-example records as a table, and tags (config tags, experiment,
library version, environment). Tracking never raises into the run: failures are warned once.

Per example the listener only logs a few numbers. The table is not built here: it points at the
records.jsonl artifact and is flattened at delivery time, by the sinks that show tables (table.py).
"""

from __future__ import annotations

import os
import platform
from typing import TYPE_CHECKING, Any, Callable

from insideLLMs.canonical import dumps_bytes
from insideLLMs.events import ExampleFinished, RunFinished, RunStarted
from insideLLMs.tracking.config import TrackingConfig
from insideLLMs.tracking.tracker import Tracker, TrackingRun

if TYPE_CHECKING:
    from insideLLMs.tracking.delivery_process import Pending

_CI_VARS = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "JENKINS_URL", "CIRCLECI", "TF_BUILD")
_END_STATUS = {"finished": "finished", "failed": "failed", "interrupted": "killed"}
_NUMBERS = (float, int, bool)
RECORDS, TIMINGS = "records.jsonl", "timings.jsonl"
TABLE_NAME = "examples"


def environment_tags() -> dict[str, str]:
    ci = any(os.environ.get(v) for v in _CI_VARS)
    return {"environment": "ci" if ci else "local", "python": platform.python_version()}


def _joined(values: list[Any]) -> str:
    return ", ".join(dict.fromkeys(str(v) for v in values if v is not None))


def run_params(event: RunStarted) -> dict[str, Any]:
    """The flat parameters of a run, from what the runner says about it."""
    params: dict[str, Any] = {}
    models, probes, datasets = event.models, event.probes, event.datasets
    params["model_name"] = _joined([m.get("id") for m in models])
    params["provider"] = _joined([m.get("provider") for m in models])
    if len(models) == 1:
        for key, value in (models[0].get("params") or {}).items():
            params[f"model.{key}"] = value
    params["probe_type"] = _joined([p.get("id") for p in probes])
    if len(probes) == 1:
        params["probe_version"] = probes[0].get("version")
        for key, value in (probes[0].get("params") or {}).items():
            params[f"probe.{key}"] = value
    params.update(event.generation)
    if len(datasets) == 1:
        d = datasets[0]
        params.update(dataset_name=d.get("name"), dataset_path=d.get("source"), dataset_hash=d.get("hash"),
                      dataset_size=d.get("size"))
    elif datasets:
        params["dataset_name"] = _joined([d.get("name") for d in datasets])
        params["dataset_size"] = sum(d.get("size") or 0 for d in datasets)
        for d in datasets:
            prefix = f"dataset.{d.get('probe') or d.get('name')}"
            params.update({f"{prefix}.name": d.get("name"), f"{prefix}.path": d.get("source"),
                           f"{prefix}.hash": d.get("hash"), f"{prefix}.size": d.get("size")})
    params.update(event.runner)
    params["run_id"] = event.run_id
    params["run_dir"] = str(event.run_dir) if event.run_dir else None
    params["total_examples"] = event.total
    params["insidellms_version"] = event.library_version
    return params


def default_run_name(event: RunStarted) -> str:
    probe = event.probes[0]["id"] if event.probes else "run"
    model = event.models[0]["id"] if event.models else "model"
    more = len(event.models) * len(event.probes) - 1
    return f"{probe}-{model}" + (f"+{more}" if more > 0 else "")


def _group_metrics(prefix: str, group: dict[str, Any], latency: dict[str, Any] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in ("n", "success_rate", "error_count", "pass_rate", "passed"):
        if group.get(key) is not None:
            # the count of passed examples; ``passed`` itself is the per-example 0/1 step series
            out[f"{prefix}{'passed_count' if key == 'passed' else key}"] = group[key]
    for name, mean in (group.get("scores") or {}).items():
        out[f"{prefix}{name}_mean"] = mean
    tokens = group.get("tokens") or {}
    if tokens:
        out[f"{prefix}prompt_tokens"] = tokens.get("prompt", 0)
        out[f"{prefix}completion_tokens"] = tokens.get("completion", 0)
        out[f"{prefix}total_tokens"] = tokens.get("prompt", 0) + tokens.get("completion", 0)
    for stat in ("p50", "p95", "mean"):
        if latency and latency.get(stat) is not None:
            out[f"{prefix}latency_{stat}_ms"] = latency[stat]
    return out


def _percentile(sorted_xs: list[float], q: float) -> float | None:
    if not sorted_xs:
        return None
    index = min(len(sorted_xs) - 1, max(0, round(q * (len(sorted_xs) - 1))))
    return round(sorted_xs[index], 3)


def final_metrics(summary: dict[str, Any], latencies: list[float]) -> dict[str, float]:
    """success_rate, error_count, pass_rate, token totals, latency p50/p95, and per model×probe keys."""
    volatile = summary.get("volatile") or {}
    per_group_latency = volatile.get("latency_ms") or {}
    groups = summary.get("groups") or []
    if len(groups) == 1:
        g = groups[0]
        overall = per_group_latency.get(f"{g['model']}/{g['probe']}")
    else:
        xs = sorted(latencies)
        overall = {"p50": _percentile(xs, 0.5), "p95": _percentile(xs, 0.95),
                   "mean": round(sum(xs) / len(xs), 3) if xs else None}
    metrics = _group_metrics("", summary.get("totals") or {}, overall)
    if len(groups) > 1:
        for g in groups:
            key = f"{g['model']}/{g['probe']}"
            metrics.update(_group_metrics(f"{key}/", g, per_group_latency.get(key)))
    if volatile.get("wall_time_s") is not None:
        metrics["wall_time_s"] = volatile["wall_time_s"]
    return metrics


class TrackingListener:
    """A RunListener that tracks a run. Build it with ``from_config``; call ``close()`` after the run."""

    def __init__(self, tracker: Tracker | None, config: TrackingConfig, *, echo: Callable[[str], None] = print) -> None:
        self.tracker = tracker
        self.config = config
        self._echo = echo
        self.run: TrackingRun | None = None
        self._kept: list[ExampleFinished] | None = None  # only for a run without a run directory
        self._latencies: list[float] = []
        self._warned = False
        self._closed = False
        self.pending: list[Pending] = []

    @classmethod
    def from_config(cls, cfg: TrackingConfig, *, echo: Callable[[str], None] = print) -> "TrackingListener":
        """A listener for a ``tracking:`` block. A backend that is not installed is dropped with a
        warning (the local journal still records the run); ``enabled: false`` tracks nothing."""
        if not cfg.enabled:
            return cls(None, cfg, echo=echo)
        if cfg.backends != ["local"]:  # local needs no check (nor the delivery machinery it would import)
            from insideLLMs.tracking.worker import BackendUnavailable, check_backend

            usable = []
            for backend in cfg.backends:
                try:
                    check_backend(backend)
                    usable.append(backend)
                except (BackendUnavailable, ValueError) as exc:
                    echo(f"! tracking: {exc}; this run is tracked to the local journal only")
            if usable != cfg.backends:
                cfg = cfg.replace(backend=(usable if len(usable) > 1 else usable[0]) if usable else "local")
        return cls(Tracker(cfg, echo=echo), cfg, echo=echo)

    # -- RunListener -------------------------------------------------------------------------

    def on_run_started(self, event: RunStarted) -> None:
        if self.tracker is None:
            return
        try:
            name = self.config.run_name or event.name or default_run_name(event)
            tags = {
                **self.config.tag_dict,
                "experiment": self.config.experiment_name or self.config.project or event.name or name,
                "insidellms_version": event.library_version,
                **environment_tags(),
            }
            if event.resumed:
                tags["resumed_from"] = str(event.resumed)
            self.run = self.tracker.start_run(name=name, tags=tags, params=run_params(event))
            self._kept = [] if event.run_dir is None else None
        except Exception as exc:
            self._warn(exc)

    def on_example_finished(self, event: ExampleFinished) -> None:
        run = self.run
        if run is None:
            return
        try:  # the hot path: a few numbers per example, nothing else
            record = event.record
            latency = event.timing.latency_ms
            metrics = {"latency_ms": latency, "success": 1.0 if record.status == "success" else 0.0}
            if record.passed is not None:
                metrics["passed"] = 1.0 if record.passed else 0.0
            for name, value in record.scores.items():
                if type(value) in _NUMBERS and value - value == 0:  # finite numbers and bools
                    metrics[name] = float(value)
            self._latencies.append(latency)
            run.log_step(metrics, event.step)
            if self._kept is not None:
                self._kept.append(event)
        except Exception as exc:
            self._warn(exc)

    def on_run_finished(self, event: RunFinished) -> None:
        run = self.run
        if run is None:
            return
        try:
            run.log_metrics(final_metrics(event.summary, self._latencies))
            logged: dict[str, str] = {}
            files = dict(event.artifacts)
            if not files and event.run_dir is not None:  # a failed or interrupted run: what it wrote
                files = {n: event.run_dir / n for n in (RECORDS, TIMINGS) if (event.run_dir / n).is_file()}
            for name, path in run.log_files(files).items():
                logged[name] = path.relative_to(run.dir).as_posix()
            if self._kept is not None:  # no run directory: write the records the table points at
                logged.update(self._write_kept(run))
            if not event.artifacts:
                run.log_artifact("summary", event.summary)
            if RECORDS in logged:
                run.log_records_table(TABLE_NAME, logged[RECORDS], logged.get(TIMINGS))
            if event.error:
                run.set_tags({"error": event.error[:250]})
        except Exception as exc:
            self._warn(exc)
        self._end(_END_STATUS.get(event.status, "failed"))

    def _write_kept(self, run: TrackingRun) -> dict[str, str]:
        """records.jsonl and timings.jsonl for a run that had no run directory (redacted like any artifact)."""
        kept, self._kept = self._kept or [], []
        records = b"".join(dumps_bytes(e.record.to_dict()) + b"\n" for e in kept)
        timings = b"".join(dumps_bytes(e.timing.to_dict()) + b"\n" for e in kept)
        return {RECORDS: run.log_artifact_bytes(RECORDS, records), TIMINGS: run.log_artifact_bytes(TIMINGS, timings)}

    # -- end ---------------------------------------------------------------------------------

    def _end(self, status: str) -> None:
        run = self.run
        if run is None or run.ended:
            return
        try:
            run.end(status, wait=False)  # type: ignore[arg-type]
        except Exception as exc:
            self._warn(exc)

    def close(self) -> list[Pending]:
        """End the run if the runner never finished it, give remote backends ``flush_timeout_s`` to
        catch up, and print what is still pending and how to deliver it. Safe to call twice."""
        if self._closed or self.run is None:
            return self.pending
        self._closed = True
        self._end("failed")
        try:
            self.pending = self.run.finish_delivery()
        except Exception as exc:
            self._warn(exc)
        return self.pending

    def _warn(self, exc: Exception) -> None:
        if not self._warned:
            self._warned = True
            where = f" (the journal is in {self.run.dir})" if self.run is not None else ""
            self._echo(f"! tracking: {type(exc).__name__}: {exc}; the evaluation goes on{where}")
