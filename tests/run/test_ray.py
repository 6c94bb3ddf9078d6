"""The Ray executor against a real local Ray cluster: the same run directory as a local run, byte for byte; a killed
worker or driver loses and duplicates nothing; a cluster that cannot be reached, or ray not installed, is one line.

Ray binds to the machine's network address even when told 127.0.0.1, so every test that starts a cluster runs in a
network namespace holding only loopback: ``test_on_a_ray_cluster`` re-runs this file's cluster tests in a pytest
under ``unshare -n``, where the fake model server and a two-node cluster (``ray start --head --block`` plus a second
node, each stopped by its PID) are started on free ports. Outside that namespace those tests are skipped.
"""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import orjson
import pytest

from fake_llm_server import FakeLLMServer
from insideLLMs.config import load_config
from insideLLMs.events import ExampleFinished
from insideLLMs.models.base import Completion
from insideLLMs.run import RayExecutor, build_harness
from insideLLMs.run._ray import concurrency_shares
from support.cli import INSIDELLMS, run_cli, write_config, write_jsonl

IN_NETNS = os.environ.get("INSIDELLMS_TEST_NETNS") == "1"
RAY = str(Path(sys.executable).parent / "ray")
cluster_only = pytest.mark.skipif(not IN_NETNS, reason="runs inside test_on_a_ray_cluster's network namespace")
N = 150  # examples per model; two models, each answer judged: 600 requests


def test_concurrency_is_split_between_workers_never_multiplied() -> None:
    assert concurrency_shares(8, 2) == [4, 4]
    assert concurrency_shares(7, 3) == [3, 2, 2]
    assert concurrency_shares(2, 4) == [1, 1]  # never more workers than requests in flight
    assert sum(concurrency_shares(64, 5)) == 64


