"""The MLflow sink against a real ``mlflow server`` (sqlite store), read back with ``MlflowClient``."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from support.cli import with_pythonpath

from insideLLMs.tracking.sink import Event, SinkContext, SinkError

pytestmark = pytest.mark.slow
mlflow = pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402

from insideLLMs.tracking.backends.mlflow import MlflowSink  # noqa: E402
from support.tracking_events import LONG_PROMPT, EventLog, expected_history, sample_run  # noqa: E402

def history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def all_artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> list[str]:
    out = []
    for info in client.list_artifacts(run_id, path):
        out.extend(all_artifacts(client, run_id, info.path) if info.is_dir else [info.path])
    return sorted(out)


def make_sink(run_dir: Path, uri: str, experiment: str, state: dict[str, Any] | None = None, **options: Any) -> MlflowSink:
    return MlflowSink(SinkContext(run_dir=run_dir, options={"tracking_uri": uri, "experiment_name": experiment,
                                                            **options}, state=state if state is not None else {}))


def deliver_in_batches(sink: MlflowSink, events: list[Event], size: int = 1000) -> None:
    for start in range(0, len(events), size):
        sink.deliver(events[start:start + size])


def test_a_delivered_run_reads_back_whole(tmp_path: Path, mlflow_server: Any, capfd: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = tmp_path / "run_aaa111"
    log = sample_run(run_dir)
    sink = make_sink(run_dir, mlflow_server.url, "llm-evaluation")
    deliver_in_batches(sink, log.events)
    sink.close()
    assert capfd.readouterr().out == ""  # nothing printed into the evaluation's output

    client = MlflowClient(mlflow_server.url)
    experiment = client.get_experiment_by_name("llm-evaluation")
    assert experiment is not None  # created because it was missing
    run = client.get_run(sink.ctx.state["run_id"])
    assert run.info.experiment_id == experiment.experiment_id
    assert run.info.run_name == "bias-test"
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["model"] == "gpt-4o"
    assert params["temperature"] == "0.7"
    assert params["max_tokens"] == "1000"
    assert params["seed"] == "None"
    assert params["bad:key_x"] == "ok"
    import hashlib

    assert params["prompt_template"] == "sha256:" + hashlib.sha256(LONG_PROMPT.encode()).hexdigest()
    tags = run.data.tags
    assert tags["mlflow.runName"] == "bias-test"
    assert tags["v1"] == "" and tags["team"] == "eval" and tags["environment"] == "ci"
    assert tags["insidellms.run_key"] == "run_aaa111"
    assert sink.ctx.state["url"] == f"{mlflow_server.url}/#/experiments/{experiment.experiment_id}/runs/{run.info.run_id}"

    want = expected_history(log)
    assert set(run.data.metrics) == set(want)
    for key, points in want.items():
        assert history(client, run.info.run_id, key) == points, key
    assert len(want["example/latency_ms"]) == 600  # 1,200 step points: more than one log_batch call
    assert run.data.metrics["custom_score"] == 0.95

    assert all_artifacts(client, run.info.run_id) == [
        "params/prompt_template.txt", "results.json", "tables/records.json",
    ]
    local = Path(client.download_artifacts(run.info.run_id, "params/prompt_template.txt", str(tmp_path / "dl")))
    assert local.read_text() == LONG_PROMPT
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)  # load_table searches via the global URI
    table = client.load_table(experiment.experiment_id, "tables/records.json", run_ids=[run.info.run_id])
    assert list(table["example_id"]) == [f"ex{i}" for i in range(5)]
    assert list(table["passed"]) == [True, False, True, False, True]
    assert json.loads(tags["mlflow.loggedArtifacts"]) == [{"path": "tables/records.json", "type": "table"}]


def test_delivering_the_same_events_again_leaves_one_copy(tmp_path: Path, mlflow_server: Any) -> None:
    run_dir = tmp_path / "run_bbb222"
    log = sample_run(run_dir, steps=50)
    first = make_sink(run_dir, mlflow_server.url, "idem")
    deliver_in_batches(first, log.events[:40])
    saved = json.loads(json.dumps(first.ctx.state))  # what the worker persisted
    first.deliver(log.events[:40])  # same instance, same events again
    # a crash before the worker saved the mark: a new sink gets the old state and everything again
    second = make_sink(run_dir, mlflow_server.url, "idem", state=saved)
    deliver_in_batches(second, log.events, size=17)
    third = make_sink(run_dir, mlflow_server.url, "idem", state=json.loads(json.dumps(second.ctx.state)))
    third.deliver(log.events)
    for sink in (first, second, third):
        sink.close()

    client = MlflowClient(mlflow_server.url)
    runs = client.search_runs([client.get_experiment_by_name("idem").experiment_id])
    assert len(runs) == 1
    run_id = runs[0].info.run_id
    for key, points in expected_history(log).items():
        assert history(client, run_id, key) == points, key
    assert all_artifacts(client, run_id) == ["params/prompt_template.txt", "results.json", "tables/records.json"]
    assert client.get_run(run_id).info.status == "FINISHED"


def test_crash_after_the_run_was_created_resumes_that_run(tmp_path: Path, mlflow_server: Any) -> None:
    """The state with the run id was never saved: the run is found again by its run key."""
    run_dir = tmp_path / "run_ccc333"
    log = sample_run(run_dir, steps=10)
    crashed = make_sink(run_dir, mlflow_server.url, "crash-create")
    crashed.deliver(log.events[:5])
    crashed.close()  # its state, holding the run id, is not kept
    again = make_sink(run_dir, mlflow_server.url, "crash-create")  # empty state
    again.deliver(log.events)
    again.close()
    client = MlflowClient(mlflow_server.url)
    runs = client.search_runs([client.get_experiment_by_name("crash-create").experiment_id])
    assert [r.info.run_id for r in runs] == [again.ctx.state["run_id"]]
    assert history(client, again.ctx.state["run_id"], "example/latency_ms") == expected_history(log)["example/latency_ms"]


def test_server_down_fails_fast_and_retryable(tmp_path: Path, dead_mlflow_uri: str) -> None:
    log = sample_run(tmp_path / "run_ddd444", steps=3)
    sink = make_sink(tmp_path / "run_ddd444", dead_mlflow_uri, "down")
    started = time.monotonic()
    with pytest.raises(SinkError) as info:
        sink.deliver(log.events)
    assert info.value.retryable is True
    assert time.monotonic() - started < 10
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in __import__("os").environ  # scoped, restored


def test_bad_configuration_is_not_retryable(tmp_path: Path, mlflow_server: Any) -> None:
    with pytest.raises(SinkError) as info:
        sink = make_sink(tmp_path / "run_eee555", "nosuchscheme://x", "bad")
        sink.deliver(sample_run(tmp_path / "run_eee555", steps=1).events)
    assert info.value.retryable is False


def test_server_killed_midway_and_restarted(tmp_path: Path, mlflow_server: Any) -> None:
    run_dir = tmp_path / "run_fff666"
    log = sample_run(run_dir, steps=400)
    events = log.events
    sink = make_sink(run_dir, mlflow_server.url, "killed-midway")
    deliver_in_batches(sink, events[:200], size=100)

    mlflow_server.kill()
    with pytest.raises(SinkError) as info:
        sink.deliver(events[200:300])
    assert info.value.retryable
    mlflow_server.start()  # same sqlite file, same port

    deliver_in_batches(sink, events[200:], size=100)  # the worker retries from its mark
    client = MlflowClient(mlflow_server.url)
    run_id = sink.ctx.state["run_id"]
    for key, points in expected_history(log).items():
        assert history(client, run_id, key) == points, key
    assert client.get_run(run_id).info.status == "FINISHED"


def test_a_tracking_server_is_spoken_to_without_importing_mlflow(tmp_path: Path, mlflow_server: Any,
                                                                  mlflow_env: dict[str, str]) -> None:
    """``import mlflow`` takes seconds: a delivery to an http(s) server uses the REST API directly."""
    import subprocess
    import sys

    run_dir = tmp_path / "run_rest01"
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from support.tracking_events import sample_run\n"
        "from insideLLMs.tracking.backends.mlflow import MlflowSink\n"
        "from insideLLMs.tracking.sink import SinkContext\n"
        f"log = sample_run(Path({str(run_dir)!r}), steps=30)\n"
        f"sink = MlflowSink(SinkContext(run_dir=log.run_dir, options={{'tracking_uri': {mlflow_server.url!r}, "
        "'experiment_name': 'no-import'}))\n"
        "sink.deliver(log.events)\n"
        "sink.close()\n"
        "print(sink.ctx.state['run_id'], 'mlflow' in sys.modules)\n"
    )
    tests_dir = Path(__file__).parents[1]
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, **mlflow_env, "PYTHONPATH": with_pythonpath(tests_dir)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    run_id, imported = proc.stdout.split()
    assert imported == "False"
    client = MlflowClient(mlflow_server.url)
    assert client.get_run(run_id).info.status == "FINISHED"
    want = expected_history(sample_run(tmp_path / "again", steps=30))
    assert history(client, run_id, "example/latency_ms") == want["example/latency_ms"]


def test_a_store_that_is_not_a_server_goes_through_the_library(tmp_path: Path, mlflow_env: dict[str, str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from insideLLMs.tracking.backends._mlflow_library import LibraryClient

    monkeypatch.chdir(tmp_path)  # a sqlite store keeps its artifacts under ./mlruns
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    run_dir = tmp_path / "run_lib111"
    log = sample_run(run_dir, steps=50)
    sink = make_sink(run_dir, uri, "via-library")
    assert isinstance(sink.client, LibraryClient)
    deliver_in_batches(sink, log.events, size=40)
    sink.close()

    client = MlflowClient(uri)
    run = client.get_run(sink.ctx.state["run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == "bias-test"
    assert run.data.params["model"] == "gpt-4o" and run.data.tags["insidellms.run_key"] == "run_lib111"
    for key, points in expected_history(log).items():
        assert history(client, run.info.run_id, key) == points, key
    assert all_artifacts(client, run.info.run_id) == ["params/prompt_template.txt", "results.json",
                                                      "tables/records.json"]


def test_artifacts_the_server_does_not_proxy_are_written_by_the_library(tmp_path: Path, mlflow_server: Any) -> None:
    """An experiment whose artifacts live on a shared disk (or S3): the REST API cannot upload there,
    so the library writes them, and only them."""
    shared = tmp_path / "shared-artifacts"
    MlflowClient(mlflow_server.url).create_experiment("not-proxied", artifact_location=shared.as_uri())
    run_dir = tmp_path / "run_np0001"
    log = sample_run(run_dir, steps=5)
    sink = make_sink(run_dir, mlflow_server.url, "not-proxied")
    deliver_in_batches(sink, log.events)
    sink.close()
    stored = shared / sink.ctx.state["run_id"] / "artifacts"
    assert sorted(p.relative_to(stored).as_posix() for p in stored.rglob("*") if p.is_file()) == [
        "params/prompt_template.txt", "results.json", "tables/records.json"]
    assert (stored / "results.json").read_text() == (run_dir / "artifacts" / "results.json").read_text()


def test_a_dropped_kept_alive_connection_is_reopened(tmp_path: Path, mlflow_server: Any) -> None:
    """Between two batches the server closed the connection the sink keeps open (here it restarted):
    the next batch goes through on a new one, with no failure to retry."""
    run_dir = tmp_path / "run_ka0001"
    log = sample_run(run_dir, steps=100)
    sink = make_sink(run_dir, mlflow_server.url, "kept-alive")
    sink.deliver(log.events[:60])
    mlflow_server.restart()
    sink.deliver(log.events[60:])
    sink.close()
    client = MlflowClient(mlflow_server.url)
    for key, points in expected_history(log).items():
        assert history(client, sink.ctx.state["run_id"], key) == points, key


def test_mlflows_credentials_settings_are_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    from insideLLMs.tracking.backends._mlflow_library import LibraryClient
    from insideLLMs.tracking.backends._mlflow_rest import RestClient

    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("USERNAME", "PASSWORD", "TOKEN", "AUTH"):
        monkeypatch.delenv(f"MLFLOW_TRACKING_{name}", raising=False)

    def authorization() -> str | None:
        return RestClient("http://127.0.0.1:1").headers.get("Authorization")

    assert authorization() is None
    (tmp_path / ".mlflow").mkdir()
    (tmp_path / ".mlflow" / "credentials").write_text(
        "[mlflow]\nmlflow_tracking_username = bob\nmlflow_tracking_password = from-file\n")
    assert authorization() == "Basic " + base64.b64encode(b"bob:from-file").decode()
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "s3cret")
    assert authorization() == "Basic " + base64.b64encode(b"alice:s3cret").decode()
    (tmp_path / ".mlflow" / "credentials").unlink()
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok-123")
    assert authorization() == "Bearer tok-123"
    in_uri = RestClient("https://carol:p%40ss@mlflow.example.com:8443/base")
    assert in_uri.netloc == "mlflow.example.com:8443" and in_uri.base == "/base"
    assert in_uri.headers["Authorization"] == "Basic " + base64.b64encode(b"carol:p@ss").decode()
    monkeypatch.setenv("MLFLOW_TRACKING_AUTH", "some_plugin")  # only the library knows auth plugins
    assert isinstance(make_sink(tmp_path / "run_auth01", "http://127.0.0.1:1", "x").client, LibraryClient)


# -- end to end: `insidellms run` with tracking, `tracking sync` --------------------------------

import signal  # noqa: E402
import subprocess  # noqa: E402

from insideLLMs.tracking.store import read_journal  # noqa: E402
from support.cli import INSIDELLMS, run_cli, write_config, write_jsonl  # noqa: E402


def journal_history(run_folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every metric point the journal holds, with the steps the MLflow sink gives unstepped ones."""
    log = EventLog(run_folder)
    log.events = read_journal(run_folder).events
    return expected_history(log)


