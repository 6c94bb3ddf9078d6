"""``tracking push``: an existing run directory replayed into a backend, once, however often it is pushed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from support.cli import run_cli
from support.run_dirs import record, write_run_dir

pytestmark = pytest.mark.slow


def make_run_dir(path: Path, n: int = 30) -> Path:
    records = [record(f"ex{i:03d}", passed=i % 3 != 0, output="4" if i % 3 else "5",
                      scores={"correct": i % 3 != 0, "f1": round((i % 5) / 4, 2)}, run_id="pushrun00000001")
               for i in range(n)]
    run_dir = write_run_dir(path, records)
    (run_dir / "config.resolved.yaml").write_text(
        "name: baseline\nmodel: {type: dummy, args: {api_key: '[REDACTED]'}}\n"
        "tracking: {tags: [baseline, v1]}\nrunner: {concurrency: 4}\n")
    return run_dir


def test_push_to_mlflow_twice_gives_one_run(tmp_path: Path, mlflow_server: Any) -> None:
    from mlflow.tracking import MlflowClient

    from insideLLMs.tracking._push import push_run_dir

    run_dir = make_run_dir(tmp_path / "runs" / "baseline")
    options = {"tracking_uri": mlflow_server.url, "experiment_name": "pushed", "output_dir": str(tmp_path / "tl")}
    first = push_run_dir(run_dir, "mlflow", options)
    assert first.pending == 0 and first.sent == first.events and not first.reused
    second = push_run_dir(run_dir, "mlflow", options)
    assert second.reused and second.sent == 0 and second.pending == 0

    client = MlflowClient(mlflow_server.url)
    [run] = client.search_runs([client.get_experiment_by_name("pushed").experiment_id])
    assert run.info.run_name == "baseline" and run.info.status == "FINISHED"
    assert run.data.params["run_id"] == "pushrun00000001"
    assert run.data.params["model_name"] == "dummy"
    assert run.data.tags["baseline"] == "" and run.data.tags["pushed"] == "true"
    history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "example/f1"))
    assert history == [(i, round((i % 5) / 4, 2)) for i in range(30)]
    passed = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "example/passed"))
    assert [s for s, _ in passed] == list(range(30))  # the 0/1 series only: the final count is passed_count
    assert [v for _, v in passed][:4] == [0.0, 1.0, 1.0, 0.0]
    assert run.data.metrics["passed_count"] == 20
    assert run.data.metrics["pass_rate"] == pytest.approx(20 / 30)
    assert not {"passed", "success", "latency_ms", "f1"} & set(run.data.metrics)
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"records.jsonl", "summary.json", "manifest.json", "config.resolved.yaml", "tables"} <= names

    third = push_run_dir(run_dir, "mlflow", options, new_run=True)
    assert third.folder != first.folder and third.pending == 0
    assert len(client.search_runs([client.get_experiment_by_name("pushed").experiment_id])) == 2


def test_push_to_tensorboard_twice_writes_once(tmp_path: Path) -> None:
    pytest.importorskip("tensorboardX")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from insideLLMs.tracking._push import push_run_dir

    run_dir = make_run_dir(tmp_path / "baseline", n=12)
    options = {"log_dir": str(tmp_path / "tb"), "output_dir": str(tmp_path / "tl")}
    push_run_dir(run_dir, "tensorboard", options)
    push_run_dir(run_dir, "tensorboard", options)
    [folder] = (tmp_path / "tb").iterdir()
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    assert [e.step for e in acc.Scalars("example/f1")] == list(range(12))
    assert "examples/failing_examples/text_summary" in acc.Tags()["tensors"]


def test_push_to_wandb_offline(tmp_path: Path, wandb_env: Path) -> None:
    from insideLLMs.tracking._push import push_run_dir
    from insideLLMs.tracking.backends.wandb import run_id_for
    from support.wandb_offline import read_offline_run

    run_dir = make_run_dir(tmp_path / "baseline", n=8)
    result = push_run_dir(run_dir, "wandb", {"project": "pushed", "output_dir": str(tmp_path / "tl")})
    assert result.pending == 0
    again = push_run_dir(run_dir, "wandb", {"project": "pushed", "output_dir": str(tmp_path / "tl")})
    assert again.sent == 0
    run = read_offline_run(wandb_env, run_id_for(result.folder.name))
    assert run.sessions == 1 and run.config["run_id"] == "pushrun00000001"
    assert run.series("example/f1") == [(i, round((i % 5) / 4, 2)) for i in range(8)]
    assert run.summary["examples"]["nrows"] == 8


def test_push_cli_server_down_keeps_the_journal_then_sync_delivers(
    tmp_path: Path, mlflow_server: Any, dead_mlflow_uri: str, mlflow_env: dict[str, str]
) -> None:
    run_dir = make_run_dir(tmp_path / "baseline", n=5)
    down = run_cli("tracking", "push", str(run_dir), "--backend", "mlflow", "--tracking-uri", dead_mlflow_uri,
                   "--experiment-name", "push-cli", cwd=tmp_path, env=mlflow_env)
    assert down.returncode == 1, down.stderr
    assert "not delivered" in down.stderr and "insidellms tracking sync" in down.stderr
    assert "Traceback" not in down.stderr
    synced = run_cli("tracking", "sync", "tracking_logs", "--tracking-uri", mlflow_server.url,
                     cwd=tmp_path, env=mlflow_env)
    assert synced.returncode == 0, synced.stderr + synced.stdout
    again = run_cli("tracking", "push", str(run_dir), "--backend", "mlflow", "--tracking-uri", mlflow_server.url,
                    "--experiment-name", "push-cli", cwd=tmp_path, env=mlflow_env)
    assert again.returncode == 0, again.stderr
    assert "nothing sent" in again.stdout

    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_server.url)
    [run] = client.search_runs([client.get_experiment_by_name("push-cli").experiment_id])
    assert len(client.get_metric_history(run.info.run_id, "example/success")) == 5
    journal = tmp_path / "tracking_logs" / "run_pushrun00000001_mlflow" / "journal.jsonl"
    assert json.loads(journal.read_text().splitlines()[1])["kind"] == "run_start"


def test_a_pushed_run_logs_the_steps_and_metrics_of_the_same_run_tracked_live(tmp_path: Path) -> None:
    from support.cli import dummy_config, qa_rows, write_config, write_jsonl

    from insideLLMs.tracking._push import push_run_dir
    from insideLLMs.tracking.store import load_run, read_journal

    write_jsonl(tmp_path / "data.jsonl", qa_rows(9))
    cfg = write_config(tmp_path / "eval.yaml", dummy_config(tracking={"enabled": True, "backend": "local"}))
    assert run_cli("run", str(cfg), "--run-dir", "runs/a", cwd=tmp_path).returncode == 0
    [live] = (tmp_path / "tracking_logs").iterdir()
    pushed = push_run_dir(tmp_path / "runs/a", "local", {"output_dir": str(tmp_path / "pushed")}).folder

    def metric_events(folder: Path) -> list[tuple[int | None, dict[str, float]]]:
        return [(e.data["step"], e.data["metrics"]) for e in read_journal(folder).events if e.kind == "metrics"]

    assert metric_events(pushed) == metric_events(live)
    assert [step for step, _ in metric_events(live)] == [*range(9), None]
    assert set(metric_events(live)[0][1]) == {"example/latency_ms", "example/success", "example/passed",
                                              "example/exact_match", "example/match", "example/f1"}
    assert load_run(pushed).run_metrics == load_run(live).run_metrics
