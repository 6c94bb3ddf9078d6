"""The config as a library reads it: ``parse_config``/``load_config`` give the validated settings and the resolved
view written to the run directory; ``validate`` and ``SchemaError`` say what is wrong and where."""

from __future__ import annotations

import locale
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from insideLLMs.config import (
    Config,
    ConfigError,
    DatasetConfig,
    ExecutorConfig,
    GenerationConfig,
    RunnerConfig,
    SchemaError,
    TrackingConfig,
    line_of,
    load_config,
    parse_config,
    redact_config,
    validate,
)
from insideLLMs.config import tracking_uri_problem
from insideLLMs.secrets import REDACTED

BASE = "model: {type: dummy}\nprobe: {type: logic}\n"


def _error(text: str, env: dict[str, str] | None = None, path: str = "eval.yaml") -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, Path(path), env=env or {})
    return str(caught.value)


# -- validate and SchemaError: the key path and the message, in our words ---------------------------------

def test_an_error_names_its_key_path_and_says_config_for_the_whole() -> None:
    with pytest.raises(SchemaError) as nested:
        validate({"executor": {"type": "ray", "workers": 0}}, RunnerConfig)
    assert (nested.value.loc, nested.value.message) == (("executor", "workers"), "expected an integer >= 1, got 0")
    assert str(nested.value) == "executor.workers: expected an integer >= 1, got 0"
    with pytest.raises(SchemaError) as whole:
        validate({}, Config)
    assert (whole.value.loc, str(whole.value)) == ((), "config: missing 'model' (or 'models' for a harness)")


def test_unknown_and_missing_keys() -> None:
    with pytest.raises(SchemaError) as unknown:
        validate({"concurency": 4}, RunnerConfig)
    assert (unknown.value.loc, unknown.value.message) == (("concurency",), "unknown setting 'concurency'")
    with pytest.raises(SchemaError) as missing:
        validate({"models": [{"type": "dummy"}, {"args": {}}], "probe": {"type": "logic"}}, Config)
    assert (missing.value.loc, missing.value.message) == (("models", 1, "type"), "missing (required)")


def test_a_record_check_names_its_field() -> None:
    with pytest.raises(SchemaError) as caught:
        TrackingConfig.from_options({"backend": []})
    assert (caught.value.loc, str(caught.value)) == (("backend",), "backend: give at least one backend")


def test_a_custom_tracking_sink_is_named_by_its_module_and_class() -> None:
    tracking = TrackingConfig.from_options({"backend": ["local", "my_team.sinks:AuditSink"]})
    assert tracking.backends == ["local", "my_team.sinks:AuditSink"]


def test_type_errors_name_types_in_words_and_show_plain_values() -> None:
    for data, expected in [
        ({"temperature": "hot"}, "expected a number or nothing (null), got a string ('hot')"),
        ({"stop": "END"}, "expected a list or nothing (null), got a string ('END')"),
        ({"max_tokens": None, "seed": {"a": 1}}, "expected an integer or nothing (null), got a mapping"),
        (yaml.safe_load("stop: [2026-01-01]"), "expected a string, got a date (2026-01-01; quote it to keep it as text)"),
        (yaml.safe_load("seed: 2026-01-01 10:30:00"),
         "expected an integer or nothing (null), got a date and time (2026-01-01T10:30:00; quote it to keep it as text)"),
    ]:
        with pytest.raises(SchemaError) as caught:
            validate(data, GenerationConfig)
        assert caught.value.message == expected
    with pytest.raises(SchemaError) as choice:
        validate({"type": "spark"}, ExecutorConfig)
    assert (choice.value.loc, choice.value.message) == (("type",), "invalid value 'spark'")


def test_strict_unless_told_otherwise() -> None:
    with pytest.raises(SchemaError) as caught:
        validate({"concurrency": "4"}, RunnerConfig)
    assert caught.value.message == "expected an integer, got a string ('4')"
    assert validate({"concurrency": "4", "timeout_s": "2.5"}, RunnerConfig, strict=False).concurrency == 4


