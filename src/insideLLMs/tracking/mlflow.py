"""The MLflow sink: journal events -> one MLflow run, through ``MlflowClient`` only (no fluent global state).

Metrics, params and tags go in ``log_batch`` calls within MLflow's limits; params too long for the
MLflow UI go in as ``params/<key>.txt`` artifacts plus a ``sha256:…`` param; the per-example table
is stored in MLflow's own table format (what ``log_table`` writes) so it shows in the UI. The remote
run id is kept in the sink state, so a later ``tracking sync`` resumes the same run, and (key, step)
pairs already on the server are never logged twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import posixpath
import re
import socket
import tempfile
import threading
import urllib.parse
from pathlib import Path
from typing import Any, Iterator, Sequence

from insideLLMs.tracking.redact import redact_text
from insideLLMs.tracking.sink import Event, Sink, SinkContext, SinkError

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "insidellms"
MAX_METRICS_PER_CALL = 1000  # MLflow's log_batch limits
MAX_PARAMS_PER_CALL = 100
MAX_TAGS_PER_CALL = 100
MAX_PARAM_LENGTH = 500  # longer values (prompts, templates) become artifacts + a hash param
MAX_TAG_LENGTH = 8000
MAX_KEY_LENGTH = 250
RUN_KEY_TAG = "insidellms.run_key"
LOGGED_ARTIFACTS_TAG = "mlflow.loggedArtifacts"  # what the UI reads to list table artifacts
_STATUS = {"finished": "FINISHED", "failed": "FAILED", "killed": "KILLED"}
_BAD_KEY_CHARS = re.compile(r"[^\w./\- :]")

_env_lock = threading.Lock()


@contextlib.contextmanager
def _http_settings(timeout_s: int) -> Iterator[None]:
    """MLflow reads its HTTP retry/timeout settings from the environment per request; set them only
    while this sink talks to the server: no retries (the worker retries), a short timeout, and no
    "View run at" lines printed into the evaluation's stdout."""
    wanted = {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout_s),
        "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    }
    with _env_lock:
        saved = {k: os.environ.get(k) for k in wanted}
        os.environ.update(wanted)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def clean_key(key: str) -> str:
    """A key MLflow accepts: allowed characters only, at most 250 long, a plain relative path."""
    key = _BAD_KEY_CHARS.sub("_", str(key))[:MAX_KEY_LENGTH] or "_"
    norm = posixpath.normpath(key)
    if norm != key or norm in (".", "..") or norm.startswith(("..", "/")):
        key = key.replace("/", "_")
    return key


def param_text(value: Any) -> str:
    return "None" if value is None else str(value)


def _retryable(exc: BaseException) -> bool:
    """Connection problems, timeouts, 429 and 5xx can pass; a rejected request will not."""
    status = None
    get_status = getattr(exc, "get_http_status_code", None)
    if callable(get_status):
        try:
            status = int(get_status())
        except Exception:
            status = None
    response = getattr(exc, "response", None)
    if status is None and response is not None:
        status = getattr(response, "status_code", None)
    if status is None:
        return isinstance(exc, (OSError, TimeoutError)) or "request" in type(exc).__module__
    return status == 429 or status >= 500


