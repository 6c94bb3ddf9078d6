"""Faults during a run, against the fake OpenAI-compatible server: each ends in one clean line (or none),
its documented exit code, a run directory that `--resume` completes with every example exactly once
(byte for byte the records of an uninterrupted run), and no more requests than examples + retries.
The table of these cases and their outcomes is docs/reliability.md."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fake_llm_server import FakeLLMServer
from support.cli import INSIDELLMS, dummy_config, qa_rows, run_cli, write_config, write_jsonl, sigint_as_in_a_terminal

FAKE_SERVER = Path(__file__).resolve().parents[1] / "fake_llm_server.py"


def _config(tmp_path: Path, base_url: str, n: int, **runner: Any) -> None:
    write_jsonl(tmp_path / "data.jsonl", qa_rows(n))
    config = dummy_config(model={"type": "openai", "args": {"model_name": "gpt-test", "api_key": "k",
                                                            "base_url": base_url}})
    config["runner"].update({"concurrency": 4, **runner})
    write_config(tmp_path / "eval.yaml", config)


def _run(tmp_path: Path, run_dir: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli("run", "eval.yaml", "--run-dir", run_dir, "--no-track", "--no-progress", *extra, cwd=tmp_path)


def _start(tmp_path: Path, run_dir: str) -> subprocess.Popen[str]:
    return subprocess.Popen([INSIDELLMS, "run", "eval.yaml", "--run-dir", run_dir, "--no-track", "--no-progress"],
                            cwd=tmp_path, preexec_fn=sigint_as_in_a_terminal, env={**os.environ, "NO_COLOR": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _wait_for_records(run_dir: Path, count: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while _lines(run_dir / "records.jsonl") < count:
        assert proc.poll() is None, "the run ended before the fault"
        assert time.monotonic() < deadline, "the run did not get going"
        time.sleep(0.005)


def _one_line(stderr: str, prefix: str) -> str:
    """The one line a fault may print (after the progress bar's blank line), with no traceback."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(prefix) and "Traceback" not in stderr, stderr
    return lines[0]


def _each_example_once(run_dir: Path, n: int) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]
    assert [r["example_id"] for r in records] == [f"q{i:05d}" for i in range(n)]
    assert not (run_dir / ".incomplete").exists() and (run_dir / "manifest.json").exists()
    return records


