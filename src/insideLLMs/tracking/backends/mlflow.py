"""The MLflow sink: journal events -> one MLflow run (no fluent global state).

Metrics, params and tags go in ``log_batch`` calls within MLflow's limits; params too long for the
MLflow UI go in as ``params/<key>.txt`` artifacts plus a ``sha256:…`` param; the per-example table
is stored in MLflow's own table format (what ``log_table`` writes) so it shows in the UI. The remote
run id is kept in the sink state, so a later ``tracking sync`` resumes the same run, and (key, step)
pairs already on the server are never logged twice.

An ``http(s)://`` tracking server is spoken to directly (mlflow_rest.py: no ``import mlflow``,
which alone took longer than a whole delivery); anything else goes through the mlflow library
(mlflow_library.py). Both answer in the REST API's shapes, so this module does not care which.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import posixpath
import re
import tempfile
from pathlib import Path
from typing import Any, Sequence

from insideLLMs.jsonl import iter_objects
from insideLLMs.tracking.backends import _mlflow_rest as mlflow_rest
from insideLLMs.tracking.delivery import _preflight as preflight
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
_STATUS = {"finished": "FINISHED", "failed": "FAILED", "interrupted": "KILLED", "killed": "KILLED"}  # MLflow has no "interrupted"
MetricPoint = tuple[str, float, int, int]  # key, value, timestamp (ms), step
_BAD_KEY_CHARS = re.compile(r"[^\w./\- :]")


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
    if isinstance(exc, mlflow_rest.RestError):
        return exc.retryable
    if isinstance(exc, OSError) or type(exc).__module__ == "http.client":
        return True
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
        """Fail in milliseconds, before anything slow, when nothing listens at an HTTP ``tracking_uri``."""
        preflight.mlflow(options)

    def __init__(self, ctx: SinkContext) -> None:
        super().__init__(ctx)
        self.tracking_uri: str | None = ctx.options.get("tracking_uri") or None
        self.timeout_s = int(ctx.options.get("request_timeout_s") or 10)
        self.max_param_length = int(ctx.options.get("max_param_length") or MAX_PARAM_LENGTH)
        uri = self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        self.client: Any
        if mlflow_rest.usable(uri):
            self.client = mlflow_rest.RestClient(str(uri), self.timeout_s)
        else:
            try:
                from insideLLMs.tracking.backends._mlflow_library import LibraryClient

                self.client = LibraryClient(self.tracking_uri, self.timeout_s)
            except ImportError:
                raise SinkError("the mlflow backend needs mlflow: pip install 'insidellms[mlflow]'",
                                retryable=False) from None
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
        # per key, the step after the highest one logged: an unstepped value (a final metric) goes
        # there. Committed to ctx.state only when all went through, so a retry gives the same steps.
        counters: dict[str, int] = dict(self.ctx.state.get("counters") or {})
        run_id = self.ctx.state.get("run_id")
        metrics: list[MetricPoint] = []
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
                    metrics.append((key, float(value), int(event.ts * 1000), at))
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
        tag_list = [(k, ("" if v is None else str(v))[:MAX_TAG_LENGTH]) for k, v in tags.items()]
        param_list = list(new_params.items())

        for start in range(0, max(len(param_list), len(tag_list)), MAX_PARAMS_PER_CALL):
            self.client.log_batch(run_id, params=param_list[start:start + MAX_PARAMS_PER_CALL],
                                  tags=tag_list[start:start + MAX_TAGS_PER_CALL])
        for start in range(0, len(metrics), MAX_METRICS_PER_CALL):
            self.client.log_batch(run_id, metrics=metrics[start:start + MAX_METRICS_PER_CALL])
        for key, value in new_params.items():
            self._params[key] = value  # type: ignore[index]
        for key, _value, _ts, step in metrics:
            self._steps.setdefault(key, set()).add(step)

        with tempfile.TemporaryDirectory(prefix="insidellms-mlflow-") as tmp:
            for key, value in long_params.items():  # the full text of params logged as a hash
                if key in new_params:
                    path = Path(tmp) / "params" / (key.replace("/", "_") + ".txt")
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(value, encoding="utf-8")
                    files.append((path, "params"))
            for local, artifact_dir in files:
                if local.is_file():
                    self.client.log_artifact(run_id, local, artifact_dir)
                else:
                    log.warning("mlflow: artifact %s is missing; skipped", local)
            for table in tables:
                self._log_table(run_id, table, Path(tmp))

        if end_status is not None:
            self.client.update_run(run_id, end_status, int(events[-1].ts * 1000))
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
                experiment_id = experiment["experiment_id"]
        else:
            if experiment.get("lifecycle_stage") == "deleted":
                raise SinkError(f"mlflow: experiment {experiment_name!r} is deleted; restore it or pick "
                                "another experiment_name", retryable=False)
            experiment_id = experiment["experiment_id"]
        run_key = str(data.get("run_key") or self.ctx.run_dir.name)
        found = self.client.search_runs(
            [experiment_id], f"tags.`{RUN_KEY_TAG}` = '{run_key}'", 1
        )
        if found:
            run_id = found[0]["info"]["run_id"]
        else:
            name = str(self.ctx.options.get("run_name") or data.get("name") or run_key)
            run = self.client.create_run(experiment_id, int(ts * 1000), name,
                                         {RUN_KEY_TAG: run_key, "mlflow.runName": name})
            run_id = run["info"]["run_id"]
            self._known_complete = True
        # the run id is a fact about the server: keep it even if the rest of this delivery fails
        self.ctx.state["run_id"] = run_id
        self.ctx.state["experiment_id"] = experiment_id
        if self.tracking_uri and self.tracking_uri.startswith(("http://", "https://")):
            self.ctx.state["url"] = f"{self.tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
        return run_id

    def _new_metrics(self, run_id: str, metrics: list[MetricPoint]) -> list[MetricPoint]:
        """Drop (key, step) pairs the server already holds, and repeats within this batch."""
        if not self._known_complete:
            for key in {m[0] for m in metrics} - self._fetched:
                self._steps[key] = {int(m.get("step") or 0) for m in self.client.metric_history(run_id, key)}
                self._fetched.add(key)
        out, seen = [], set()
        steps = self._steps
        for metric in metrics:
            key, _value, _ts, step = metric
            if (key, step) in seen or step in steps.get(key, ()):
                continue
            seen.add((key, step))
            out.append(metric)
        return out

    def _new_params(self, run_id: str, params: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        """Params not yet on the server (a param cannot change in MLflow: a new value is a tag)."""
        if self._params is None:
            self._params = {} if self._known_complete else _pairs(self.client.get_run(run_id), "params")
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
        for _, row in iter_objects(local, ValueError):
            rows.append(row)
            columns.update(dict.fromkeys(row))
        names = list(columns)
        table = {"columns": names, "data": [[_cell(row.get(c)) for c in names] for row in rows]}
        name = Path(str(data.get("name") or local.stem)).name
        out = tmp / "tables" / f"{name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(table, ensure_ascii=False), encoding="utf-8")
        self.client.log_artifact(run_id, out, "tables")
        entry = {"path": f"tables/{name}.json", "type": "table"}
        current = json.loads(_pairs(self.client.get_run(run_id), "tags").get(LOGGED_ARTIFACTS_TAG, "[]"))
        if entry not in current:
            self.client.set_tag(run_id, LOGGED_ARTIFACTS_TAG, json.dumps(current + [entry]))

    def close(self) -> None:
        self.client.close()


def _pairs(run: dict[str, Any], field: str) -> dict[str, str]:
    """A run's params or tags (``[{"key", "value"}]`` in the REST API) as a dict."""
    return {p["key"]: p.get("value", "") for p in (run.get("data") or {}).get(field) or []}


def _cell(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, int, float, bool)) else json.dumps(value)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
