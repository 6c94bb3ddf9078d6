"""The MLflow sink's calls made through the mlflow library (``MlflowClient``), for what mlflow_rest.py
does not speak: non-HTTP stores (``sqlite:///``, ``file:``, Databricks), auth and header plugins,
and artifacts a tracking server does not proxy (S3, a shared disk).

``LibraryClient`` has the methods of ``mlflow_rest.RestClient`` and answers in the same shapes (the
REST API's JSON), so the sink is written once. ``import mlflow`` (1.5-2.5 s) happens when one is made.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any, Iterable, Iterator

_env_lock = threading.Lock()


@contextlib.contextmanager
def http_settings(timeout_s: int) -> Iterator[None]:
    """MLflow reads its HTTP retry/timeout settings from the environment per request; set them only
    while talking to the server: no retries (the worker retries), a short timeout, and no
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


class LibraryClient:
    """``MlflowClient`` behind the interface of ``RestClient``. Raises ``ImportError`` without mlflow."""

    def __init__(self, tracking_uri: str | None, timeout_s: int = 10) -> None:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # else mlflow writes ~/.config/mlflow/
        from mlflow.tracking import MlflowClient

        self.timeout_s = timeout_s
        self.client = MlflowClient(tracking_uri=tracking_uri)

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        with http_settings(self.timeout_s):
            return getattr(self.client, method)(*args, **kwargs)

    def get_experiment_by_name(self, name: str) -> dict[str, Any] | None:
        experiment = self._call("get_experiment_by_name", name)
        if experiment is None:
            return None
        return {"experiment_id": experiment.experiment_id, "lifecycle_stage": experiment.lifecycle_stage}

    def create_experiment(self, name: str) -> str:
        return str(self._call("create_experiment", name))

    def search_runs(self, experiment_ids: list[str], filter_string: str, max_results: int) -> list[dict[str, Any]]:
        return [_run(r) for r in self._call("search_runs", experiment_ids, filter_string=filter_string,
                                             max_results=max_results)]

    def create_run(self, experiment_id: str, start_time: int, run_name: str, tags: dict[str, str]) -> dict[str, Any]:
        return _run(self._call("create_run", experiment_id, start_time=start_time, run_name=run_name, tags=tags))

    def get_run(self, run_id: str) -> dict[str, Any]:
        return _run(self._call("get_run", run_id))

    def log_batch(self, run_id: str, metrics: Iterable[tuple[str, float, int, int]] = (),
                  params: Iterable[tuple[str, str]] = (), tags: Iterable[tuple[str, str]] = ()) -> None:
        from mlflow.entities import Metric, Param, RunTag

        self._call("log_batch", run_id, metrics=[Metric(*m) for m in metrics], params=[Param(*p) for p in params],
                   tags=[RunTag(*t) for t in tags], synchronous=True)

    def metric_history(self, run_id: str, key: str) -> list[dict[str, Any]]:
        return [{"key": m.key, "value": m.value, "timestamp": m.timestamp, "step": m.step}
                for m in self._call("get_metric_history", run_id, key)]

    def update_run(self, run_id: str, status: str, end_time: int) -> None:
        self._call("set_terminated", run_id, status=status, end_time=end_time)

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        self._call("set_tag", run_id, key, value)

    def log_artifact(self, run_id: str, local: Path, artifact_dir: str | None) -> None:
        self._call("log_artifact", run_id, str(local), artifact_dir)

    def close(self) -> None:
        pass


def _run(run: Any) -> dict[str, Any]:
    """An ``mlflow.entities.Run`` in the REST API's shape (what the sink reads of it)."""
    return {
        "info": {"run_id": run.info.run_id, "experiment_id": run.info.experiment_id,
                 "artifact_uri": run.info.artifact_uri, "status": run.info.status},
        "data": {"params": [{"key": k, "value": v} for k, v in run.data.params.items()],
                 "tags": [{"key": k, "value": v} for k, v in run.data.tags.items()]},
    }