def eval_project(root: Path, n: int, tracking: dict[str, Any]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write_jsonl(root / "data.jsonl", [{"id": f"q{i:05d}", "prompt": f"What is {i} plus {i}?", "answer": str(2 * i)}
                                      for i in range(n)])
    return write_config(root / "eval.yaml", {
        "model": {"type": "dummy", "args": {"model_name": "dummy"}},
        "probe": {"type": "factuality"},
        "dataset": {"format": "jsonl", "path": "data.jsonl"},
        "generation": {"temperature": 0, "max_tokens": 64},
        "runner": {"concurrency": 8, "max_retries": 0},
        "tracking": {"enabled": True, "output_dir": "./tracking_logs", "tags": ["experiment", "v1"], **tracking},
    })


def only_run(root: Path) -> Path:
    [folder] = [p for p in (root / "tracking_logs").iterdir() if p.is_dir()]
    return folder


def remote_run(client: MlflowClient, experiment: str) -> Any:
    [run] = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return run


def assert_remote_equals_journal(client: MlflowClient, run_id: str, folder: Path) -> None:
    want = journal_history(folder)
    assert "example/latency_ms" in want and len(want["example/latency_ms"]) >= 1
    for key, points in want.items():
        assert history(client, run_id, key) == points, key


def deterministic_files(run_dir: Path) -> dict[str, Any]:
    summary = json.loads((run_dir / "summary.json").read_text())
    summary.pop("volatile", None)
    return {"records": (run_dir / "records.jsonl").read_bytes(),
            "manifest": (run_dir / "manifest.json").read_bytes(), "summary": summary}


def test_insidellms_run_tracks_to_a_live_server(tmp_path: Path, mlflow_server: Any, mlflow_env: dict[str, str]) -> None:
    cfg = eval_project(tmp_path, 40, {"backend": "mlflow", "tracking_uri": mlflow_server.url,
                                      "experiment_name": "llm-evaluation-e2e", "flush_timeout_s": 60})
    result = run_cli("run", str(cfg), cwd=tmp_path, env=mlflow_env)
    assert result.returncode == 0, result.stderr
    assert "not delivered" not in result.stderr

    client = MlflowClient(mlflow_server.url)
    run = remote_run(client, "llm-evaluation-e2e")
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["model_name"] == "dummy" and params["temperature"] == "0.0" and params["max_tokens"] == "64"
    assert params["probe_type"] == "factuality" and params["dataset_size"] == "40"
    assert len(params["run_id"]) >= 16
    assert run.data.tags["experiment"] == "llm-evaluation-e2e" and "v1" in run.data.tags
    assert run.data.tags["insidellms_version"]
    folder = only_run(tmp_path)
    assert_remote_equals_journal(client, run.info.run_id, folder)
    assert len(history(client, run.info.run_id, "example/latency_ms")) == 40
    # the run page's metrics are the run's results; each per-example series is named as one
    summary = json.loads((tmp_path / "runs" / params["run_id"] / "summary.json").read_text())["totals"]
    metrics = run.data.metrics
    assert metrics["success_rate"] == 1.0 and metrics["pass_rate"] == summary["pass_rate"]
    assert metrics["n"] == 40 and metrics["passed_count"] == summary["passed"]
    assert not {"latency_ms", "success", "passed", "exact_match"} & set(metrics)
    assert {k for k in metrics if k.startswith("example/")} >= {"example/latency_ms", "example/success",
                                                                "example/passed"}
    names = set(all_artifacts(client, run.info.run_id))
    assert {"records.jsonl", "summary.json", "manifest.json", "config.resolved.yaml", "report.html",
            "tables/examples.json"} <= names


def test_server_down_run_is_unharmed_then_sync_delivers_exactly_once(
    tmp_path: Path, mlflow_server: Any, dead_mlflow_uri: str, mlflow_env: dict[str, str]
) -> None:
    tracked = eval_project(tmp_path / "tracked", 300, {"backend": "mlflow", "tracking_uri": dead_mlflow_uri,
                                                       "experiment_name": "was-down", "flush_timeout_s": 2})
    plain = eval_project(tmp_path / "plain", 300, {"backend": "local"})
    down = run_cli("run", str(tracked), "--run-dir", "out", cwd=tmp_path / "tracked", env=mlflow_env)
    assert down.returncode == 0, down.stderr
    assert "not delivered" in down.stderr and "insidellms tracking sync" in down.stderr
    base = run_cli("run", str(plain), "--run-dir", "out", "--no-track", cwd=tmp_path / "plain", env=mlflow_env)
    assert base.returncode == 0, base.stderr
    assert deterministic_files(tmp_path / "tracked" / "out") == deterministic_files(tmp_path / "plain" / "out")

    sync = run_cli("tracking", "sync", "tracking_logs", "--tracking-uri", mlflow_server.url,
                   cwd=tmp_path / "tracked", env=mlflow_env)
    assert sync.returncode == 0, sync.stderr + sync.stdout
    client = MlflowClient(mlflow_server.url)
    run = remote_run(client, "was-down")
    folder = only_run(tmp_path / "tracked")
    assert_remote_equals_journal(client, run.info.run_id, folder)
    assert run.info.status == "FINISHED"

    again = run_cli("tracking", "sync", "tracking_logs", "--tracking-uri", mlflow_server.url,
                    cwd=tmp_path / "tracked", env=mlflow_env)
    assert again.returncode == 0 and "nothing to deliver" in again.stdout
    assert len(client.search_runs([run.info.experiment_id])) == 1
    assert_remote_equals_journal(client, run.info.run_id, folder)


def test_sync_killed_midway_and_rerun_leaves_no_duplicates(
    tmp_path: Path, mlflow_server: Any, dead_mlflow_uri: str, mlflow_env: dict[str, str]
) -> None:
    cfg = eval_project(tmp_path, 3000, {"backend": "mlflow", "tracking_uri": dead_mlflow_uri,
                                        "experiment_name": "sync-killed", "flush_timeout_s": 1})
    assert run_cli("run", str(cfg), cwd=tmp_path, env=mlflow_env).returncode == 0
    folder = only_run(tmp_path)
    total = read_journal(folder).last_seq
    mark = folder / "sinks" / "mlflow.json"

    proc = subprocess.Popen([INSIDELLMS, "tracking", "sync", "tracking_logs", "--tracking-uri", mlflow_server.url],
                            cwd=tmp_path, env={**os.environ, **mlflow_env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        delivered = 0
        for _ in range(1200):  # until the first batches are in, but not all
            delivered = json.loads(mark.read_text()).get("delivered_seq", 0) if mark.exists() else 0
            if delivered > 0 or proc.poll() is not None:
                break
            __import__("time").sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert 0 < delivered < total, "sync finished before it could be killed"

    rerun = run_cli("tracking", "sync", "tracking_logs", "--tracking-uri", mlflow_server.url, cwd=tmp_path, env=mlflow_env)
    assert rerun.returncode == 0, rerun.stderr + rerun.stdout
    client = MlflowClient(mlflow_server.url)
    run = remote_run(client, "sync-killed")
    assert_remote_equals_journal(client, run.info.run_id, folder)
    assert len(history(client, run.info.run_id, "example/latency_ms")) == 3000
