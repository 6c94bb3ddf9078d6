"""Tracking wired into `insidellms run` / `harness`: what a tracked run records, and that tracking
never changes, stalls or fails the evaluation."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from insideLLMs.models import get_model
from insideLLMs.probes import get_probe
from insideLLMs.run import ProbeRunner
from insideLLMs.config import TrackingConfig
from insideLLMs.tracking.store import read_journal
from insideLLMs.tracking._listener import TrackingListener
from insideLLMs.tracking.store import find_runs, load_run
from insideLLMs.tracking.delivery._table import flat_rows
from insideLLMs.tracking._compare import format_value
from support.cli import run_cli, write_config, write_jsonl, with_pythonpath
from support.tracking_sinks import BACKEND, delivered

TESTS_DIR = Path(__file__).parents[1]  # tests/: where support/ is
ROWS = [{"id": f"q{i}", "prompt": f"What is {i} plus {i}?", "answer": str(2 * i)} for i in range(12)]


def _config(tmp_path: Path, tracking: dict | None, **extra) -> Path:
    write_jsonl(tmp_path / "data.jsonl", ROWS)
    config = {
        "model": {"type": "dummy", "args": {"model_name": "dummy", "responses": {ROWS[0]["prompt"]: "0", ROWS[1]["prompt"]: "2"}}},
        "probe": {"type": "factuality"},
        "dataset": {"format": "jsonl", "path": "data.jsonl"},
        "generation": {"temperature": 0, "max_tokens": 64},
        "runner": {"concurrency": 4, "max_retries": 0},
        **extra,
    }
    if tracking is not None:
        config["tracking"] = tracking
    return write_config(tmp_path / "eval.yaml", config)


def test_tracked_run_records_params_metrics_artifacts_tags(tmp_path: Path) -> None:
    cfg = _config(tmp_path, {"enabled": True, "backend": "local", "tags": ["nightly", "v1"], "experiment_name": "llm-eval"})
    proc = run_cli("run", str(cfg), "--run-dir", "runs/a", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = find_runs(tmp_path / "tracking_logs")
    view = load_run(run_dir, series=True)
    assert view.status == "finished" and view.state.name == "factuality-dummy"
    params = view.state.params
    assert params["model_name"] == "dummy" and params["provider"] == "dummy"
    assert params["temperature"] == 0 and params["max_tokens"] == 64
    assert params["probe_type"] == "factuality" and params["concurrency"] == 4
    assert params["dataset_name"] == "data" and params["dataset_size"] == 12 and len(params["dataset_hash"]) == 64
    manifest = json.loads((tmp_path / "runs/a/manifest.json").read_text())
    assert params["run_id"] == manifest["run_id"] and params["insidellms_version"] == manifest["library_version"]
    tags = view.state.tags
    assert tags["nightly"] == "" and tags["experiment"] == "llm-eval" and tags["environment"] in ("ci", "local")
    assert tags["insidellms_version"] == manifest["library_version"]
    # per-example step series (named example/…), then the run-level metrics from the summary (bare names)
    assert [s for s, _ in view.state.series["example/latency_ms"]] == list(range(12))
    assert [v for _, v in view.state.series["example/success"]] == [1.0] * 12
    assert view.state.stepped == {"example/latency_ms", "example/success", "example/passed", "example/exact_match",
                                  "example/match", "example/f1"}  # factuality's scores
    metrics_json = json.loads((run_dir / "metrics.json").read_text())
    assert not {"latency_ms", "success", "passed", "exact_match"} & set(metrics_json)
    assert {k for k in metrics_json if "/" in k} == view.state.stepped
    assert set(view.run_metrics) == set(metrics_json) - view.state.stepped
    summary = json.loads((tmp_path / "runs/a/summary.json").read_text())
    m = view.state.metrics
    assert m["success_rate"] == summary["totals"]["success_rate"] == 1.0
    assert m["pass_rate"] == summary["totals"]["pass_rate"] > 0 and m["error_count"] == 0
    assert m["prompt_tokens"] == summary["totals"]["tokens"]["prompt"]
    assert {"latency_p50_ms", "latency_p95_ms"} <= set(m)
    arts = {a["path"] for a in view.state.artifacts.values() if a["kind"] == "artifact"}
    assert {"artifacts/records.jsonl", "artifacts/timings.jsonl", "artifacts/summary.json", "artifacts/manifest.json",
            "artifacts/config.resolved.yaml"} <= arts
    assert (run_dir / "artifacts/records.jsonl").read_bytes() == (tmp_path / "runs/a/records.jsonl").read_bytes()
    # the per-example table points at the records artifact; its rows are built only where shown
    (table,) = [a for a in view.state.artifacts.values() if a["kind"] == "table"]
    assert table["name"] == "examples" and table["path"] == "artifacts/records.jsonl" and table["format"] == "records"
    assert not (run_dir / "sinks").exists()  # local tracking does no per-example table work
    rows = list(flat_rows(run_dir / table["path"], run_dir / table["timings"]))
    assert [r["example_id"] for r in rows] == [f"q{i}" for i in range(12)]
    records = [json.loads(line) for line in (tmp_path / "runs/a/records.jsonl").read_text().splitlines()]
    timings = [json.loads(line) for line in (tmp_path / "runs/a/timings.jsonl").read_text().splitlines()]
    assert rows[0]["input.prompt"] == ROWS[0]["prompt"] and rows[0]["step"] == 0
    assert [r["latency_ms"] for r in rows] == [round(t["latency_ms"], 3) for t in timings]
    assert [r["passed"] for r in rows] == [r["passed"] for r in records] and any(r["passed"] for r in rows)
    # and `tracking show` (no argument: the latest run) prints it
    shown = run_cli("tracking", "show", cwd=tmp_path, env={"COLUMNS": "200"})
    assert shown.returncode == 0 and "factuality-dummy" in shown.stdout
    metrics, series = section(shown.stdout, "Metrics"), section(shown.stdout, "Step series")
    low, high = summary["totals"]["intervals"]["pass_rate"]["low"], summary["totals"]["intervals"]["pass_rate"]["high"]
    assert (m["pass_rate_ci_low"], m["pass_rate_ci_high"]) == (low, high)  # the interval is tracked too
    assert m["pass_rate_se"] == summary["totals"]["intervals"]["pass_rate"]["se"]
    assert cells(metrics, "dummy")[:4] == [
        "dummy", "factuality", "12", f"{format_value(m['pass_rate'])} ({format_value(low)}–{format_value(high)})"]
    assert "example/" not in shown.stdout.split("Step series")[0] and "example/latency_ms" in series


def test_tracking_does_not_change_the_run_directory(tmp_path: Path) -> None:
    cfg = _config(tmp_path, {"enabled": True, "backend": "local"})
    assert run_cli("run", str(cfg), "--run-dir", "runs/tracked", cwd=tmp_path).returncode == 0
    assert run_cli("run", str(cfg), "--run-dir", "runs/plain", "--no-track", cwd=tmp_path).returncode == 0
    for name in ("records.jsonl", "manifest.json"):
        assert (tmp_path / "runs/tracked" / name).read_bytes() == (tmp_path / "runs/plain" / name).read_bytes()
    assert len(find_runs(tmp_path / "tracking_logs")) == 1


@pytest.mark.slow
def test_harness_breakdown_per_model_and_probe(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "data.jsonl", ROWS[:4])
    cfg = write_config(tmp_path / "grid.yaml", {
        "models": [{"type": "dummy", "args": {"model_name": "echo-a"}},
                   {"type": "dummy", "args": {"model_name": "echo-b", "canned_response": "2"}}],
        "probes": [{"type": "factuality", "dataset": {"format": "jsonl", "path": "data.jsonl"}},
                   {"type": "logic"}],
        "tracking": {"backend": "local", "run_name": "grid"},
    })
    proc = run_cli("harness", str(cfg), "--run-dir", "runs/grid", "--max-examples", "4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = find_runs(tmp_path / "tracking_logs")
    view = load_run(run_dir)
    assert view.state.name == "grid"
    assert view.state.params["model_name"] == "echo-a, echo-b"
    assert view.state.params["probe_type"] == "factuality, logic"
    m = view.state.metrics
    for model in ("echo-a", "echo-b"):
        for probe in ("factuality", "logic"):
            assert m[f"{model}/{probe}/n"] == 4 and f"{model}/{probe}/success_rate" in m
    summary = json.loads((tmp_path / "runs/grid/summary.json").read_text())
    for g in summary["groups"]:
        assert m[f"{g['model']}/{g['probe']}/success_rate"] == g["success_rate"]
    assert m["n"] == 16
    # `tracking show`: the run's metrics as a table, a row per model × probe and one over the whole run
    shown = run_cli("tracking", "show", cwd=tmp_path, env={"COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    results = section(shown.stdout, "Metrics")
    assert [c.strip() for c in results.split("┃")[1:6]] == ["model", "probe", "n", "pass_rate", "passed_count"]
    for g in summary["groups"]:
        iv = g["intervals"]["pass_rate"]
        assert cells(results, g["model"], g["probe"])[2:4] == [
            "4", f"{format_value(g['pass_rate'])} ({format_value(iv['low'])}–{format_value(iv['high'])})"]
    assert cells(results, "all", "all")[2] == "16"


def section(output: str, title: str) -> str:
    """The table titled ``title`` in a command's output (up to the next title line)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == title)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].strip() and lines[i].strip()[0] not in "┏┃┡│└"),
               len(lines))
    return "\n".join(lines[start:end])