class _ServerProcess:
    """tests/fake_llm_server.py in its own process, so it can die as a real server does (SIGKILL)."""

    def __init__(self, port: int = 0, latency_ms: float = 0) -> None:
        self.proc = subprocess.Popen([sys.executable, str(FAKE_SERVER), "--port", str(port), "--latency-ms",
                                      str(latency_ms)], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().split()[-1]  # "listening on http://127.0.0.1:PORT"
        self.port = int(self.base_url.rsplit(":", 1)[1])

    def requests(self) -> int:
        import urllib.request

        with urllib.request.urlopen(f"{self.base_url}/_stats", timeout=5) as resp:
            return int(json.load(resp)["requests"])

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@pytest.fixture
def server_process() -> Iterator[list[_ServerProcess]]:
    """Started fake servers (a test appends); each is killed by its pid at the end."""
    started: list[_ServerProcess] = []
    yield started
    for server in started:
        if server.proc.poll() is None:
            server.kill()
        assert server.proc.stdout is not None
        server.proc.stdout.close()


@pytest.mark.slow
def test_server_killed_mid_run_stops_it_resumably(tmp_path: Path, server_process: list[_ServerProcess]) -> None:
    n = 300
    first = _ServerProcess(latency_ms=10)
    server_process.append(first)
    _config(tmp_path, first.base_url + "/v1", n, max_retries=1)
    assert _run(tmp_path, "whole").returncode == 0
    proc = _start(tmp_path, "cut")
    _wait_for_records(tmp_path / "cut", 30, proc)
    first.kill()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    line = _one_line(err, "error: run stopped after ")
    assert f"cannot connect to the OpenAI-compatible endpoint at {first.base_url}/v1" in line
    assert line.endswith("continue later with --resume (run dir cut)")
    kept = _lines(tmp_path / "cut" / "records.jsonl")
    assert 30 <= kept < n and f"after {kept} of {n} examples" in line  # what it says is what is on disk

    again = _ServerProcess(port=first.port)  # the server is back, at the same address
    server_process.append(again)
    resumed = _run(tmp_path, "cut", "--resume")
    assert resumed.returncode == 0 and resumed.stderr == "", resumed.stderr
    assert again.requests() == n - kept  # only what is missing is asked again
    _each_example_once(tmp_path / "cut", n)
    assert (tmp_path / "cut" / "records.jsonl").read_bytes() == (tmp_path / "whole" / "records.jsonl").read_bytes()


def _errors_and_hangs(server: FakeLLMServer, n: int) -> tuple[set[str], set[str]]:
    """30 % of the examples always answer HTTP 500, another 10 % never answer."""
    failing = {f"q{i:05d}" for i in range(n) if i % 10 in (0, 3, 6)}
    hanging = {f"q{i:05d}" for i in range(n) if i % 10 == 9}
    for example_id in failing | hanging:
        kind = "status" if example_id in failing else "hang"
        server.add_fault(kind, status=500, times=None, match=f"is {int(example_id[1:])} plus")
    return failing, hanging


@pytest.mark.slow
def test_errors_and_hangs_become_error_records_and_fail_on_errors_exits_3(
    tmp_path: Path, fake_llm_server: FakeLLMServer,
) -> None:
    n, retries = 40, 1
    failing, hanging = _errors_and_hangs(fake_llm_server, n)
    _config(tmp_path, fake_llm_server.openai_base_url, n, max_retries=retries, timeout_s=1.0, concurrency=8)
    result = _run(tmp_path, "out", "--fail-on-errors")
    assert result.returncode == 3, result.stderr
    assert _one_line(result.stderr, "! ") == f"! {len(failing | hanging)} example(s) ended in an error (--fail-on-errors)"
    records = _each_example_once(tmp_path / "out", n)
    status = {r["example_id"]: r["status"] for r in records}
    assert {i for i, s in status.items() if s == "error"} == failing
    assert {i for i, s in status.items() if s == "timeout"} == hanging
    assert all(status[i] == "success" for i in status.keys() - failing - hanging)
    assert fake_llm_server.stats.requests == n + len(failing | hanging) * retries  # each fault retried exactly

    fake_llm_server.reset()
    done = _run(tmp_path, "out", "--resume")  # a finished run: nothing to ask, nothing changed
    assert done.returncode == 0 and fake_llm_server.stats.requests == 0, done.stderr
    assert len(_each_example_once(tmp_path / "out", n)) == n


@pytest.mark.slow
@pytest.mark.parametrize(("trickle_s", "timeout_s", "requests"), [
    (0.3, 2.0, 12),  # slower than usual, within the time limit: answered
    (2.5, 1.0, 14),  # slower than the time limit: cut off and asked again (two such answers)
])
def test_slow_answers_are_waited_for_or_cut_off_by_the_time_limit(
    tmp_path: Path, fake_llm_server: FakeLLMServer, trickle_s: float, timeout_s: float, requests: int,
) -> None:
    n = 12
    _config(tmp_path, fake_llm_server.openai_base_url, n, max_retries=1)
    assert _run(tmp_path, "whole").returncode == 0
    fake_llm_server.reset()
    _config(tmp_path, fake_llm_server.openai_base_url, n, max_retries=1, timeout_s=timeout_s)
    fake_llm_server.add_fault("slow", seconds=trickle_s, times=2)
    result = _run(tmp_path, "out")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert fake_llm_server.stats.requests == requests
    _each_example_once(tmp_path / "out", n)
    assert (tmp_path / "out" / "records.jsonl").read_bytes() == (tmp_path / "whole" / "records.jsonl").read_bytes()


@pytest.mark.slow
def test_a_429_storm_is_waited_out_as_retry_after_says(tmp_path: Path, fake_llm_server: FakeLLMServer) -> None:
    n, storm = 12, 8
    _config(tmp_path, fake_llm_server.openai_base_url, n, max_retries=3)
    assert _run(tmp_path, "whole").returncode == 0
    fake_llm_server.reset()
    fake_llm_server.add_fault("status", status=429, retry_after="1", times=storm)  # two rounds of four workers
    result = _run(tmp_path, "out")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert fake_llm_server.stats.requests == n + storm
    _each_example_once(tmp_path / "out", n)
    assert (tmp_path / "out" / "records.jsonl").read_bytes() == (tmp_path / "whole" / "records.jsonl").read_bytes()


@pytest.mark.slow
def test_a_429_storm_that_outlasts_the_retries_is_error_records(tmp_path: Path, fake_llm_server: FakeLLMServer) -> None:
    n, retries = 8, 2
    _config(tmp_path, fake_llm_server.openai_base_url, n, max_retries=retries)
    fake_llm_server.add_fault("status", status=429, retry_after="0", times=None)
    result = _run(tmp_path, "out", "--fail-on-errors")
    assert result.returncode == 3
    assert _one_line(result.stderr, "! ") == f"! {n} example(s) ended in an error (--fail-on-errors)"
    assert fake_llm_server.stats.requests == n * (1 + retries)
    records = _each_example_once(tmp_path / "out", n)
    assert {r["status"] for r in records} == {"rate_limited"}


@pytest.mark.slow
@pytest.mark.parametrize(("url", "why"), [
    ("http://nonexistent.invalid:1/v1", "Name or service not known"),  # DNS: fails locally, no traffic
    ("https://127.0.0.1:{port}/v1", "the server does not speak TLS there: use http:// in base_url"),  # https:// to a plain-HTTP server
])
def test_an_endpoint_that_cannot_be_reached_stops_the_run_before_any_answer(
    tmp_path: Path, fake_llm_server: FakeLLMServer, url: str, why: str,
) -> None:
    n = 10
    _config(tmp_path, url.format(port=fake_llm_server.port), n, max_retries=1)
    result = _run(tmp_path, "out")
    assert result.returncode == 1
    line = _one_line(result.stderr, "error: run stopped after 0 of 10 examples: cannot connect to ")
    assert why in line and line.endswith("continue later with --resume (run dir out)")
    assert fake_llm_server.stats.requests == 0
    assert _lines(tmp_path / "out" / "records.jsonl") == 0 and (tmp_path / "out" / ".incomplete").exists()

    _config(tmp_path, fake_llm_server.openai_base_url, n, max_retries=1)  # the address fixed: the same run goes on
    resumed = _run(tmp_path, "out", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert fake_llm_server.stats.requests == n
    _each_example_once(tmp_path / "out", n)


def _limit_file_size() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))  # records.jsonl outgrows it after ~50 examples


