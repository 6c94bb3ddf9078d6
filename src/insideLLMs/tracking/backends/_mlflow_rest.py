"""The calls the MLflow sink makes, spoken directly to an ``http(s)://`` tracking server (its REST API).

``import mlflow`` takes seconds (it imports pandas, FastAPI and its GenAI stack), more than
delivering a whole evaluation's metrics, and its client builds a protobuf message per metric
before turning it into JSON. Delivery needs a dozen endpoints of the REST API
(https://mlflow.org/docs/latest/rest-api.html), so this module calls them itself, over one
kept-alive ``http.client`` connection, honouring MLflow's own client settings:
``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` (or ``~/.mlflow/credentials``, read only),
``MLFLOW_TRACKING_TOKEN``, ``MLFLOW_TRACKING_INSECURE_TLS``, ``MLFLOW_TRACKING_SERVER_CERT_PATH`` and
``MLFLOW_TRACKING_CLIENT_CERT_PATH``.

Artifacts go through the server's artifact proxy (runs whose ``artifact_uri`` is
``mlflow-artifacts:``, what ``mlflow server`` does by default). A run whose artifacts live elsewhere
(S3, a shared disk) has its files written by the mlflow library, imported only then. ``usable``
says when this module cannot stand in for the library at all (Databricks and other non-HTTP
stores, auth plugins, AWS SigV4, request-header plugins, proxy multipart uploads); the sink then
uses mlflow_library.py throughout.
"""

from __future__ import annotations

import base64
import configparser
import http.client
import json
import mimetypes
import os
import urllib.parse
from pathlib import Path
from typing import Any, Iterable

import orjson
from insideLLMs.errors import InsideLLMsError

API = "/api/2.0/mlflow"
ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"
HISTORY_PAGE = 25_000  # what MlflowClient asks for per page
# settings only the mlflow library understands: with any of them set, the library does everything
_LIBRARY_ONLY_ENV = ("MLFLOW_TRACKING_AUTH", "MLFLOW_TRACKING_AWS_SIGV4", "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD",
                     "MLFLOW_WORKSPACE")
_RECONNECT = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)
_BLOCK = 1 << 18  # bytes per send of a file body