def cells(table_text: str, *first: str) -> list[str]:
    """The cells of the first row of a printed table that starts with the cells ``first``."""
    for line in table_text.splitlines():
        row = [c.strip() for c in line.strip().strip("│").split("│")]
        if row[:len(first)] == list(first):
            return row
    raise AssertionError(f"no row {first} in:\n{table_text}")


@pytest.mark.slow
def test_secrets_in_the_config_reach_no_tracked_file(tmp_path: Path, fake_llm_server) -> None:
    secret = "sk-proj-Qq1Ww2Ee3Rr4Tt5Yy6Uu7Ii8Oo9Pp0"
    bearer = "tok9f8e7d6c5b4a3"
    cfg = _config(tmp_path, {"backend": ["local", BACKEND], "log_dir": str(tmp_path / "remote")})
    data = json.loads(json.dumps(__import__("yaml").safe_load(cfg.read_text())))
    data["model"] = {"type": "openai", "args": {"model_name": "gpt-4o-mini", "base_url": fake_llm_server.openai_base_url,
                                                "api_key": secret, "headers": {"X-Proxy-Authorization": f"Bearer {bearer}"}}}
    write_config(cfg, data)
    proc = run_cli("run", str(cfg), "--run-dir", "runs/s", cwd=tmp_path, env={"PYTHONPATH": with_pythonpath(TESTS_DIR)})
    assert proc.returncode == 0, proc.stderr
    written = [p for p in (tmp_path / "tracking_logs").rglob("*") if p.is_file()]
    written += [p for p in (tmp_path / "remote").rglob("*") if p.is_file()]
    assert len(written) > 8
    for path in written:
        text = path.read_text(errors="replace")
        assert secret not in text and bearer not in text, path
    (run_dir,) = find_runs(tmp_path / "tracking_logs")
    assert delivered(tmp_path / "remote", run_dir)  # the remote copy was checked above too


