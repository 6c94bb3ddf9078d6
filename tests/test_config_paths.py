"""One rule for paths: every path written in a config is relative to the config file's folder; defaults and
command-line options are relative to where the command runs."""

from __future__ import annotations

from pathlib import Path

from support.cli import run_cli, write_jsonl


def test_every_path_in_a_config_is_relative_to_its_folder(tmp_path: Path) -> None:
    project = tmp_path / "project"
    write_jsonl(project / "data" / "qa.jsonl", [{"id": "a", "prompt": "2+2?", "answer": "4"}])
    (project / "eval.yaml").write_text(
        "model: {type: dummy}\nprobe: {type: logic}\ndataset: {format: jsonl, path: data/qa.jsonl}\n"
        "run_dir: out/run\ntracking: {backend: [local, tensorboard], output_dir: logs, log_dir: tb}\n",
        encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_cli("run", "../project/eval.yaml", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert (project / "out" / "run" / "records.jsonl").exists()
    assert len(list((project / "logs").glob("run_*"))) == 1
    assert any((project / "tb").rglob("events.out.tfevents.*"))
    assert list(elsewhere.iterdir()) == []  # nothing written where the command ran


def test_options_and_defaults_are_relative_to_where_the_command_runs(tmp_path: Path) -> None:
    project = tmp_path / "project"
    write_jsonl(project / "qa.jsonl", [{"id": "a", "prompt": "2+2?", "answer": "4"}])
    (project / "eval.yaml").write_text(
        "model: {type: dummy}\nprobe: {type: logic}\ndataset: {format: jsonl, path: qa.jsonl}\n"
        "tracking: {backend: local}\n", encoding="utf-8")
    result = run_cli("run", "project/eval.yaml", "--run-dir", "mine", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "mine" / "records.jsonl").exists()
    assert len(list((tmp_path / "tracking_logs").glob("run_*"))) == 1


def test_the_starter_config_says_the_rule(tmp_path: Path) -> None:
    assert run_cli("init", "p", cwd=tmp_path).returncode == 0
    text = (tmp_path / "p" / "insidellms.yaml").read_text()
    assert "Every path in this file is relative to this file's folder" in text
    assert run_cli("run", "p/insidellms.yaml", cwd=tmp_path).returncode == 0
    assert (tmp_path / "p" / "tracking_logs").is_dir() and not (tmp_path / "tracking_logs").exists()