@pytest.mark.slow
def test_on_a_ray_cluster(tmp_path: Path) -> None:
    """The cluster tests below, in a network namespace of their own (all Ray traffic on 127.0.0.1), with a HOME of
    their own (Ray keeps state such as an auth token in ~/.ray, which must neither leak in nor out)."""
    if IN_NETNS:
        pytest.skip("already inside the namespace")
    pytest.importorskip("ray", reason="the ray extra is not installed")
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode:
        pytest.skip("needs unshare -n (root) for a loopback-only network namespace")
    inner = [
        sys.executable,
        "-m",
        "pytest",
        __file__,
        "-q",
        "-x",
        "-p",
        "no:cacheprovider",
        "-k",
        "on_cluster",
        "-o",
        "addopts=--import-mode=importlib",
    ]
    script = "ip link set lo up && exec " + " ".join(f"'{a}'" for a in inner)
    result = subprocess.run(
        ["unshare", "-n", "sh", "-c", script],
        env={**os.environ, "INSIDELLMS_TEST_NETNS": "1", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parents[2],
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout.splitlines()[-1], result.stdout[-2000:]


# -- the cluster and the model, inside the namespace -----------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_node(args: list[str], log: Path, env: dict[str, str], timeout: float = 120) -> subprocess.Popen[bytes]:
    """``ray start ... --block``, returned once it says the node runs (under load that takes a while)."""
    with log.open("wb") as out:
        process = subprocess.Popen([RAY, "start", "--block", *args], env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while b"Ray runtime started" not in log.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            raise RuntimeError(f"ray start {' '.join(args)} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    return process


def _stop(process: subprocess.Popen[bytes]) -> None:
    """``ray start --block`` stops the node's processes when it gets SIGTERM."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """A two-node Ray cluster on 127.0.0.1: ``HOST:PORT`` of its head. The second node stops first (a node whose
    head is gone waits for it before stopping)."""
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    port = _free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=2", "--disable-usage-stats"]
    processes = []
    try:
        processes.append(
            _start_node(
                ["--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}", *common],
                temp / "head.log",
                env,
            )
        )
        processes.append(_start_node([f"--address=127.0.0.1:{port}", *common], temp / "node.log", env))
        yield f"127.0.0.1:{port}"
    finally:
        for process in reversed(processes):
            _stop(process)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    fake = FakeLLMServer(latency_ms=10, judge={"verdicts": {"7": "C"}, "default": "A"}).start()
    try:
        yield fake
    finally:
        fake.stop()


def _eval(tmp_path: Path, server: FakeLLMServer, n: int = N, concurrency: int = 8, **runner: Any) -> Path:
    """Two models x a prompt probe whose answers a judge grades: every example is two requests."""
    write_jsonl(
        tmp_path / "qa.jsonl", [{"id": f"q{i:04d}", "question": f"What is {i}?", "gold": str(i)} for i in range(n)]
    )
    model = {"type": "openai", "args": {"api_key": "k", "base_url": server.openai_base_url}}
    judge = {
        "type": "judge",
        "rubric": "Is it the number?",
        "grades": {"A": 1, "B": 0.5, "C": 0},
        "pass_at": 0.5,
        "model": {
            "type": "openai",
            "args": {"model_name": "judge", "api_key": "k", "base_url": server.openai_base_url},
        },
    }
    return write_config(
        tmp_path / "eval.yaml",
        {
            "models": [{**model, "args": {**model["args"], "model_name": name}} for name in ("m1", "m2")],
            "dataset": {"path": "qa.jsonl"},
            "probes": [
                {
                    "type": "prompt",
                    "args": {"template": "{{ question }}", "target": "{{ gold }}", "scorers": ["includes", judge]},
                }
            ],
            "runner": {"concurrency": concurrency, "max_retries": 1, "timeout_s": 10, **runner},
        },
    )


def _deterministic(run_dir: Path) -> dict[str, bytes]:
    summary = orjson.loads((run_dir / "summary.json").read_bytes())
    summary.pop("volatile")
    return {
        "records.jsonl": (run_dir / "records.jsonl").read_bytes(),
        "manifest.json": (run_dir / "manifest.json").read_bytes(),
        "summary.json": orjson.dumps(summary, option=orjson.OPT_SORT_KEYS),
    }


def _local_reference(config: Path, tmp_path: Path, server: FakeLLMServer) -> dict[str, bytes]:
    """The same config run in this machine's one process (``--executor local`` overrides the config's)."""
    result = run_cli(
        "harness", str(config), "--executor", "local", "--run-dir", str(tmp_path / "local"), "--no-progress"
    )
    assert result.returncode == 0, result.stderr
    server.stats = type(server.stats)()
    return _deterministic(tmp_path / "local")


@cluster_only
def test_on_cluster_the_run_is_the_local_run_byte_for_byte_at_the_same_total_concurrency(
    tmp_path: Path, server: FakeLLMServer, ray_cluster: str
) -> None:
    config = _eval(tmp_path, server, executor={"type": "ray", "address": ray_cluster, "workers": 2})
    local = _local_reference(config, tmp_path, server)
    result = run_cli("harness", str(config), "--run-dir", str(tmp_path / "ray"), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert _deterministic(tmp_path / "ray") == local
    records = [orjson.loads(line) for line in local["records.jsonl"].splitlines()]
    assert len(records) == 2 * N and records[7]["scores"]["judge"] == 0 and records[8]["scores"]["judge"] == 1
    stats = server.stats.to_dict()
    assert stats["requests"] == 4 * N  # each answer and each verdict asked once
    assert stats["peak_in_flight"] <= 8  # runner.concurrency is the total over both workers


@cluster_only
def test_on_cluster_a_killed_worker_loses_and_duplicates_nothing(
    tmp_path: Path, server: FakeLLMServer, ray_cluster: str
) -> None:
    config = _eval(tmp_path, server, concurrency=8)
    local = _local_reference(config, tmp_path, server)
    executor = RayExecutor(address=ray_cluster, workers=2)
    killed: list[int] = []
    events: list[Any] = []

    class KillAWorker:  # a listener: at the 60th example written, SIGKILL the first worker's process
        def on_run_started(self, event: Any) -> None:
            events.append("started")

        def on_example_finished(self, event: ExampleFinished) -> None:
            events.append(event.step)
            if event.step == 60 and not killed:
                killed.append(executor.pids[0])
                os.kill(executor.pids[0], signal.SIGKILL)

        def on_run_finished(self, event: Any) -> None:
            events.append(event.status)

    harness = build_harness(load_config(config), run_dir=tmp_path / "ray", listeners=[KillAWorker()])
    harness.settings.executor = executor
    outcome = harness.run()
    assert killed and outcome.summary["totals"]["n"] == 2 * N
    assert _deterministic(tmp_path / "ray") == local  # each example once, in canonical order
    assert events == ["started", *range(2 * N), "finished"]  # listeners hear one run, from the driver alone
    resent = server.stats.requests - 4 * N
    assert 0 <= resent <= 2 * 4  # at most the killed worker's in-flight requests (4 answers and their verdicts)


@cluster_only
def test_on_cluster_a_killed_driver_continues_with_resume(
    tmp_path: Path, server: FakeLLMServer, ray_cluster: str
) -> None:
    config = _eval(tmp_path, server, n=400, executor={"type": "ray", "workers": 2})
    local = _local_reference(config, tmp_path, server)
    run_dir = tmp_path / "ray"
    args = [
        INSIDELLMS,
        "harness",
        str(config),
        "--ray-address",
        ray_cluster,
        "--run-dir",
        str(run_dir),
        "--no-progress",
    ]
    driver = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    records = run_dir / "records.jsonl"
    deadline = time.monotonic() + 180
    while not records.exists() or records.read_bytes().count(b"\n") < 200:
        assert driver.poll() is None and time.monotonic() < deadline, driver.communicate()[1].decode()[-3000:]
        time.sleep(0.02)
    driver.kill()
    driver.communicate()
    written = records.read_bytes().count(b"\n")
    assert 200 <= written < 800 and not (run_dir / "manifest.json").exists()

    result = subprocess.run([*args, "--resume"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert _deterministic(run_dir) == local
    # what the dead driver had not written yet is asked again: at most its write window (256) of examples
    assert 4 * 400 <= server.stats.requests <= 4 * 400 + 2 * 256


# -- without a cluster -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_an_unreachable_cluster_is_one_line_within_seconds(tmp_path: Path, fake_llm_server) -> None:  # noqa: ANN001
    pytest.importorskip("ray", reason="the ray extra is not installed")
    config = _eval(tmp_path, fake_llm_server, n=3)
    started = time.monotonic()
    result = run_cli(
        "harness", str(config), "--ray-address", f"127.0.0.1:{_free_port()}", "--run-dir", str(tmp_path / "run")
    )
    assert time.monotonic() - started < 30  # not Ray's own connection retries (a minute and more)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach the Ray cluster at 127.0.0.1:"), result.stderr
    assert "ray start --head" in lines[0]
    assert not (tmp_path / "run").exists() and fake_llm_server.stats.requests == 0


@pytest.mark.slow
def test_without_ray_installed_the_executor_names_the_extra(tmp_path: Path, fake_llm_server) -> None:  # noqa: ANN001
    config = _eval(tmp_path, fake_llm_server, n=3, executor={"type": "ray", "workers": 2})
    no_ray = (
        "import sys; sys.modules['ray'] = None; sys.argv[0] = 'insidellms'; "
        "from insideLLMs.cli.main import main; main()"
    )
    for extra in ((), ("--executor", "ray")):
        result = subprocess.run(
            [sys.executable, "-c", no_ray, "harness", str(config), *extra, "--run-dir", str(tmp_path / "run")],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 1
        line = next(i for i, text in enumerate(config.read_text().splitlines(), 1) if "type: ray" in text)
        where = "--executor ray" if extra else f"{config}:{line}: runner.executor"
        assert result.stderr == (
            f"error: {where}: the ray executor needs the ray package: pip install 'insidellms[ray]'\n"
        )
    assert not (tmp_path / "run").exists() and fake_llm_server.stats.requests == 0


@pytest.mark.slow
def test_every_example_config_reaches_the_workers_intact() -> None:
    """Ray pickles a run's cells to its workers: each comes back building the same prompts and scoring the same
    (compiled templates, JSON Schema validators and the embedded model are rebuilt from their sources)."""
    configs = sorted((Path(__file__).parents[2] / "examples").rglob("*.yaml"))
    assert configs
    for path in configs:
        cells = build_harness(load_config(path)).cells
        for cell, copy in zip(cells, pickle.loads(pickle.dumps(cells)), strict=True):
            example = next(iter(cell.prompt_set))
            assert copy.model.spec == cell.model.spec and copy.probe.spec == cell.probe.spec
            assert copy.probe.build_all(example) == cell.probe.build_all(example), path
            if not cell.probe.judge_models:
                for text in ('{"name": "Ada", "email": "ada@example.com"}', "{not json", "B", "42"):
                    answer = Completion(text=text)
                    assert copy.probe.score(example, answer) == cell.probe.score(example, answer), (path, text)