@pytest.mark.slow
def test_backend_down_never_harms_the_run(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "FAIL").touch()
    cfg = _config(tmp_path, {"backend": ["local", BACKEND], "log_dir": str(remote), "flush_timeout_s": 1})
    started = time.monotonic()
    proc = run_cli("run", str(cfg), "--run-dir", "runs/down", cwd=tmp_path, env={"PYTHONPATH": with_pythonpath(TESTS_DIR)})
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert elapsed < 60
    (run_dir,) = find_runs(tmp_path / "tracking_logs")
    total = read_journal(run_dir).last_seq
    rel = f"tracking_logs/{run_dir.name}"
    assert f"! jsonl: {total:,} events not delivered (server unreachable); they are kept in {rel}" in proc.stderr
    assert f"deliver them later with: insidellms tracking sync {rel}" in proc.stderr
    assert run_cli("run", str(cfg), "--run-dir", "runs/plain", "--no-track", cwd=tmp_path).returncode == 0
    assert (tmp_path / "runs/down/records.jsonl").read_bytes() == (tmp_path / "runs/plain/records.jsonl").read_bytes()
    (remote / "FAIL").unlink()
    synced = run_cli("tracking", "sync", "tracking_logs", cwd=tmp_path, env={"PYTHONPATH": with_pythonpath(TESTS_DIR)})
    assert synced.returncode == 0, synced.stderr
    assert len(delivered(remote, run_dir)) == total