def test_generation_params_keep_zero_and_drop_unset() -> None:
    params = validate({"temperature": 0, "seed": 0, "stop": []}, GenerationConfig).as_params()
    assert params == {"temperature": 0, "seed": 0, "stop": []}


def test_tracking_options_copied_with_changes_are_checked_again() -> None:
    tracking = TrackingConfig.from_options({"backend": ["local", "local"], "tags": ["v1"]})
    assert tracking.backends == ["local"] and tracking.tag_dict == {"v1": ""}
    changed = tracking.replace(project="p", backend="wandb")
    assert (changed.project, changed.backend, changed.tags, tracking.project) == ("p", "wandb", ["v1"], None)
    assert changed.as_dict()["project"] == "p" and set(changed.as_dict()) == set(TrackingConfig.option_names())
    with pytest.raises(SchemaError) as caught:
        tracking.replace(backend="neptune")
    assert str(caught.value) == (
        "backend: unknown tracking backend 'neptune'; choose from: local, wandb, mlflow, tensorboard")


@pytest.mark.parametrize("uri, problem", [
    ("http://127.0.0.1:5000", None),
    ("HTTPS://mlflow.example.com", None),
    ("sqlite:///mlflow.db", None),
    ("postgresql+psycopg2://u@db/mlflow", None),
    ("file:///srv/mlruns", None),
    ("databricks-uc", None),
    ("mlruns", None),
    ("C:\\mlruns", None),
    ("http://", "'http://' names no host"),
    ("htp:/127.0.0.1:5000", "'htp:/127.0.0.1:5000': unsupported scheme 'htp'"),
    ("HTP://host", "'HTP://host': unsupported scheme 'htp'"),
    ("ht://host", "'ht://host': unsupported scheme 'ht'"),
    ("", "'' is not a URI or a folder path"),
    ("my runs", "'my runs' is not a URI or a folder path"),
])
def test_tracking_uris_mlflow_can_use(uri: str, problem: str | None) -> None:
    usable = "; give http(s)://host:port, a database URI (sqlite:///mlflow.db, postgresql://...) or a local folder"
    assert tracking_uri_problem(uri) == (None if problem is None else problem + usable)


# -- parse_config: ${ENV} references, the resolved view, paths ----------------------------------------------

RESOLVED = """model:
  type: openai
  args:
    model_name: '${MODEL:-gpt}'
    api_key: '${OPENAI_KEY}'
    headers: {Authorization: 'Bearer abc.def.ghi-secret-token', X-Trace: ''}
    base_url: 'http://h/${PATHPART:-v1}/${VERSION:-}'
probe: {type: logic}
runner:
  concurrency: '${CONC:-4}'
  max_retries: 2
tracking:
  project: 'p-${TEAM}'
  tags: ['${TAG:-none}', fixed, '${TAG2}']
pricing:
  gpt: {input: '${PRICE_IN:-0.5}', output: 1}
"""


def test_environment_values_are_used_and_the_references_kept() -> None:
    loaded = parse_config(RESOLVED, Path("eval.yaml"), env={
        "OPENAI_KEY": "sk-live-abcdef1234567890", "TEAM": "", "CONC": "8", "PATHPART": "", "TAG2": "x"})
    config = loaded.config
    assert config.model is not None and config.model.args == {
        "model_name": "gpt", "api_key": "sk-live-abcdef1234567890",
        "headers": {"Authorization": "Bearer abc.def.ghi-secret-token", "X-Trace": ""}, "base_url": "http://h/v1/"}
    assert (config.runner.concurrency, config.runner.max_retries) == (8, 2)
    assert config.tracking is not None
    assert (config.tracking.project, config.tracking.tags) == ("p-", ["none", "fixed", "x"])
    assert config.pricing is not None and (config.pricing["gpt"].input, config.pricing["gpt"].output) == (0.5, 1.0)
    assert loaded.resolved == {
        "model": {"type": "openai", "args": {
            "model_name": "${MODEL:-gpt}", "api_key": "${OPENAI_KEY}",
            "headers": {"Authorization": REDACTED, "X-Trace": ""},
            "base_url": "http://h/${PATHPART:-v1}/${VERSION:-}"}},
        "probe": {"type": "logic"},
        "runner": {"concurrency": "${CONC:-4}", "max_retries": 2},
        "tracking": {"project": "p-${TEAM}", "tags": ["${TAG:-none}", "fixed", "${TAG2}"]},
        "pricing": {"gpt": {"input": "${PRICE_IN:-0.5}", "output": 1}},
    }


