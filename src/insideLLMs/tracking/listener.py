"""``TrackingListener``: turns the runner's events into tracker calls, for ``insidellms run``/``harness``.

What a tracked run records: params (model, provider, generation, probe, dataset, concurrency,
run_id, library version), a step series per example (latency_ms, success, passed, each score),
final metrics from the summary (per model×probe too when there are several), the run directory's
files as artifacts, the per-example records as a table, and tags (config tags, experiment,
library version, environment). Tracking never raises into the run: failures are warned once.
"""

from __future__ import annotations

import os
import platform
from typing import Any, Callable

from insideLLMs.events import ExampleFinished, RunFinished, RunStarted
from insideLLMs.tracking.config import TrackingConfig
from insideLLMs.tracking.tracker import Pending, TableWriter, Tracker, TrackingRun
from insideLLMs.tracking.worker import BackendUnavailable, check_backend

_CI_VARS = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "JENKINS_URL", "CIRCLECI", "TF_BUILD")
_END_STATUS = {"finished": "finished", "failed": "failed", "interrupted": "killed"}


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


def example_row(event: ExampleFinished) -> dict[str, Any]:
    """One flat row of the per-example table."""
    record, timing = event.record, event.timing
    output = record.output
    row: dict[str, Any] = {
        "step": event.step,
        "model": record.model.get("id"),
        "probe": record.probe.get("id"),
        "example_id": record.example_id,
        "status": record.status,
        "passed": record.passed,
        "latency_ms": round(timing.latency_ms, 3),
        "input": record.input,
        "output": "\n---\n".join(output) if isinstance(output, list) else output,
        "error": f"{record.error.get('type')}: {record.error.get('message')}" if record.error else None,
    }
    if record.usage:
        row["prompt_tokens"] = record.usage.get("prompt_tokens")
        row["completion_tokens"] = record.usage.get("completion_tokens")
    for name, value in record.scores.items():
        row[f"score.{name}"] = value
    return row


class TrackingListener:
    """A RunListener that tracks a run. Build it with ``from_config``; call ``close()`` after the run."""

    def __init__(self, tracker: Tracker | None, config: TrackingConfig, *, echo: Callable[[str], None] = print) -> None:
        self.tracker = tracker
        self.config = config
        self._echo = echo
        self.run: TrackingRun | None = None
        self._table: TableWriter | None = None
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
        usable = []
        for backend in cfg.backends:
            try:
                check_backend(backend)
                usable.append(backend)
            except (BackendUnavailable, ValueError) as exc:
                echo(f"! tracking: {exc}; this run is tracked to the local journal only")
        if not usable:
            usable = ["local"]
        cfg = cfg.model_copy(update={"backend": usable if len(usable) > 1 else usable[0]})
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
            self._table = self.run.open_table("examples")
        except Exception as exc:
            self._warn(exc)

    def on_example_finished(self, event: ExampleFinished) -> None:
        run = self.run
        if run is None:
            return
        try:
            record, timing = event.record, event.timing
            metrics: dict[str, float] = {"latency_ms": timing.latency_ms, "success": record.status == "success"}
            if record.passed is not None:
                metrics["passed"] = record.passed
            for name, value in record.scores.items():
                if isinstance(value, (int, float)):
                    metrics[name] = value
            self._latencies.append(timing.latency_ms)
            run.log_metrics(metrics, step=event.step)
            if self._table is not None:
                self._table.write(example_row(event))
        except Exception as exc:
            self._warn(exc)

    def on_run_finished(self, event: RunFinished) -> None:
        run = self.run
        if run is None:
            return
        try:
            run.log_metrics(final_metrics(event.summary, self._latencies))
            for name, path in event.artifacts.items():
                try:
                    run.log_artifact(name, path)
                except FileNotFoundError:
                    continue
            if not event.artifacts:
                run.log_artifact("summary", event.summary)
            if self._table is not None:
                self._table.close()
            if event.error:
                run.set_tags({"error": event.error[:250]})
        except Exception as exc:
            self._warn(exc)
        self._end(_END_STATUS.get(event.status, "failed"))

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