def test_missing_backend_falls_back_to_local_with_a_warning(tmp_path: Path) -> None:
    messages: list[str] = []
    listener = TrackingListener.from_config(
        TrackingConfig(backend=["local", "no_such_module_xyz:Sink"], output_dir=str(tmp_path / "logs")), echo=messages.append
    )
    probe = get_probe("logic")
    runner = ProbeRunner(get_model("dummy"), probe, listeners=[listener])
    runner.run(probe.load_default_dataset().head(3))
    listener.close()
    assert messages and "local journal only" in messages[0]
    (run_dir,) = find_runs(tmp_path / "logs")
    assert load_run(run_dir).status == "finished" and load_run(run_dir).backends == ["local"]


def test_broken_tracking_is_warned_once_and_the_run_goes_on(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the tracking folder should go")
    messages: list[str] = []
    listener = TrackingListener.from_config(TrackingConfig(output_dir=str(blocker)), echo=messages.append)
    probe = get_probe("logic")
    runner = ProbeRunner(get_model("dummy"), probe, listeners=[listener])
    records = runner.run(probe.load_default_dataset().head(3))
    listener.close()
    assert len(records) == 3 and runner.success_rate == 1.0
    assert len(messages) == 1 and messages[0].startswith("! tracking:")


def test_disabled_tracking_records_nothing(tmp_path: Path) -> None:
    listener = TrackingListener.from_config(TrackingConfig(enabled=False, output_dir=str(tmp_path / "logs")))
    probe = get_probe("logic")
    ProbeRunner(get_model("dummy"), probe, listeners=[listener]).run(probe.load_default_dataset().head(2))
    assert listener.close() == [] and not (tmp_path / "logs").exists()


def test_interrupted_or_unfinished_run_is_closed_by_close(tmp_path: Path) -> None:
    listener = TrackingListener.from_config(TrackingConfig(output_dir=str(tmp_path / "logs")), echo=lambda _m: None)
    from insideLLMs.events import RunStarted

    listener.on_run_started(RunStarted(
        run_id="abc", run_dir=None, name=None, models=[{"id": "m", "provider": "dummy", "params": {}}],
        probes=[{"id": "logic", "version": "1", "params": {}}], datasets=[], generation={}, runner={},
        total=0, library_version="0",
    ))
    listener.close()
    (run_dir,) = find_runs(tmp_path / "logs")
    assert load_run(run_dir).status == "failed"


def test_table_rows_are_built_at_delivery_even_without_a_run_directory(tmp_path: Path, sink_dir: Path) -> None:
    listener = TrackingListener.from_config(
        TrackingConfig(backend=["local", BACKEND], log_dir=str(sink_dir), output_dir=str(tmp_path / "logs")),
        echo=lambda _m: None,
    )
    probe = get_probe("logic")
    records = ProbeRunner(get_model("dummy"), probe, listeners=[listener]).run(probe.load_default_dataset().head(4))
    assert listener.close() == []
    (run_dir,) = find_runs(tmp_path / "logs")
    # the records the runner kept in memory became the artifact the table points at
    (table,) = [e for e in delivered(sink_dir, run_dir) if e["kind"] == "table"]
    assert table["data"]["name"] == "examples" and "format" not in table["data"]  # sinks get flat rows, as always
    rows = [json.loads(line) for line in (run_dir / table["data"]["path"]).read_text().splitlines()]
    assert [r["example_id"] for r in rows] == [r.example_id for r in records]
    assert [r["step"] for r in rows] == [0, 1, 2, 3] and all(r["latency_ms"] is not None for r in rows)
    assert [r["passed"] for r in rows] == [r.passed for r in records]
    assert rows[0]["probe"] == "logic" and any(k.startswith("input") for k in rows[0])