class MlflowSink(Sink):
    """Options: ``tracking_uri`` (MLflow's default when absent), ``experiment_name`` (created if
    missing), ``run_name``, ``max_param_length`` (500), ``request_timeout_s`` (10)."""

    name = "mlflow"

    @classmethod
    def preflight(cls, options: dict[str, Any]) -> None:
        """Fail in milliseconds, before the slow ``import mlflow``, when nothing listens at an HTTP
        ``tracking_uri`` (connection refused, unknown host)."""
        uri = str(options.get("tracking_uri") or "")
        if not uri.startswith(("http://", "https://")):
            return
        parts = urllib.parse.urlsplit(uri)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise SinkError(f"mlflow: bad tracking_uri {uri!r}", retryable=False) from None
        try:
            socket.create_connection((parts.hostname or "", port), timeout=options.get("preflight_timeout_s") or 3).close()
        except TimeoutError:
            if options.get("preflight_timeout_s"):
                return  # slow to answer is not "down": let the delivery find out
            raise SinkError(f"mlflow at {redact_text(uri)}: server unreachable (timed out)") from None
        except OSError as exc:
            raise SinkError(f"mlflow at {redact_text(uri)}: server unreachable ({exc.strerror or exc})") from None

    def __init__(self, ctx: SinkContext) -> None:
        super().__init__(ctx)
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # else mlflow writes ~/.config/mlflow/
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise SinkError("the mlflow backend needs mlflow: pip install 'insidellms[mlflow]'", retryable=False) from None
        self.tracking_uri: str | None = ctx.options.get("tracking_uri") or None
        self.timeout_s = int(ctx.options.get("request_timeout_s") or 10)
        self.max_param_length = int(ctx.options.get("max_param_length") or MAX_PARAM_LENGTH)
        try:
            self.client = MlflowClient(tracking_uri=self.tracking_uri)
        except Exception as exc:
            raise SinkError(f"mlflow: bad tracking_uri {self.tracking_uri!r}: {exc}", retryable=False) from None
        # What is known to be on the server for this run. A run this instance created is fully
        # known; a resumed run, or one after a failed call, is read back before logging to it.
        self._known_complete = False
        self._steps: dict[str, set[int]] = {}  # metric key -> steps on the server (keys in _fetched)
        self._fetched: set[str] = set()
        self._params: dict[str, str] | None = None

    # -- delivery ----------------------------------------------------------------------------

    def deliver(self, events: Sequence[Event]) -> None:
        try:
            with _http_settings(self.timeout_s):
                self._deliver(events)
        except SinkError:
            self._forget_known()
            raise
        except Exception as exc:
            self._forget_known()
            where = self.tracking_uri or "the default MLflow store"
            raise SinkError(f"mlflow at {where}: {_first_line(exc)}", retryable=_retryable(exc)) from exc

    def _forget_known(self) -> None:
        """After a failure we cannot know what reached the server: read it back next time."""
        self._known_complete = False
        self._steps.clear()
        self._fetched.clear()
        self._params = None

    def _deliver(self, events: Sequence[Event]) -> None:
        from mlflow.entities import Metric, Param, RunTag

        # per key, the step after the highest one logged: an unstepped value (a final metric) goes
        # there. Committed to ctx.state only when all went through, so a retry gives the same steps.
        counters: dict[str, int] = dict(self.ctx.state.get("counters") or {})
        run_id = self.ctx.state.get("run_id")
        metrics: list[Metric] = []
        params: dict[str, str] = {}
        tags: dict[str, str] = {}
        files: list[tuple[Path, str | None]] = []  # (local file, artifact dir)
        tables: list[dict[str, Any]] = []
        end_status: str | None = None

        events = self.undelivered(events)  # events this sink state already includes are skipped
        if not events:
            return
        for event in events:
            data = event.data
            if event.kind == "run_start":
                run_id = self._open_run(data, event.ts)
                tags.update({clean_key(k): v for k, v in (data.get("tags") or {}).items()})
            elif event.kind == "params":
                for key, value in (data.get("params") or {}).items():
                    params.setdefault(clean_key(key), param_text(value))
            elif event.kind == "metrics":
                step = data.get("step")
                for key, value in (data.get("metrics") or {}).items():
                    if value is None or isinstance(value, str):
                        continue
                    key = clean_key(key)
                    at = counters.get(key, 0) if step is None else int(step)
                    counters[key] = max(counters.get(key, 0), at + 1)
                    metrics.append(Metric(key, float(value), int(event.ts * 1000), at))
            elif event.kind == "tags":
                tags.update({clean_key(k): v for k, v in (data.get("tags") or {}).items()})
            elif event.kind == "artifact":
                files.append(self._artifact_file(data))
            elif event.kind == "table":
                tables.append(data)
            elif event.kind == "run_end":
                end_status = _STATUS.get(str(data.get("status")), "KILLED")

        if run_id is None:  # events after a run_start this sink never saw (state lost): open one now
            run_id = self._open_run({"name": self.ctx.options.get("run_name") or self.ctx.run_dir.name,
                                     "run_key": self.ctx.run_dir.name}, events[0].ts)

        new_params, long_params = self._new_params(run_id, params)
        metrics = self._new_metrics(run_id, metrics)
        tag_list = [RunTag(k, ("" if v is None else str(v))[:MAX_TAG_LENGTH]) for k, v in tags.items()]
        param_list = [Param(k, v) for k, v in new_params.items()]

        for start in range(0, max(len(param_list), len(tag_list)), MAX_PARAMS_PER_CALL):
            self.client.log_batch(run_id, params=param_list[start:start + MAX_PARAMS_PER_CALL],
                                  tags=tag_list[start:start + MAX_TAGS_PER_CALL], synchronous=True)
        for start in range(0, len(metrics), MAX_METRICS_PER_CALL):
            self.client.log_batch(run_id, metrics=metrics[start:start + MAX_METRICS_PER_CALL], synchronous=True)
        for key, value in new_params.items():
            self._params[key] = value  # type: ignore[index]
        for metric in metrics:
            self._steps.setdefault(metric.key, set()).add(metric.step)

        with tempfile.TemporaryDirectory(prefix="insidellms-mlflow-") as tmp:
            for key, value in long_params.items():  # the full text of params logged as a hash
                if key in new_params:
                    path = Path(tmp) / "params" / (key.replace("/", "_") + ".txt")
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(value, encoding="utf-8")
                    files.append((path, "params"))
            for local, artifact_dir in files:
                if local.is_file():
                    self.client.log_artifact(run_id, str(local), artifact_dir)
                else:
                    log.warning("mlflow: artifact %s is missing; skipped", local)
            for table in tables:
                self._log_table(run_id, table, Path(tmp))

        if end_status is not None:
            self.client.set_terminated(run_id, status=end_status, end_time=int(events[-1].ts * 1000))
            self.ctx.state["status"] = end_status
        self.ctx.state["counters"] = counters
        self.ctx.state["seq"] = events[-1].seq

    # -- the remote run ----------------------------------------------------------------------

    def _open_run(self, data: dict[str, Any], ts: float) -> str:
        """Create the remote run, or find the one an earlier (crashed) delivery created for this run key."""
        if self.ctx.state.get("run_id"):
            return str(self.ctx.state["run_id"])
        experiment_name = (self.ctx.options.get("experiment_name") or data.get("experiment")
                           or data.get("project") or DEFAULT_EXPERIMENT)
        experiment = self.client.get_experiment_by_name(experiment_name)
        if experiment is None:
            try:
                experiment_id = self.client.create_experiment(experiment_name)
            except Exception:
                experiment = self.client.get_experiment_by_name(experiment_name)  # created meanwhile
                if experiment is None:
                    raise
                experiment_id = experiment.experiment_id
        else:
            if experiment.lifecycle_stage == "deleted":
                raise SinkError(f"mlflow: experiment {experiment_name!r} is deleted; restore it or pick "
                                "another experiment_name", retryable=False)
            experiment_id = experiment.experiment_id
        run_key = str(data.get("run_key") or self.ctx.run_dir.name)
        found = self.client.search_runs(
            [experiment_id], filter_string=f"tags.`{RUN_KEY_TAG}` = '{run_key}'", max_results=1
        )
        if found:
            run_id = found[0].info.run_id
        else:
            name = str(self.ctx.options.get("run_name") or data.get("name") or run_key)
            run = self.client.create_run(
                experiment_id, start_time=int(ts * 1000), run_name=name,
                tags={RUN_KEY_TAG: run_key, "mlflow.runName": name},
            )
            run_id = run.info.run_id
            self._known_complete = True
        # the run id is a fact about the server: keep it even if the rest of this delivery fails
        self.ctx.state["run_id"] = run_id
        self.ctx.state["experiment_id"] = experiment_id
        if self.tracking_uri and self.tracking_uri.startswith(("http://", "https://")):
            self.ctx.state["url"] = f"{self.tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
        return run_id

    def _new_metrics(self, run_id: str, metrics: list[Any]) -> list[Any]:
        """Drop (key, step) pairs the server already holds, and repeats within this batch."""
        if not self._known_complete:
            for key in {m.key for m in metrics} - self._fetched:
                self._steps[key] = {m.step for m in self.client.get_metric_history(run_id, key)}
                self._fetched.add(key)
        out, seen = [], set()
        for metric in metrics:
            pair = (metric.key, metric.step)
            if pair in seen or metric.step in self._steps.get(metric.key, ()):
                continue
            seen.add(pair)
            out.append(metric)
        return out

    def _new_params(self, run_id: str, params: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        """Params not yet on the server (a param cannot change in MLflow: a new value is a tag)."""
        if self._params is None:
            self._params = {} if self._known_complete else dict(self.client.get_run(run_id).data.params)
        new: dict[str, str] = {}
        long: dict[str, str] = {}
        for key, value in params.items():
            if len(value) > self.max_param_length:
                long[key] = value
                value = "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()
            if key not in self._params:
                new[key] = value
            elif self._params[key] != value:
                log.warning("mlflow: param %r changed; MLflow keeps the first value", key)
        return new, long

    def _artifact_file(self, data: dict[str, Any]) -> tuple[Path, str | None]:
        rel = posixpath.normpath(str(data.get("path", "")))
        local = self.ctx.run_dir / rel
        parts = rel.split("/")
        if parts[0] == "artifacts":
            parts = parts[1:]
        folder = "/".join(parts[:-1]) or None
        return local, folder

    def _log_table(self, run_id: str, data: dict[str, Any], tmp: Path) -> None:
        """Write the JSONL rows as MLflow's table JSON ({"columns", "data"}, pandas 'split') and tag it."""
        local = self.ctx.run_dir / str(data.get("path", ""))
        if not local.is_file():
            log.warning("mlflow: table %s is missing; skipped", local)
            return
        columns: dict[str, None] = {}
        rows = []
        with open(local, "rb") as fh:
            for line in fh:
                if line.strip():
                    row = json.loads(line)
                    rows.append(row)
                    columns.update(dict.fromkeys(row))
        names = list(columns)
        table = {"columns": names, "data": [[_cell(row.get(c)) for c in names] for row in rows]}
        name = Path(str(data.get("name") or local.stem)).name
        out = tmp / "tables" / f"{name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(table, ensure_ascii=False), encoding="utf-8")
        self.client.log_artifact(run_id, str(out), "tables")
        entry = {"path": f"tables/{name}.json", "type": "table"}
        current = json.loads(self.client.get_run(run_id).data.tags.get(LOGGED_ARTIFACTS_TAG, "[]"))
        if entry not in current:
            self.client.set_tag(run_id, LOGGED_ARTIFACTS_TAG, json.dumps(current + [entry]))

    def close(self) -> None:
        pass


def _cell(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, int, float, bool)) else json.dumps(value)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
