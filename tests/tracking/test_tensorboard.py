"""The TensorBoard sink: event files read back with TensorBoard's own ``EventAccumulator``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from insideLLMs.tracking.sink import SinkContext

pytest.importorskip("tensorboardX")
pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402

from insideLLMs.tracking.backends.tensorboard import TensorBoardSink  # noqa: E402
from support.tracking_events import expected_history, sample_run  # noqa: E402


def read_back(folder: Path) -> EventAccumulator:
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def scalars(acc: EventAccumulator) -> dict[str, list[tuple[int, float]]]:
    """Every scalar point; values rounded as TensorBoard stores them (float32)."""
    return {tag: sorted((e.step, round(e.value, 5)) for e in acc.Scalars(tag)) for tag in acc.Tags()["scalars"]}


def expected(log: Any) -> dict[str, list[tuple[int, float]]]:
    return {k: [(s, round(v, 5)) for s, v in points] for k, points in expected_history(log).items()}


def text(acc: EventAccumulator, tag: str) -> str:
    [event] = acc.Tensors(f"{tag}/text_summary")
    return event.tensor_proto.string_val[0].decode()


def make_sink(run_dir: Path, log_dir: Path, state: dict[str, Any] | None = None) -> TensorBoardSink:
    return TensorBoardSink(SinkContext(run_dir=run_dir, options={"log_dir": str(log_dir)},
                                       state=state if state is not None else {}))


def test_scalars_hparams_and_text_read_back(tmp_path: Path) -> None:
    run_dir = tmp_path / "tracking_logs" / "run_tb0001"
    log = sample_run(run_dir, steps=120)
    sink = make_sink(run_dir, tmp_path / "tb_logs")
    for start in range(0, len(log.events), 50):
        sink.deliver(log.events[start:start + 50])
    sink.close()

    [folder] = (tmp_path / "tb_logs").iterdir()
    assert folder.name == "bias-test-run_tb0001"
    acc = read_back(folder)
    assert scalars(acc) == expected(log)
    walltimes = [e.wall_time for e in acc.Scalars("example/latency_ms")]
    assert walltimes == sorted(walltimes) and walltimes[0] == log.events[2].ts

    hp = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(hp["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["model"].string_value == "gpt-4o"
    assert start.hparams["temperature"].number_value == 0.7
    assert start.hparams["max_tokens"].number_value == 1000
    experiment = plugin_data_pb2.HParamsPluginData.FromString(hp["_hparams_/experiment"]).experiment
    # the HParams tab compares runs by their run-level metrics (logged without a step), not by a series' last point
    assert {m.name.tag for m in experiment.metric_infos} == {"success_rate", "error_count", "example/success",
                                                            "custom_score"}
    end = plugin_data_pb2.HParamsPluginData.FromString(hp["_hparams_/session_end_info"]).session_end_info
    assert end.status == 1  # STATUS_SUCCESS

    params = text(acc, "params")
    assert "| model | gpt-4o |" in params and "| tag: team | eval |" in params
    failing = text(acc, "records/failing_examples")
    assert "2 of 5 examples failed" in failing
    assert "ex1" in failing and "answer 3" in failing and "expected 3" in failing and "question 1" in failing
    assert "ex2" not in failing


def test_redelivery_and_resume_write_each_point_once(tmp_path: Path) -> None:
    run_dir = tmp_path / "run_tb0002"
    log = sample_run(run_dir, steps=60)
    first = make_sink(run_dir, tmp_path / "tb")
    first.deliver(log.events[:30])
    first.deliver(log.events[:30])  # the same batch again: nothing new written
    saved = json.loads(json.dumps(first.ctx.state))  # what the worker persisted
    first.close()
    # a later `tracking sync` (new process, new sink) resumes with the saved state
    second = make_sink(run_dir, tmp_path / "tb", state=saved)
    second.deliver(log.events)
    second.deliver(log.events[40:])
    second.close()

    [folder] = (tmp_path / "tb").iterdir()
    assert len(list(folder.glob("events.out.tfevents.*"))) == 2  # one file per writer session
    acc = read_back(folder)
    assert scalars(acc) == expected(log)
    assert len(acc.Tensors("params/text_summary")) == 1


def test_failed_run_ends_with_failure_status(tmp_path: Path) -> None:
    run_dir = tmp_path / "run_tb0003"
    log = sample_run(run_dir, steps=3)
    log.events[-1].data["status"] = "failed"
    sink = make_sink(run_dir, tmp_path / "tb")
    sink.deliver(log.events)
    sink.close()
    [folder] = (tmp_path / "tb").iterdir()
    hp = read_back(folder).PluginTagToContent("hparams")
    end = plugin_data_pb2.HParamsPluginData.FromString(hp["_hparams_/session_end_info"]).session_end_info
    assert end.status == 2  # STATUS_FAILURE


@pytest.mark.slow
def test_insidellms_run_tracks_to_tensorboard(tmp_path: Path) -> None:
    from support.cli import dummy_config, qa_rows, run_cli, write_config, write_jsonl

    write_jsonl(tmp_path / "data.jsonl", qa_rows(30))
    cfg = write_config(tmp_path / "eval.yaml", dummy_config(tracking={
        "enabled": True, "backend": "tensorboard", "log_dir": "./tb_logs", "flush_timeout_s": 60}))
    result = run_cli("run", str(cfg), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [folder] = (tmp_path / "tb_logs").iterdir()
    acc = read_back(folder)
    assert [e.step for e in acc.Scalars("example/latency_ms")] == list(range(30))
    assert [e.step for e in acc.Scalars("success_rate")] == [0]
    hp = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(hp["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["model_name"].string_value == "dummy"
    experiment = plugin_data_pb2.HParamsPluginData.FromString(hp["_hparams_/experiment"]).experiment
    tags = {m.name.tag for m in experiment.metric_infos}
    assert {"success_rate", "pass_rate", "n"} <= tags and not [t for t in tags if t.startswith("example/")]
    assert "failed" in text(acc, "examples/failing_examples")  # the dummy echoes: most answers are wrong