@pytest.mark.slow
def test_a_full_disk_costs_no_answer_twice_beyond_what_was_lost(tmp_path: Path, fake_llm_server: FakeLLMServer) -> None:
    n = 120
    _config(tmp_path, fake_llm_server.openai_base_url, n, max_retries=0)
    full = subprocess.run([INSIDELLMS, "run", "eval.yaml", "--run-dir", "out", "--no-track", "--no-progress"],
                          cwd=tmp_path, capture_output=True, text=True, preexec_fn=_limit_file_size, timeout=120)
    assert full.returncode == 1
    assert _one_line(full.stderr, "error: ").endswith("cannot write (File too large); make room, then continue "
                                                     "with --resume")
    kept = _lines(tmp_path / "out" / "records.jsonl")
    assert 0 < kept < n
    fake_llm_server.reset()
    resumed = _run(tmp_path, "out", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert fake_llm_server.stats.requests == n - kept
    _each_example_once(tmp_path / "out", n)


_SIGNALS = [
    (signal.SIGINT, 130, "interrupted; continue with: insidellms run eval.yaml --run-dir cut --resume"),
    (signal.SIGTERM, 143, "terminated (SIGTERM); continue with: insidellms run eval.yaml --run-dir cut --resume"),
    (signal.SIGKILL, -signal.SIGKILL, None),  # nothing can be said; the run directory says it stopped
]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize(("signum", "code", "said"), _SIGNALS, ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_a_signal_at_a_random_point_then_resume_gives_the_uninterrupted_records(
    tmp_path: Path, fake_llm_server: FakeLLMServer, signum: int, code: int, said: str | None, seed: int,
) -> None:
    n = 150
    _config(tmp_path, fake_llm_server.openai_base_url, n, max_retries=0)
    assert _run(tmp_path, "whole").returncode == 0
    fake_llm_server.configure(latency_ms=20)  # the run takes ~1 s: the signal comes while it runs
    at = random.Random(seed * 1000 + signum).randint(1, n // 2)  # records on disk when the signal comes
    proc = _start(tmp_path, "cut")
    _wait_for_records(tmp_path / "cut", at, proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    if said is None:
        assert err == ""
    else:
        assert _one_line(err, said[:10]) == said
    kept = _lines(tmp_path / "cut" / "records.jsonl")
    assert at <= kept <= n and (tmp_path / "cut" / ".incomplete").exists()

    fake_llm_server.reset()
    resumed = _run(tmp_path, "cut", "--resume")
    assert resumed.returncode == 0 and resumed.stderr == "", resumed.stderr
    assert fake_llm_server.stats.requests == n - kept
    _each_example_once(tmp_path / "cut", n)
    assert (tmp_path / "cut" / "records.jsonl").read_bytes() == (tmp_path / "whole" / "records.jsonl").read_bytes()