def test_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INSIDELLMS_T_NAME", "from-env")
    loaded = parse_config(BASE + "name: '${INSIDELLMS_T_NAME}'\n", Path("eval.yaml"))
    assert loaded.config.name == "from-env"


def test_an_unset_variable_is_named_at_its_top_level_key() -> None:
    text = BASE + "runner:\n  concurrency: 2\n  cache_dir: '${CACHE}/x'\n"
    assert _error(text) == (
        "eval.yaml:3: environment variable CACHE is not set (export it, or write ${CACHE:-default})")
    assert _error(BASE + "tracking: {tags: [a, '${TAG}']}\n", path="conf/eval.yaml") == (
        "conf/eval.yaml:3: environment variable TAG is not set (export it, or write ${TAG:-default})")


def test_a_variable_set_to_nothing_is_nothing_without_a_default() -> None:
    assert parse_config(BASE + "name: 'run-${SUFFIX}'\n", Path("eval.yaml"), env={"SUFFIX": ""}).config.name == "run-"


def test_values_without_references_are_checked_strictly() -> None:
    assert _error(BASE + "runner: {concurrency: '4'}\n") == (
        "eval.yaml:3: runner.concurrency: expected an integer, got a string ('4')")
    assert _error(BASE + "pricing:\n  m: {input: '0.5', output: 1}\n") == (
        "eval.yaml:4: pricing.m.input: expected a number, got a string ('0.5') (a price is USD per million tokens: "
        "{input: 0.15, output: 0.6})")


def test_paths_written_in_the_config_are_relative_to_its_folder() -> None:
    text = BASE + "run_dir: out\ntracking: {output_dir: logs, log_dir: tb}\n"
    config = parse_config(text, Path("proj/eval.yaml"), env={}).config
    assert config.run_dir == "proj/out"
    assert config.tracking is not None
    assert (config.tracking.output_dir, config.tracking.log_dir) == ("proj/logs", "proj/tb")
    text = BASE + "tracking: {output_dir: /abs/logs, log_dir: /abs/tb}\n"
    tracking = parse_config(text, Path("proj/eval.yaml"), env={}).config.tracking
    assert tracking is not None and (tracking.output_dir, tracking.log_dir) == ("/abs/logs", "/abs/tb")
    unwritten = parse_config(BASE + "run_dir: /abs/out\ntracking: {backend: local}\n", Path("proj/eval.yaml"), env={})
    assert unwritten.config.run_dir == "/abs/out"
    assert unwritten.config.tracking is not None
    assert (unwritten.config.tracking.output_dir, unwritten.config.tracking.log_dir) == ("./tracking_logs", "./tb_logs")
    assert parse_config(BASE + "run_dir: ~\n", Path("proj/eval.yaml"), env={}).config.run_dir is None
    assert parse_config(BASE, Path("proj/eval.yaml"), env={}).base_dir == Path("proj")


def test_yaml_mistakes_name_the_line_when_yaml_knows_it() -> None:
    assert _error("model: {type: dummy\nprobe: {type: logic}\n") == (
        "eval.yaml:2: invalid YAML: expected ',' or '}', but got ':'")
    assert _error(BASE + "name: \x07\n") == (
        "eval.yaml: invalid YAML: unacceptable character #x0007: special characters are not allowed")
    assert _error("# nothing yet\n") == "eval.yaml:1: the config file is empty"
    assert _error("just a sentence\n") == "eval.yaml:1: expected a mapping of settings at the top level"