class RestError(InsideLLMsError):
    """The server answered with an error status (``status``; MLflow's ``error_code`` when it gave one)."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(f"HTTP {status} {error_code}: {message}".strip())
        self.status = status
        self.error_code = error_code

    @property
    def retryable(self) -> bool:
        """Too many requests and server errors can pass; a rejected or redirected request will not."""
        return self.status == 429 or self.status >= 500


def usable(tracking_uri: str | None) -> bool:
    """True if ``tracking_uri`` is a server this module can deliver to without the mlflow library."""
    if not tracking_uri or not tracking_uri.startswith(("http://", "https://")):
        return False
    if any(os.environ.get(name) for name in _LIBRARY_ONLY_ENV):
        return False
    from importlib.metadata import entry_points  # only here: it scans every installed package

    return not entry_points(group="mlflow.request_header_provider")


def _credentials() -> tuple[str | None, str | None]:
    """Username and password as MLflow finds them: the environment first, then ~/.mlflow/credentials."""
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    path = Path(os.path.expanduser("~/.mlflow/credentials"))
    if (user and password) or not path.is_file():
        return user, password
    config = configparser.ConfigParser()
    config.read(path)
    section = config["mlflow"] if "mlflow" in config else {}
    return user or section.get("mlflow_tracking_username"), password or section.get("mlflow_tracking_password")


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


class RestClient:
    """One tracking server, one kept-alive connection. Raises ``RestError`` for an error answer and
    ``OSError``/``http.client.HTTPException`` when the server cannot be talked to."""

    def __init__(self, tracking_uri: str, timeout_s: float = 10.0) -> None:
        parts = urllib.parse.urlsplit(tracking_uri.rstrip("/"))
        self.uri = tracking_uri
        self.scheme, self.base = parts.scheme, parts.path
        self.netloc = parts.netloc.rpartition("@")[2]  # user:password@ goes in a header, not the connection
        self.timeout_s = timeout_s
        self.headers = {"Content-Type": "application/json", "User-Agent": "insidellms-tracking"}
        user, password = _credentials()
        if parts.username is not None and parts.password is not None:
            user, password = urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password)
        token = os.environ.get("MLFLOW_TRACKING_TOKEN")
        if user and password:
            self.headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        elif token:
            self.headers["Authorization"] = f"Bearer {token}"
        self._conn: http.client.HTTPConnection | None = None
        self._artifact_uris: dict[str, str] = {}  # run id -> where its artifacts go
        self._library: Any = None  # mlflow_library.LibraryClient, for artifacts the server does not proxy

    # -- transport -----------------------------------------------------------------------------

    def _connect(self) -> http.client.HTTPConnection:
        if self.scheme == "http":
            return http.client.HTTPConnection(self.netloc, timeout=self.timeout_s, blocksize=_BLOCK)
        import ssl

        context = ssl.create_default_context(cafile=os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or None)
        if _truthy("MLFLOW_TRACKING_INSECURE_TLS"):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        client_cert = os.environ.get("MLFLOW_TRACKING_CLIENT_CERT_PATH")
        if client_cert:
            context.load_cert_chain(client_cert)
        return http.client.HTTPSConnection(self.netloc, timeout=self.timeout_s, context=context, blocksize=_BLOCK)

    def request(self, method: str, path: str, *, query: dict[str, Any] | None = None, body: Any = None,
                data: Any = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
        """One call; ``body`` is sent as JSON, ``data`` (bytes or a file) as it is. Returns the JSON answer."""
        url = self.base + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        payload = orjson.dumps(body) if body is not None else data
        sent = self.headers if headers is None else {**self.headers, **headers}
        for attempt in range(2):
            reused = self._conn is not None
            conn = self._conn = self._conn or self._connect()
            try:
                conn.request(method, url, body=payload, headers=sent)
                response = conn.getresponse()
                raw = response.read()
            except _RECONNECT:
                self.close()
                if reused and attempt == 0 and not hasattr(payload, "read"):
                    continue  # the server had closed the idle kept-alive connection: once more, afresh
                raise
            except BaseException:
                self.close()
                raise
            if response.status >= 400:
                raise _error(response.status, raw)
            if response.status >= 300:  # MLflow's client would follow it; say where to point instead
                where = response.getheader("Location") or "elsewhere"
                raise RestError(response.status, "REDIRECT", f"the server redirects to {where}; "
                                "set tracking_uri to that address")
            return json.loads(raw) if raw.strip() else {}
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- the tracking API ----------------------------------------------------------------------

    def get_experiment_by_name(self, name: str) -> dict[str, Any] | None:
        try:
            return self.request("GET", f"{API}/experiments/get-by-name", query={"experiment_name": name})["experiment"]
        except RestError as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise

    def create_experiment(self, name: str) -> str:
        return str(self.request("POST", f"{API}/experiments/create", body={"name": name})["experiment_id"])

    def search_runs(self, experiment_ids: list[str], filter_string: str, max_results: int) -> list[dict[str, Any]]:
        answer = self.request("POST", f"{API}/runs/search", body={
            "experiment_ids": experiment_ids, "filter": filter_string, "max_results": max_results})
        return [self._noted(run) for run in answer.get("runs") or []]

    def create_run(self, experiment_id: str, start_time: int, run_name: str, tags: dict[str, str]) -> dict[str, Any]:
        return self._noted(self.request("POST", f"{API}/runs/create", body={
            "experiment_id": experiment_id, "start_time": start_time, "run_name": run_name,
            "tags": _pairs(tags.items())})["run"])

    def get_run(self, run_id: str) -> dict[str, Any]:
        return self._noted(self.request("GET", f"{API}/runs/get", query={"run_id": run_id})["run"])

    def _noted(self, run: dict[str, Any]) -> dict[str, Any]:
        info = run.get("info") or {}
        if info.get("run_id") and info.get("artifact_uri"):
            self._artifact_uris[info["run_id"]] = info["artifact_uri"]
        return run

    def log_batch(self, run_id: str, metrics: Iterable[tuple[str, float, int, int]] = (),
                  params: Iterable[tuple[str, str]] = (), tags: Iterable[tuple[str, str]] = ()) -> None:
        """Metrics are (key, value, timestamp in ms, step); within MLflow's limits per call (the caller's job)."""
        self.request("POST", f"{API}/runs/log-batch", body={
            "run_id": run_id,
            "metrics": [{"key": k, "value": v, "timestamp": ts, "step": step} for k, v, ts, step in metrics],
            "params": _pairs(params), "tags": _pairs(tags)})

    def metric_history(self, run_id: str, key: str) -> list[dict[str, Any]]:
        points: list[dict[str, Any]] = []
        query: dict[str, Any] = {"run_id": run_id, "metric_key": key, "max_results": HISTORY_PAGE}
        while True:
            answer = self.request("GET", f"{API}/metrics/get-history", query=query)
            points += answer.get("metrics") or []
            if not answer.get("next_page_token"):
                return points
            query["page_token"] = answer["next_page_token"]

    def update_run(self, run_id: str, status: str, end_time: int) -> None:
        self.request("POST", f"{API}/runs/update", body={"run_id": run_id, "status": status, "end_time": end_time})

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        self.request("POST", f"{API}/runs/set-tag", body={"run_id": run_id, "key": key, "value": value})

    def log_artifact(self, run_id: str, local: Path, artifact_dir: str | None) -> None:
        """Store ``local`` with the run's artifacts, under ``artifact_dir``."""
        uri = self._artifact_uris.get(run_id) or self.get_run(run_id)["info"]["artifact_uri"]
        if is_proxied(uri):
            self.upload_artifact(uri, local, artifact_dir)
            return
        if self._library is None:  # S3, a shared disk...: the library knows how to write there
            from insideLLMs.tracking.backends._mlflow_library import LibraryClient

            self._library = LibraryClient(self.uri, int(self.timeout_s))
        self._library.log_artifact(run_id, local, artifact_dir)

    def upload_artifact(self, artifact_uri: str, local: Path, artifact_dir: str | None) -> None:
        """PUT ``local`` into a run's ``mlflow-artifacts:`` store, under ``artifact_dir`` (as MLflow's
        own client does: the tracking server's artifact proxy, or the host the URI names)."""
        target = urllib.parse.urlsplit(artifact_uri)
        if target.netloc and target.netloc != self.netloc:
            other = RestClient(f"{self.scheme}://{target.netloc}{self.base}", self.timeout_s)
            try:
                return other.upload_artifact(f"mlflow-artifacts:{target.path}", local, artifact_dir)
            finally:
                other.close()
        parts = (ARTIFACTS_API, target.path, artifact_dir or "", local.name)
        path = "/".join(p.strip("/") for p in parts if p.strip("/"))
        mime = mimetypes.guess_type(local.name)[0] or "application/octet-stream"
        with open(local, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            self.request("PUT", urllib.parse.quote("/" + path), data=fh,
                         headers={"Content-Type": mime, "Content-Length": str(size)})


def is_proxied(artifact_uri: str) -> bool:
    """True if a run's artifacts are served by the tracking server itself (``upload_artifact`` works)."""
    return artifact_uri.startswith("mlflow-artifacts:")


def _pairs(items: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in items]


def _error(status: int, raw: bytes) -> RestError:
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = {}
    if not isinstance(answer, dict):
        answer = {}
    message = str(answer.get("message") or raw[:200].decode("utf-8", "replace").strip())
    return RestError(status, str(answer.get("error_code") or ""), message)
