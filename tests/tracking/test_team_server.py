"""A team's tracking server: ``mlflow server`` on PostgreSQL with proxied artifacts (tests/support/postgres.py),
fed by many runs at once (the shards of a job array) and by ``tracking sync`` after an outage; read back
with ``MlflowClient`` and counted in the database itself."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from support.cli import INSIDELLMS, qa_rows, run_cli, write_config, write_jsonl

pytestmark = pytest.mark.slow
mlflow = pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402

from insideLLMs.tracking.store import read_journal  # noqa: E402

SHARDS = 4


def _project(root: Path, model: dict[str, Any], n: int, tracking: dict[str, Any]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write_jsonl(root / "data.jsonl", qa_rows(n))
    return write_config(
        root / "eval.yaml",
        {
            "model": model,
            "probe": {"type": "factuality"},
            "dataset": {"path": "data.jsonl"},
            "generation": {"temperature": 0, "max_tokens": 64},
            "runner": {"concurrency": 4, "max_retries": 0},
            "tracking": {"enabled": True, "backend": "mlflow", "output_dir": "./tracking_logs", **tracking},
        },
    )


def _lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def _count(postgres: Any, sql: str, *args: Any) -> int:
    """A count read from the server's database itself, not through MLflow."""
    import psycopg2

    with psycopg2.connect(postgres.url("mlflow")) as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()[0]


def test_eight_runs_at_once_all_arrive_whole_and_apart(
    tmp_path: Path, mlflow_pg_server: Any, postgres: Any, mlflow_env: dict[str, str]
) -> None:
    """Four shards of two configs, tracked at the same time: eight complete runs, none mixed up."""
    tracking = {"tracking_uri": mlflow_pg_server.url, "experiment_name": "team-eight", "flush_timeout_s": 120}
    configs = {
        "alpha": _project(tmp_path / "alpha", {"type": "dummy", "args": {"model_name": "alpha"}}, 48, tracking),
        "beta": _project(
            tmp_path / "beta", {"type": "dummy", "args": {"model_name": "beta", "canned_response": "4"}}, 36, tracking
        ),
    }
    procs = {}
    for name, config in configs.items():
        for i in range(SHARDS):
            procs[name, i] = subprocess.Popen(
                [INSIDELLMS, "run", str(config), "--shard", f"{i}/{SHARDS}", "--run-dir", f"shard-{i}"],
                cwd=config.parent,
                env={**os.environ, **mlflow_env, "NO_COLOR": "1"},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
    for key, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, (key, err)
        assert "not delivered" not in err, (key, err)

    client = MlflowClient(mlflow_pg_server.url)
    experiment = client.get_experiment_by_name("team-eight")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    assert len(runs) == 2 * SHARDS
    assert _count(postgres, "select count(*) from runs where experiment_id = %s", int(experiment.experiment_id)) == 8
    seen = set()
    for run in runs:
        model, shard = run.data.params["model_name"], run.data.tags["shard"]
        index = int(shard.split("/")[0])
        seen.add((model, index))
        part = configs[model].parent / f"shard-{index}"
        manifest = orjson.loads((part / "manifest.json").read_bytes())
        records = _lines(part / "records.jsonl")
        assert run.info.status == "FINISHED"
        assert shard == f"{index}/{SHARDS}" and run.data.params["shard"] == shard
        assert run.data.tags["shard_of"] == run.data.params["run_id"] == manifest["run_id"]
        assert run.info.run_name == f"factuality-{model} [shard {shard}]"
        assert run.data.params["total_examples"] == str(len(records)) and run.data.metrics["n"] == len(records)
        # every example's step arrived, with this shard's values, and nothing of another shard
        success = client.get_metric_history(run.info.run_id, "example/success")
        assert sorted(m.step for m in success) == list(range(len(records)))
        passed = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "example/passed"))
        assert passed == [(step, 1.0 if r["passed"] else 0.0) for step, r in enumerate(records)]
        # the artifacts went through the server's proxy, whole
        local = Path(client.download_artifacts(run.info.run_id, "records.jsonl", str(tmp_path / run.info.run_id)))
        assert local.read_bytes() == (part / "records.jsonl").read_bytes()
    assert seen == {(m, i) for m in configs for i in range(SHARDS)}
    beta_passed = sum(
        len([r for r in _lines(configs["beta"].parent / f"shard-{i}" / "records.jsonl") if r["passed"]])
        for i in range(SHARDS)
    )
    assert beta_passed == 1  # "4" is right for q00002 only: the canned model's runs kept their own answers


