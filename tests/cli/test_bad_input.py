"""Every user mistake: one clear line naming the file and location, exit 1, no traceback, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.cli import qa_rows, run_cli, write_jsonl

GOOD_DATA = "".join(f'{{"id": "q{i}", "prompt": "p{i}", "answer": "a"}}\n' for i in range(3))

CASES = {
    "bad-yaml": (
        "model: {type: dummy\nprobe: {type: logic}\n",
        None,
        "error: eval.yaml:2: invalid YAML: expected ',' or '}', but got ':'",
    ),
    "unknown-key": (
        "model: {type: dummy}\nprobe: {type: logic}\ndataset: {format: jsonl, path: data.jsonl}\nrunner:\n  concurency: 4\n",
        GOOD_DATA,
        "error: eval.yaml:5: runner.concurency: unknown setting 'concurency'",
    ),
    "unknown-model-type": (
        "probe: {type: logic}\nmodel:\n  type: gpt5000\n",
        None,
        "error: eval.yaml:3: unknown model type 'gpt5000'; built-in types: anthropic, dummy, llamacpp, openai, or a custom class as 'package.module:ClassName'",
    ),
    "unknown-probe-type": (
        "model: {type: dummy}\nprobe:\n  type: vibes\n",
        None,
        "error: eval.yaml:3: unknown probe type 'vibes'; built-in types: bias, code, factuality, instruction_following, jailbreak, logic, or a custom class as 'package.module:ClassName'",
    ),
    "bad-model-args": (
        "model:\n  type: dummy\n  args: {temprature: 3}\nprobe: {type: logic}\n",
        None,
        "error: eval.yaml:2: bad args for model type 'dummy': got an unexpected keyword argument 'temprature'",
    ),
    "missing-data-file": (
        "model: {type: dummy}\nprobe: {type: logic}\ndataset:\n  path: nope.jsonl\n",
        None,
        "error: nope.jsonl: prompt set file not found (dataset at eval.yaml:3)",
    ),
    "malformed-jsonl": (
        "model: {type: dummy}\nprobe: {type: logic}\ndataset: {path: data.jsonl}\n",
        '{"id": 1, "prompt": "ok"}\n{"id": 2, "prompt": "broken"\n',
        "error: data.jsonl:2: malformed JSON: unexpected end of data (column 29) (dataset at eval.yaml:3)",
    ),
    "duplicate-ids": (
        "model: {type: dummy}\nprobe: {type: logic}\ndataset: {path: data.jsonl}\n",
        '{"id": 1, "prompt": "a"}\n{"id": 1, "prompt": "b"}\n',
        "error: data.jsonl: duplicate example id '1' (dataset at eval.yaml:3)",
    ),
    "missing-env": (
        "model:\n  type: dummy\n  args: {model_name: '${INSIDELLMS_TEST_UNSET_VAR}'}\nprobe: {type: logic}\n",
        None,
        "error: eval.yaml:1: environment variable INSIDELLMS_TEST_UNSET_VAR is not set (export it, or write ${INSIDELLMS_TEST_UNSET_VAR:-default})",
    ),
    "no-probe": ("model: {type: dummy}\n", None, "error: eval.yaml:1: config: missing 'probe' (or 'probes' for a harness)"),
    "empty": ("", None, "error: eval.yaml:1: the config file is empty"),
    "wrong-type": (
        "model: {type: dummy}\nprobe: {type: logic}\nrunner: {concurrency: lots}\n",
        None,
        "error: eval.yaml:3: runner.concurrency: expected an integer, got a string ('lots')",
    ),
    "out-of-range": (
        "model: {type: dummy}\nprobe: {type: logic}\nrunner:\n  max_retries: 2\n  concurrency: 0\n",
        None,
        "error: eval.yaml:5: runner.concurrency: expected an integer >= 1, got 0",
    ),
    "bad-choice": (
        "model: {type: dummy}\nprobe: {type: logic}\ndataset:\n  format: parquet\n  path: data.parquet\n",
        None,
        "error: eval.yaml:4: dataset.format: invalid value 'parquet'",
    ),
    "missing-type-in-list": (
        "models:\n  - {type: dummy}\n  - args: {canned_response: hi}\nprobe: {type: logic}\n",
        None,
        "error: eval.yaml:3: models.1.type: missing (required)",
    ),
    "bad-tracking-backend": (
        "model: {type: dummy}\nprobe: {type: logic}\ntracking:\n  backend: [local, neptune]\n",
        None,
        "error: eval.yaml:4: tracking.backend: unknown tracking backend 'neptune'; choose from: local, wandb, mlflow, tensorboard",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("command", ["run", "validate"])
def test_bad_input_gives_one_line_and_exit_1(tmp_path: Path, case: str, command: str) -> None:
    config, data, expected = CASES[case]
    (tmp_path / "eval.yaml").write_text(config, encoding="utf-8")
    if data is not None:
        (tmp_path / "data.jsonl").write_text(data, encoding="utf-8")
    args = ["run", "eval.yaml", "--no-track", "--run-dir", "out"] if command == "run" else ["validate", "eval.yaml"]
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == expected
    assert not (tmp_path / "out").exists()


def test_missing_config_file(tmp_path: Path) -> None:
    result = run_cli("run", "nowhere.yaml", cwd=tmp_path)
    assert (result.returncode, result.stderr.strip()) == (1, "error: nowhere.yaml: config file not found")


def test_csv_prompt_set_with_column_mapping_and_bad_column(tmp_path: Path) -> None:
    (tmp_path / "qa.csv").write_text("key,question,gold\nk1,Capital of France?,Paris\nk2,2+2?,4\n", encoding="utf-8")
    base = "model: {type: dummy, args: {canned_response: Paris}}\nprobe: {type: factuality}\n"
    good = base + "dataset: {format: csv, path: qa.csv, id_field: key, columns: {prompt: question, answer: gold}}\n"
    (tmp_path / "eval.yaml").write_text(good, encoding="utf-8")
    result = run_cli("run", "eval.yaml", "--no-track", "--run-dir", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    records = (tmp_path / "out/records.jsonl").read_text().splitlines()
    assert '"example_id":"k1"' in records[0] and '"passed":true' in records[0] and '"passed":false' in records[1]
    (tmp_path / "bad.yaml").write_text(base + "dataset: {format: csv, path: qa.csv, columns: {prompt: query}}\n", encoding="utf-8")
    bad = run_cli("run", "bad.yaml", "--no-track", "--run-dir", "out2", cwd=tmp_path)
    assert bad.returncode == 1
    assert bad.stderr.strip() == "error: qa.csv:1: column(s) query not in header ['key', 'question', 'gold'] (dataset at bad.yaml:3)"


def test_inline_prompt_set(tmp_path: Path) -> None:
    (tmp_path / "eval.yaml").write_text(
        "model: {type: dummy}\nprobe: {type: logic}\ndataset:\n  format: inline\n  items:\n"
        "    - {id: a, prompt: 'Answer: 4', answer: '4'}\n    - {id: b, prompt: 'no', answer: '4'}\n",
        encoding="utf-8",
    )
    result = run_cli("run", "eval.yaml", "--no-track", "--run-dir", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "out/records.jsonl").read_text().splitlines()
    assert '"passed":true' in lines[0] and '"passed":false' in lines[1]


def test_secrets_from_env_never_reach_the_run_directory(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "data.jsonl", qa_rows(3))
    (tmp_path / "eval.yaml").write_text(
        "model:\n  type: dummy\n  args: {model_name: 'bot-${BOT_SUFFIX}'}\nprobe: {type: factuality}\n"
        "dataset: {path: data.jsonl}\ntracking:\n  enabled: false\n  project: 'p-${SECRET_PROJECT_TOKEN}'\n",
        encoding="utf-8",
    )
    result = run_cli("run", "eval.yaml", "--no-track", "--run-dir", "out", cwd=tmp_path,
                     env={"BOT_SUFFIX": "x1", "SECRET_PROJECT_TOKEN": "sk-live-abcdef1234567890"})
    assert result.returncode == 0, result.stderr
    resolved = (tmp_path / "out/config.resolved.yaml").read_text()
    assert "${SECRET_PROJECT_TOKEN}" in resolved and "${BOT_SUFFIX}" in resolved
    for path in (tmp_path / "out").iterdir():
        assert b"sk-live-abcdef1234567890" not in path.read_bytes(), path


def test_usage_errors_exit_1_not_2(tmp_path: Path) -> None:
    result = run_cli("run", "--no-such-flag", "x.yaml", cwd=tmp_path)
    assert result.returncode == 1 and "No such option" in result.stderr


def test_literal_secrets_in_the_config_are_redacted_on_disk(tmp_path: Path, fake_llm_server) -> None:  # noqa: ANN001
    write_jsonl(tmp_path / "data.jsonl", qa_rows(2))
    key = "sk-proj-Zx81Hq0LmN3vT5rY7uW9aB2cD4eF6gH8"
    (tmp_path / "eval.yaml").write_text(
        "model:\n  type: openai\n  args:\n    model_name: fake\n"
        f"    base_url: '{fake_llm_server.openai_base_url}'\n    api_key: '{key}'\n"
        "    headers: {Authorization: 'Bearer abc.def.ghi-secret-token'}\n"
        "probe: {type: factuality}\ndataset: {path: data.jsonl}\n",
        encoding="utf-8",
    )
    result = run_cli("run", "eval.yaml", "--no-track", "--run-dir", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    resolved = (tmp_path / "out/config.resolved.yaml").read_text()
    assert "api_key: '[REDACTED]'" in resolved and "Authorization: '[REDACTED]'" in resolved
    for path in (tmp_path / "out").iterdir():
        data = path.read_bytes()
        assert key.encode() not in data and b"abc.def.ghi-secret-token" not in data, path