def test_errors_point_at_the_line_of_the_key() -> None:
    text = "model:\n  type: dummy\nprobe:\n  type: logic\nmodels:\n  - type: dummy\n"
    assert _error(text) == "eval.yaml:1: config: give either 'model' or 'models', not both"
    text = BASE + "runner:\n  executor:\n    type: ray\n    workers: 0\n"
    assert _error(text) == "eval.yaml:6: runner.executor.workers: expected an integer >= 1, got 0"
    listed = "models:\n  - type: dummy\n  - args: {}\nprobe: {type: logic}\n"
    assert _error(listed) == "eval.yaml:3: models.1.type: missing (required)"


@pytest.fixture
def ascii_locale() -> Iterator[None]:
    """The C locale: text files opened without an encoding would be read as ASCII."""
    saved = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    yield
    locale.setlocale(locale.LC_CTYPE, saved)


def test_a_config_is_utf8_whatever_the_locale(tmp_path: Path, ascii_locale: None) -> None:
    (tmp_path / "eval.yaml").write_text("name: café\n" + BASE, encoding="utf-8")
    loaded = load_config(tmp_path / "eval.yaml")
    assert (loaded.config.name, line_of(loaded, "probe")) == ("café", 3)


def test_line_of_a_key_path_in_the_loaded_file(tmp_path: Path) -> None:
    (tmp_path / "eval.yaml").write_text(
        "# a comment\nmodel: {type: dummy}\nprobe:\n  type: logic\n  args:\n    scorers:\n      - exact\n"
        "      - {type: f1}\n", encoding="utf-8")
    loaded = load_config(tmp_path / "eval.yaml")
    assert [line_of(loaded, *keys) for keys in [
        ("model",), ("model", "type"), ("probe",), ("probe", "args", "scorers", 0), ("probe", "args", "scorers", 1),
        ("probe", "args", "scorers", 1, "type"), ("probe", "args", "nothing", "here"), ("dataset",), (),
    ]] == [2, 2, 3, 7, 8, 8, 5, 2, 2]  # a key not written: its nearest parent, or the document
    (tmp_path / "eval.yaml").write_text("# emptied since\n", encoding="utf-8")
    assert line_of(loaded, "model") == 1


# -- datasets, executors, the whole config: checks across fields ------------------------------------------

@pytest.mark.parametrize("data, loc, message", [
    ({"format": "csv"}, ("format",), "format csv needs 'path'"),
    ({"format": "jsonl", "path": ""}, ("format",), "format jsonl needs 'path'"),
    ({"format": "inline"}, ("format",), "format inline needs 'items'"),
    ({"format": "hf", "name": ""}, ("format",), "format hf needs 'name' (the dataset id)"),
    ({"path": "a.jsonl", "fields": {}, "columns": {}}, ("columns",),
     "give 'fields' (example field -> column), not both 'fields' and 'columns'"),
])
def test_dataset_settings_that_cannot_work_together(data: dict, loc: tuple, message: str) -> None:
    with pytest.raises(SchemaError) as caught:
        validate(data, DatasetConfig)
    assert (caught.value.loc, caught.value.message) == (loc, message)


def test_dataset_columns_are_the_older_name_of_fields() -> None:
    csv = validate({"format": "csv", "path": "a.csv", "columns": {"prompt": "q"}}, DatasetConfig)
    assert csv.fields == {"prompt": "q"}
    assert validate({"format": "inline", "items": []}, DatasetConfig).fields is None
    assert validate({"format": "hf", "name": "qa", "fields": {"prompt": "q"}}, DatasetConfig).fields == {"prompt": "q"}