def test_a_run_made_while_the_server_was_down_is_synced_exactly_once(
    tmp_path: Path, mlflow_pg_server: Any, postgres: Any, mlflow_env: dict[str, str]
) -> None:
    config = _project(
        tmp_path,
        {"type": "dummy", "args": {"model_name": "offline"}},
        60,
        {"tracking_uri": mlflow_pg_server.url, "experiment_name": "team-was-down", "flush_timeout_s": 2},
    )
    mlflow_pg_server.stop()
    try:
        down = run_cli("run", str(config), "--shard", "1/2", "--run-dir", "part", cwd=tmp_path, env=mlflow_env)
    finally:
        mlflow_pg_server.start()
    assert down.returncode == 0, down.stderr
    assert "not delivered" in down.stderr and "insidellms tracking sync" in down.stderr
    records = len(_lines(tmp_path / "part" / "records.jsonl"))
    [folder] = [p for p in (tmp_path / "tracking_logs").iterdir() if p.is_dir()]
    journal_points = sum(
        1 for e in read_journal(folder).events if e.kind == "metrics" and "example/success" in e.data["metrics"]
    )
    assert journal_points == records > 0

    runs_sql = (
        "select count(*) from runs r join experiments e on r.experiment_id = e.experiment_id "
        "where e.name = 'team-was-down'"
    )
    points_sql = (
        "select count(*) from metrics m join runs r on m.run_uuid = r.run_uuid join experiments e "
        "on r.experiment_id = e.experiment_id where e.name = 'team-was-down' and m.key = 'example/success'"
    )
    for attempt in range(2):
        sync = run_cli("tracking", "sync", "tracking_logs", cwd=tmp_path, env=mlflow_env)
        assert sync.returncode == 0, sync.stderr + sync.stdout
        if attempt:
            assert "nothing to deliver" in sync.stdout
        assert _count(postgres, runs_sql) == 1
        assert _count(postgres, points_sql) == records
    client = MlflowClient(mlflow_pg_server.url)
    [run] = client.search_runs([client.get_experiment_by_name("team-was-down").experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["shard"] == "1/2"
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "example/success")) == list(range(records))


def test_a_run_made_while_the_database_was_down_is_synced_exactly_once(
    tmp_path: Path, mlflow_pg_server: Any, postgres: Any, mlflow_env: dict[str, str]
) -> None:
    """The server up but its database down: the server answers with errors, delivery keeps the events, and
    once the database is back ``tracking sync`` delivers them once (the server itself never restarted)."""
    config = _project(
        tmp_path,
        {"type": "dummy", "args": {"model_name": "db-down"}},
        30,
        {"tracking_uri": mlflow_pg_server.url, "experiment_name": "team-db-down", "flush_timeout_s": 3},
    )
    server_pid = mlflow_pg_server.proc.pid
    postgres.stop()
    try:
        down = run_cli("run", str(config), "--run-dir", "out", cwd=tmp_path, env=mlflow_env)
    finally:
        postgres.start()
    assert down.returncode == 0, down.stderr
    assert "not delivered" in down.stderr
    records = len(_lines(tmp_path / "out" / "records.jsonl"))
    points_sql = (
        "select count(*) from metrics m join runs r on m.run_uuid = r.run_uuid join experiments e "
        "on r.experiment_id = e.experiment_id where e.name = 'team-db-down' and m.key = 'example/success'"
    )
    for _ in range(2):  # and again: nothing more
        sync = run_cli("tracking", "sync", "tracking_logs", cwd=tmp_path, env=mlflow_env)
        assert sync.returncode == 0, sync.stderr + sync.stdout
        assert _count(postgres, "select count(*) from experiments where name = 'team-db-down'") == 1
        assert _count(postgres, points_sql) == records
    assert mlflow_pg_server.proc.pid == server_pid and mlflow_pg_server.running
    client = MlflowClient(mlflow_pg_server.url)
    [run] = client.search_runs([client.get_experiment_by_name("team-db-down").experiment_id])
    assert run.info.status == "FINISHED" and run.data.metrics["n"] == records
