"""A throwaway PostgreSQL cluster, and an ``mlflow server`` on it: a team's tracking server, for tests.

``initdb`` makes a cluster in a fresh temporary folder and ``pg_ctl`` starts it on a free 127.0.0.1 port (its
socket in that folder too); it is stopped by the postmaster's PID (and started again on the same port and data,
for outage tests), and the folder removed at the end of the session. PostgreSQL refuses
to run as root, so as root the cluster belongs to ``nobody`` and its programs run through ``runuser``. The
binaries are Debian's (``/usr/lib/postgresql/<version>/bin``, installed by ``make setup-test``) or on PATH.

Fixtures: ``postgres`` (the session's cluster), ``mlflow_pg_server`` (``mlflow server`` with its backend store
in that cluster and artifacts proxied by the server, ``--serve-artifacts``: the production setup MLflow
documents), running at the start of each test that asks for it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from support.mlflow_server import MLFLOW_BIN, MlflowServer, free_port, kept_running

DEBIAN_ROOT = Path("/usr/lib/postgresql")
UNPRIVILEGED = "nobody"
START_TIMEOUT_S = 60.0


def postgres_bin_dir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are: Debian's newest version, else PATH; None when not installed."""
    versions = sorted(DEBIAN_ROOT.glob("*/bin/initdb"), key=lambda p: _version(p.parent.parent.name), reverse=True)
    if versions:
        return versions[0].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(p) for p in name.split(".") if p.isdigit())


class PostgresCluster:
    """One PostgreSQL cluster in a temporary folder: ``start``, ``stop`` (by PID), ``url(database)``."""

    def __init__(self, bin_dir: Path, user: str = "postgres") -> None:
        self.bin_dir = bin_dir
        self.user = user  # the database superuser (trust authentication: the cluster only listens on 127.0.0.1)
        # not under pytest's tmp folders: those are private to root, and the cluster's owner must reach its folder
        self.root = Path(tempfile.mkdtemp(prefix="insidellms-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self.pid: int | None = None
        self._as_owner: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, user=UNPRIVILEGED)
            self._as_owner = ["runuser", "-u", UNPRIVILEGED, "--"]

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*self._as_owner, *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.root,
            env={**os.environ, "LC_ALL": "C.UTF-8"},
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args[:2])} failed ({result.returncode}):\n{result.stdout}{result.stderr}{self._tail()}"
            )
        return result

    def start(self) -> None:
        if not (self.data / "PG_VERSION").exists():
            self._run(
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            )
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.log),
            "-w",
            "-t",
            str(int(START_TIMEOUT_S)),
            "start",
        )
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])

    def create_database(self, name: str) -> str:
        """A new database; returns its URL."""
        self._run(str(self.bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, name)
        return self.url(name)

    def url(self, database: str) -> str:
        """The libpq URL (what psql and psycopg2 take)."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def sqlalchemy_url(self, database: str) -> str:
        """The URL MLflow's store takes: the driver named, since SQLAlchemy 2.1 picks psycopg 3 for a bare
        ``postgresql://`` and we install psycopg2."""
        return self.url(database).replace("postgresql://", "postgresql+psycopg2://", 1)

    def stop(self) -> None:
        """Fast shutdown: SIGINT to the postmaster, by its PID (the data stays; ``start`` brings it back)."""
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _alive(self.pid):
            time.sleep(0.05)
        if _alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)
        self.pid = None

    def remove(self) -> None:
        """Stop the cluster and delete its folder."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _tail(self) -> str:
        try:
            return "\n" + "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not running (the postmaster is not our child, but be safe)
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (make setup-test installs Debian's postgresql)")
    cluster = PostgresCluster(bin_dir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture(scope="session")
def _mlflow_pg_session(
    tmp_path_factory: pytest.TempPathFactory, mlflow_env: dict[str, str], postgres: PostgresCluster
) -> Iterator[MlflowServer]:
    if not MLFLOW_BIN.exists() and shutil.which("mlflow") is None:
        pytest.skip("mlflow is not installed (pip install 'insidellms[mlflow]')")
    pytest.importorskip("psycopg2", reason="psycopg2 is not installed (pip install psycopg2-binary)")
    postgres.create_database("mlflow")
    server = MlflowServer(
        tmp_path_factory.mktemp("mlflow-pg-server"),
        backend_store_uri=postgres.sqlalchemy_url("mlflow"),
        serve_artifacts=True,
        workers=2,
    )
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def mlflow_pg_server(_mlflow_pg_session: MlflowServer) -> Iterator[MlflowServer]:
    """The session's MLflow server on PostgreSQL, running at the start of the test and again after it."""
    yield from kept_running(_mlflow_pg_session)