@pytest.mark.parametrize("data, ok", [
    ({}, True), ({"type": "ray", "address": "h:1", "workers": 2}, True), ({"address": "auto"}, True),
    ({"address": "h:1"}, False), ({"workers": 2}, False), ({"type": "local", "workers": 1}, False),
])
def test_the_ray_settings_need_the_ray_executor(data: dict, ok: bool) -> None:
    if ok:
        validate(data, ExecutorConfig)
        return
    with pytest.raises(SchemaError) as caught:
        validate(data, ExecutorConfig)
    assert (caught.value.loc, caught.value.message) == (
        ("type",), "address and workers apply to the ray executor: set type: ray")


@pytest.mark.parametrize("data, message", [
    ({"model": {"type": "d"}, "models": [{"type": "d"}], "probe": {"type": "p"}},
     "give either 'model' or 'models', not both"),
    ({"model": {"type": "d"}, "probe": {"type": "p"}, "probes": [{"type": "p"}]},
     "give either 'probe' or 'probes', not both"),
    ({"probe": {"type": "p"}, "models": []}, "missing 'model' (or 'models' for a harness)"),
    ({"model": {"type": "d"}, "probes": []}, "missing 'probe' (or 'probes' for a harness)"),
])
def test_a_config_needs_models_and_probes_given_one_way(data: dict, message: str) -> None:
    with pytest.raises(SchemaError) as caught:
        validate(data, Config)
    assert (caught.value.loc, caught.value.message) == ((), message)


def test_one_model_and_probe_or_lists_of_them() -> None:
    single = validate({"model": {"type": "a"}, "probe": {"type": "p"}, "models": [], "probes": None}, Config)
    assert [m.type for m in single.model_list] == ["a"] and [p.type for p in single.probe_list] == ["p"]
    grid = validate({"models": [{"type": "a"}, {"type": "b"}], "probes": [{"type": "p"}, {"type": "q"}]}, Config)
    assert [m.type for m in grid.model_list] == ["a", "b"] and [p.type for p in grid.probe_list] == ["p", "q"]


# -- the resolved view: secrets redacted, references kept ----------------------------------------------

def test_redacted_config_keeps_references_and_empty_values() -> None:
    written = {
        "api_key": "sk-live-abcdef1234567890", "token": "${TOKEN}", "password": "pre-${PW}", "secret": None,
        "access_key": "", "name": "${NAME:-n}", "notes": "Bearer abcdefgh12345678", 3: "three",
        "nested": [{"Authorization": "Basic dXNlcjpwYXNz"}, "${X}", 7],
    }
    assert redact_config(written) == {
        "api_key": REDACTED, "token": "${TOKEN}", "password": REDACTED, "secret": None, "access_key": "",
        "name": "${NAME:-n}", "notes": REDACTED, 3: "three", "nested": [{"Authorization": REDACTED}, "${X}", 7],
    }
    assert redact_config("${WHOLE}") == "${WHOLE}"


def test_a_credential_written_as_a_references_default_is_redacted() -> None:
    """A reference keeps its name and a plain default; a credential in its default is a literal in the file,
    redacted as anywhere else."""
    written = {
        "api_key": "${OPENAI_API_KEY:-sk-live-abcdef1234567890abcd}",
        "base_url": "${BASE_URL:-https://user:hunter2@proxy.example.com/v1}",
        "fallback": "${KEY:-none}",
        "tags": ["${TAG:-Bearer abcdefgh12345678}"],
    }
    assert redact_config(written) == {
        "api_key": f"${{OPENAI_API_KEY:-{REDACTED}}}",
        "base_url": f"${{BASE_URL:-https://{REDACTED}@proxy.example.com/v1}}",
        "fallback": "${KEY:-none}",
        "tags": [f"${{TAG:-{REDACTED}}}"],
    }
    assert redact_config("${KEY:-sk-live-abcdef1234567890abcd}") == f"${{KEY:-{REDACTED}}}"
