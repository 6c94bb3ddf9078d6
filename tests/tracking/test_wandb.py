"""The W&B sink in offline mode (no account), read back from W&B's own transaction log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from insideLLMs.tracking.sink import SinkContext

pytestmark = pytest.mark.slow
pytest.importorskip("wandb")

from insideLLMs.tracking.backends.wandb import WandbSink, run_id_for  # noqa: E402
from support.tracking_events import sample_run  # noqa: E402
from support.wandb_offline import read_offline_run  # noqa: E402


def make_sink(run_dir: Path, state: dict[str, Any] | None = None, **options: Any) -> WandbSink:
    return WandbSink(SinkContext(run_dir=run_dir, options={"project": "my-llm-evaluation", **options},
                                 state=state if state is not None else {}))


def stepped(log: Any, key: str) -> list[tuple[int, float]]:
    return [(e.data["step"], e.data["metrics"][key]) for e in log.events
            if e.kind == "metrics" and e.data["step"] is not None and key in e.data["metrics"]]


def test_offline_run_has_config_history_summary_tags_table_and_files(
    tmp_path: Path, wandb_env: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "tracking_logs" / "run_wb0001"
    log = sample_run(run_dir, steps=40)
    sink = make_sink(run_dir)
    for start in range(0, len(log.events), 25):
        sink.deliver(log.events[start:start + 25])
    sink.close()
    assert capfd.readouterr().out == ""  # W&B printed nothing into the evaluation's output

    run = read_offline_run(wandb_env, run_id_for("run_wb0001"))
    assert sink.ctx.state["run_id"] == run_id_for("run_wb0001")
    assert run.sessions == 1 and run.name == "bias-test" and run.project == "my-llm-evaluation"
    assert set(run.tags) >= {"v1", "team:eval", "environment:ci"}
    assert run.config["model"] == "gpt-4o" and run.config["temperature"] == 0.7
    assert run.config["max_tokens"] == 1000 and run.config["seed"] is None
    assert run.series("example/latency_ms") == stepped(log, "example/latency_ms")
    assert run.series("example/success") == stepped(log, "example/success")
    assert run.summary["success_rate"] == 0.66 and run.summary["custom_score"] == 0.95
    assert run.summary["records"]["_type"] == "table-file" and run.summary["records"]["nrows"] == 5
    [files] = [a for a in run.artifacts if a["type"] == "run-files"]
    assert files["files"] == ["results.json"]
    assert run.exit_codes == [0]
    assert sink.ctx.state["status"] == "finished"


def test_redelivery_and_resume_leave_one_copy_of_each_step(tmp_path: Path, wandb_env: Path) -> None:
    run_dir = tmp_path / "run_wb0002"
    log = sample_run(run_dir, steps=30)
    first = make_sink(run_dir)
    first.deliver(log.events[:20])
    saved = json.loads(json.dumps(first.ctx.state))  # what the worker persisted
    first.deliver(log.events[:20])  # same events again
    first.close()
    # a later `tracking sync`: new sink, saved state, the same events again and the rest
    second = make_sink(run_dir, state=saved)
    second.deliver(log.events)
    second.close()

    run = read_offline_run(wandb_env, run_id_for("run_wb0002"), sessions=2)
    assert run.sessions == 2  # two offline sessions of one W&B run id (W&B merges them on sync)
    assert run.series("example/latency_ms") == stepped(log, "example/latency_ms")
    assert run.series("example/success") == stepped(log, "example/success")
    assert run.exit_codes[-1] == 0


def test_a_failed_run_exits_non_zero(tmp_path: Path, wandb_env: Path) -> None:
    run_dir = tmp_path / "run_wb0003"
    log = sample_run(run_dir, steps=2)
    log.events[-1].data["status"] = "failed"
    sink = make_sink(run_dir)
    sink.deliver(log.events)
    run = read_offline_run(wandb_env, run_id_for("run_wb0003"))
    assert run.exit_codes == [1]


def test_insidellms_run_tracks_to_wandb_offline(tmp_path: Path, wandb_env: Path) -> None:
    from support.cli import dummy_config, qa_rows, run_cli, write_config, write_jsonl

    write_jsonl(tmp_path / "data.jsonl", qa_rows(25))
    cfg = write_config(tmp_path / "eval.yaml", dummy_config(tracking={
        "enabled": True, "backend": "wandb", "project": "my-llm-evaluation", "tags": ["experiment", "v1"],
        "flush_timeout_s": 120}))
    result = run_cli("run", str(cfg), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "not delivered" not in result.stderr

    [folder] = (tmp_path / "tracking_logs").iterdir()
    run = read_offline_run(wandb_env, run_id_for(folder.name))
    assert run.project == "my-llm-evaluation"
    assert {"v1", "experiment:my-llm-evaluation"} <= set(run.tags)
    assert any(t.startswith("environment:") for t in run.tags)
    assert run.config["model_name"] == "dummy" and run.config["max_tokens"] == 64
    assert [s for s, _ in run.series("example/latency_ms")] == list(range(25))
    assert [v for _, v in run.series("example/success")] == [1.0] * 25
    # the run summary (the run page's overview, the runs table) holds the run's results, not one example's
    assert run.summary["success_rate"] == 1.0 and 0 <= run.summary["pass_rate"] <= 1 and run.summary["n"] == 25
    assert not [k for k in run.summary if k.startswith("example/") or k in ("example/latency_ms", "success", "passed")]
    assert run.summary["examples"]["nrows"] == 25
    [files] = [a for a in run.artifacts if a["type"] == "run-files"]
    assert {"records.jsonl", "summary.json", "manifest.json", "config.resolved.yaml"} <= set(files["files"])
    assert run.exit_codes == [0]
