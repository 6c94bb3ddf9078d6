"""``TrackingListener``: turns the runner's events into tracker calls, for ``insidellms run``/``harness``.

What a tracked run records (worked out in describe.py): params (model, provider, generation, probe,
dataset, concurrency, run_id, library version), a step series per example (latency_ms, success,
passed, each score), final metrics from the summary (per model×probe too when there are several),
the run directory's files as artifacts, the per-example records as a table, and tags (config tags,
experiment, library version, environment). Tracking never raises into the run: failures are warned
once.

It runs in the evaluation's process, for every run size (bench/README.md, "Tracking: one path",
measured why): per example it appends one step to the journal, a few microseconds that overlap
with the evaluation's wait on its model; remote backends are fed from the journal by the run's
delivery child process, so a slow or dead server never reaches the evaluation. The table is not
built here: it points at the records.jsonl artifact and is flattened at delivery time, by the
sinks that show tables (table.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from insideLLMs.rundir import CONFIG, MANIFEST, RECORDS, REPORT, SUMMARY, TIMINGS
from insideLLMs.canonical import dumps_bytes
from insideLLMs.events import ExampleFinished, RunFinished, RunStarted
from insideLLMs.config import TrackingConfig
from insideLLMs.tracking._evaluation import (
    default_run_name,
    environment_tags,
    example_metrics,
    final_metrics,
    run_params,
    shard_suffix,
    shard_tags,
)
from insideLLMs.tracking._tracker import Tracker, TrackingRun

if TYPE_CHECKING:
    from insideLLMs.tracking.sink import Pending

_END_STATUS = {"finished": "finished", "failed": "failed", "interrupted": "interrupted"}
# run-directory files written whole and replaced, never changed in place (artifacts.write_atomic);
# records.jsonl and timings.jsonl are appended to, and cut back by a resume
REPLACED_FILES = frozenset({REPORT, SUMMARY, MANIFEST, CONFIG})
TABLE_NAME = "examples"


class TrackingListener:
    """A RunListener that tracks a run. Build it with ``from_config``; call ``close()`` after the run."""

    def __init__(self, tracker: Tracker | None, config: TrackingConfig, *, echo: Callable[[str], None] = print) -> None:
        self.tracker = tracker
        self.config = config
        self._echo = echo
        self.run: TrackingRun | None = None
        self._kept: list[ExampleFinished] | None = None  # only for a run without a run directory
        self._latencies: list[float] = []
        self._logged: dict[str, str] = {}  # run-directory file -> its artifact path in the run folder
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
            from insideLLMs.tracking.delivery._worker import BackendUnavailable, check_backend

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
            base = self.config.run_name or event.name or default_run_name(event)
            name = base + shard_suffix(event)  # a shard's runs read apart, and stay in their run's experiment
            tags = {
                **self.config.tag_dict,
                "experiment": self.config.experiment_name or self.config.project or event.name or base,
                "insidellms_version": event.library_version,
                **environment_tags(),
            }
            if event.resumed:
                tags["resumed_from"] = str(event.resumed)
            if event.shard:
                tags.update(shard_tags(event))
            self.run = self.tracker.start_run(name=name, tags=tags, params=run_params(event))
            self._kept = [] if event.run_dir is None else None
        except Exception as exc:
            self.warn(exc)

    def on_example_finished(self, event: ExampleFinished) -> None:
        """One example's step series point (``example_metrics``): the hot path, a few numbers."""
        run = self.run
        if run is None:
            return
        record = event.record
        latency = event.timing.latency_ms
        try:
            self._latencies.append(latency)
            run.log_step(example_metrics(record.status, record.passed, record.scores, latency), event.step)
        except Exception as exc:
            self.warn(exc)
        if self._kept is not None:
            self._kept.append(event)

    def on_run_finished(self, event: RunFinished) -> None:
        """The final metrics, the run directory's files as artifacts, the per-example table, an error
        tag, and the end of the run."""
        run = self.run
        if run is None:
            return
        if run.deleted:  # nothing to log into; ending the run says so
            self._end(_END_STATUS.get(event.status, "failed"))
            return
        try:
            if event.summary:
                run.log_metrics(final_metrics(event.summary, self._latencies))
            files = dict(event.artifacts)
            if not files and event.run_dir is not None:  # a failed or interrupted run: what it wrote
                files = {n: event.run_dir / n for n in (RECORDS, TIMINGS) if (event.run_dir / n).is_file()}
            for name, path in run.log_files(files, replaced_only=REPLACED_FILES).items():
                self._logged[name] = path.relative_to(run.dir).as_posix()
        except Exception as exc:
            self.warn(exc)
        try:
            if self._kept is not None:  # no run directory: write the records the table points at
                self._logged.update(self._write_kept(run))
            if not event.artifacts and event.summary:
                run.log_artifact("summary", event.summary)
            if RECORDS in self._logged:
                run.log_records_table(TABLE_NAME, self._logged[RECORDS], self._logged.get(TIMINGS))
            if event.error:
                run.set_tags({"error": event.error[:250]})
        except Exception as exc:
            self.warn(exc)
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
            self.warn(exc)

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
            self.warn(exc)
        return self.pending

    def warn(self, exc: Exception) -> None:
        """Say once that tracking failed (the evaluation goes on); later failures are not repeated."""
        if not self._warned:
            self._warned = True
            where = f" (the journal is in {self.run.dir})" if self.run is not None else ""
            self._echo(f"! tracking: {type(exc).__name__}: {exc}; the evaluation goes on{where}")
