"""A real ``mlflow server`` for tests: sqlite backend store and local artifacts in a tmp folder, on a
free 127.0.0.1 port. Start-up is slow (tens of seconds), so one server serves the whole session;
fault tests stop, kill and restart it (same sqlite file, same port) through ``MlflowServer``.

Fixtures: ``mlflow_server`` (running at the start of each test that asks for it),
``mlflow_env`` (MLflow client settings: no telemetry, HOME in tmp), ``dead_mlflow_uri``
(a port with nothing listening).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

MLFLOW_BIN = Path(sys.executable).with_name("mlflow")
START_TIMEOUT_S = 240.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client_env(home: Path) -> dict[str, str]:
    """Environment for anything that runs MLflow code: no telemetry, nothing written to the real HOME."""
    return {
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
    }


class MlflowServer:
    """One ``mlflow server`` process group; ``stop``/``kill``/``start`` keep the same store and port."""

    def __init__(self, root: Path, port: int | None = None, *, backend_store_uri: str | None = None,
                 serve_artifacts: bool = False, workers: int = 1) -> None:
        self.root = root
        self.port = port or free_port()
        self.db = root / "mlflow.db"
        self.backend_store_uri = backend_store_uri or f"sqlite:///{self.db}"  # a PostgreSQL one: support/postgres.py
        self.serve_artifacts = serve_artifacts
        self.workers = workers
        self.artifacts = root / "artifacts"
        self.log = root / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        (root / "home").mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        if self.running:
            return
        env = {**os.environ, **client_env(self.root / "home"), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        cmd = [
            str(MLFLOW_BIN), "server",
            "--backend-store-uri", self.backend_store_uri,
            "--artifacts-destination", str(self.artifacts),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers),
            *(["--serve-artifacts"] if self.serve_artifacts else []),
        ]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.proc.returncode}:\n{self._tail()}")
            if self.healthy():
                return
            time.sleep(0.3)
        self.kill()
        raise RuntimeError(f"mlflow server did not become healthy in {timeout_s:.0f}s:\n{self._tail()}")

    def _signal(self, sig: int, wait_s: float) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)  # the server and its uvicorn worker: our own process group
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        # wait until the port is really free (a restart reuses it)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.healthy():
            time.sleep(0.1)
        self.proc = None

    def stop(self) -> None:
        """Graceful stop (SIGTERM)."""
        self._signal(signal.SIGTERM, 20)

    def kill(self) -> None:
        """The server dies abruptly (SIGKILL to its process group)."""
        self._signal(signal.SIGKILL, 10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def _tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
        except OSError:
            return ""


def pytest_configure(config: pytest.Config) -> None:
    """Importing mlflow writes ~/.config/mlflow/telemetry.json unless telemetry is off; test modules
    import it at collection, before any fixture could move HOME, so switch it off for the session."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


#: session-wide servers (this module's and postgres.py's): each starts in ~13 s of CPU, so once per pytest process
SESSION_SERVERS = ("_mlflow_server_session", "_mlflow_pg_session")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``make test``), the tests of one session-wide server go to one worker, which starts it
    once instead of once per worker."""
    for item in items:
        for name in SESSION_SERVERS:
            if name in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group(name))
                break


@pytest.fixture(scope="session")
def mlflow_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """MLflow client settings for this test process (telemetry off, HOME/XDG in tmp)."""
    home = tmp_path_factory.mktemp("mlflow-client-home")
    env = client_env(home)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        yield env


@pytest.fixture(scope="session")
def _mlflow_server_session(tmp_path_factory: pytest.TempPathFactory, mlflow_env: dict[str, str]) -> Iterator[MlflowServer]:
    if not MLFLOW_BIN.exists() and shutil.which("mlflow") is None:
        pytest.skip("mlflow is not installed (pip install 'insidellms[mlflow]')")
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    server.start()
    try:
        yield server
    finally:
        server.kill()


def kept_running(server: MlflowServer) -> Iterator[MlflowServer]:
    """A session's server for one test: running at its start, and again after it (a test may stop it)."""
    if not server.running or not server.healthy():
        server.kill()
        server.start()
    yield server
    if not server.running:
        server.start()


@pytest.fixture
def mlflow_server(_mlflow_server_session: MlflowServer) -> Iterator[MlflowServer]:
    """The session's MLflow server, running at the start of the test and again after it."""
    yield from kept_running(_mlflow_server_session)


@pytest.fixture
def dead_mlflow_uri(mlflow_env: dict[str, str]) -> str:
    """An MLflow URI where nothing listens (connection refused)."""
    return f"http://127.0.0.1:{free_port()}"
