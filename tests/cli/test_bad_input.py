"""Every user mistake: one ``error:`` line naming the file and location, exit 1, no traceback, no model call,
nothing written.

One table, by area: the config, prompt sets (JSONL, CSV, inline, a local Hugging Face folder), custom types,
command-line flags, run directories, diff inputs and tracking settings. A config or prompt-set case runs through
both ``insidellms run`` and ``insidellms validate`` (one code path, ``insideLLMs.run.build_harness``), which must
say the same line. The model is the fake server, which counts requests: a mistake must cost none.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Mapping

import pytest
from click.testing import CliRunner

from insideLLMs.cli.main import cli as insidellms
from support.cli import qa_rows, run_cli, write_jsonl
from support.run_dirs import record, write_run_dir
from support.shards import run_in_process, shard_dirs

#: the model of every case that needs one: the fake server, whose request count must stay 0
MODEL = "{type: openai, args: {model_name: m, api_key: k, base_url: '@URL@'}}"
GOOD_DATA = "".join(f'{{"id": "q{i}", "prompt": "p{i}", "answer": "a"}}\n' for i in range(3))
BASE = "model: @MODEL@\nprobe: {type: logic}\n"
WITH_DATA = BASE + "dataset: {path: data.jsonl}\n"
PROMPT = "model: @MODEL@\ndataset: {format: csv, path: qa.csv}\nprobe:\n  type: prompt\n  args:\n"
QA_CSV = "id,q,gold\n1,2+2?,4\n2,Capital of France?,Paris\n"


@dataclass(frozen=True)
class Case:
    """A mistake and the one line it must give. ``args`` empty: a config case (``run`` and ``validate``)."""

    expected: str | re.Pattern[str]
    files: Mapping[str, str | bytes | None] = field(default_factory=dict)  # None: a folder
    args: tuple[str, ...] = ()
    code: int = 1
    env: Mapping[str, str] = field(default_factory=dict)
    setup: Callable[[Path], Any] | None = None
    config: str = "eval.yaml"


def config(text: str, expected: str | re.Pattern[str], data: str | bytes | None = None, *,
           data_name: str = "data.jsonl", **kwargs: Any) -> Case:
    files = {"eval.yaml": text} | ({data_name: data} if data is not None else {})
    return Case(expected, files=files | kwargs.pop("files", {}), **kwargs)


def command(*args: str, expected: str | re.Pattern[str], **kwargs: Any) -> Case:
    return Case(expected, args=args, **kwargs)


# -- run directories and tracked runs the cases start from ------------------------------------------

def finished_run(path: Path, probe: str = "logic", n: int = 2) -> Path:
    return write_run_dir(path, [record(f"q{i}", probe=probe) for i in range(n)])


def interrupted_run(path: Path) -> Path:
    run = write_run_dir(path, [record("q0", probe="logic", run_id="run-before")])
    (run / "manifest.json").unlink()
    (run / "summary.json").unlink()
    (run / ".incomplete").write_text('{"run_id":"run-before"}\n')
    return run


def epochs_run(path: Path, k: int, n: int = 2) -> Path:
    records = [record(f"q{i}", probe="logic") | {"epoch": e} for i in range(n) for e in range(k)]
    run = write_run_dir(path, records)
    manifest = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps(manifest | {"epochs": k}))
    return run


def hf_folder(path: Path) -> None:
    datasets = pytest.importorskip("datasets", reason="the hf extra is not installed")
    rows = [{"id": f"r{i}", "question": f"{i}+{i}?", "gold": str(2 * i)} for i in range(2)]
    datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)}).save_to_disk(str(path / "qa"))


def tracked_run(path: Path) -> None:
    write_jsonl(path / "data.jsonl", qa_rows(2))
    (path / "good.yaml").write_text(
        "model: {type: dummy}\nprobe: {type: factuality}\ndataset: {path: data.jsonl}\n"
        "tracking: {backend: local, output_dir: tracking_logs}\n", encoding="utf-8")
    result = run_cli("run", "good.yaml", "--run-dir", "done", cwd=path)
    assert result.returncode == 0, result.stderr


CASES: dict[str, Case] = {
    # -- the config file -------------------------------------------------------------------------
    "bad-yaml": config(
        "model: {type: dummy\nprobe: {type: logic}\n",
        "error: eval.yaml:2: invalid YAML: expected ',' or '}', but got ':'",
    ),
    "unknown-key": config(
        "model: @MODEL@\nprobe: {type: logic}\ndataset: {format: jsonl, path: data.jsonl}\nrunner:\n  concurency: 4\n",
        "error: eval.yaml:5: runner.concurency: unknown setting 'concurency'", GOOD_DATA,
    ),
    "unknown-model-type": config(
        "probe: {type: logic}\nmodel:\n  type: gpt5000\n",
        "error: eval.yaml:3: unknown model type 'gpt5000'; built-in types: anthropic, dummy, llamacpp, openai, or a custom class as 'package.module:ClassName'",
    ),
    "unknown-probe-type": config(
        "model: @MODEL@\nprobe:\n  type: vibes\n",
        "error: eval.yaml:3: unknown probe type 'vibes'; built-in types: bias, code, factuality, instruction_following, jailbreak, logic, prompt, or a custom class as 'package.module:ClassName'",
    ),
    "bad-model-args": config(
        "model:\n  type: dummy\n  args: {temprature: 3}\nprobe: {type: logic}\n",
        "error: eval.yaml:2: bad args for model type 'dummy': got an unexpected keyword argument 'temprature'",
    ),
    "missing-env": config(
        "model:\n  type: dummy\n  args: {model_name: '${INSIDELLMS_TEST_UNSET_VAR}'}\nprobe: {type: logic}\n",
        "error: eval.yaml:1: environment variable INSIDELLMS_TEST_UNSET_VAR is not set (export it, or write ${INSIDELLMS_TEST_UNSET_VAR:-default})",
    ),
    "no-probe": config("model: @MODEL@\n", "error: eval.yaml:1: config: missing 'probe' (or 'probes' for a harness)"),
    "empty": config("", "error: eval.yaml:1: the config file is empty"),
    "wrong-type": config(
        "model: @MODEL@\nprobe: {type: logic}\nrunner: {concurrency: lots}\n",
        "error: eval.yaml:3: runner.concurrency: expected an integer, got a string ('lots')",
    ),
    "out-of-range": config(
        "model: @MODEL@\nprobe: {type: logic}\nrunner:\n  max_retries: 2\n  concurrency: 0\n",
        "error: eval.yaml:5: runner.concurrency: expected an integer >= 1, got 0",
    ),
    "bad-choice": config(
        "model: @MODEL@\nprobe: {type: logic}\ndataset:\n  format: parquet\n  path: data.parquet\n",
        "error: eval.yaml:4: dataset.format: invalid value 'parquet'",
    ),
    "missing-type-in-list": config(
        "models:\n  - {type: dummy}\n  - args: {canned_response: hi}\nprobe: {type: logic}\n",
        "error: eval.yaml:3: models.1.type: missing (required)",
    ),
    "missing-config-file": Case("error: nowhere.yaml: config file not found", config="nowhere.yaml"),
    "config-is-a-folder": Case(
        "error: conf: is a directory, expected a YAML config file",
        files={"conf": None},
        config="conf",
    ),
    "config-not-utf8": config(
        b"model: {type: dummy}\nprobe: {type: '\xff'}\n",
        "error: eval.yaml: not UTF-8 text (invalid start byte)",
    ),
    "top-level-list": config(
        "- model\n- probe\n",
        "error: eval.yaml:1: expected a mapping of settings at the top level",
    ),
    "no-model": config(
        "probe: {type: logic}\n",
        "error: eval.yaml:1: config: missing 'model' (or 'models' for a harness)",
    ),
    "model-and-models": config(
        "model: @MODEL@\nmodels: [@MODEL@]\nprobe: {type: logic}\n",
        "error: eval.yaml:1: config: give either 'model' or 'models', not both",
    ),
    "unknown-top-level-key": config(
        BASE + "modle: {type: dummy}\n",
        "error: eval.yaml:3: modle: unknown setting 'modle'",
    ),
    "generation-wrong-type": config(
        BASE + "generation:\n  temperature: hot\n",
        "error: eval.yaml:4: generation.temperature: expected a number or nothing (null), got a string ('hot')",
    ),
    "generation-stop-not-a-list": config(
        BASE + "generation: {stop: END}\n",
        "error: eval.yaml:3: generation.stop: expected a list or nothing (null), got a string ('END')",
    ),
    "timeout-zero": config(
        BASE + "runner: {timeout_s: 0}\n",
        "error: eval.yaml:3: runner.timeout_s: expected a number > 0.0, got 0",
    ),
    "model-args-not-a-mapping": config(
        "model:\n  type: dummy\n  args: [1, 2]\nprobe: {type: logic}\n",
        "error: eval.yaml:3: model.args: expected a mapping, got a list",
    ),
    "model-type-not-a-string": config(
        "model:\n  type: [openai]\nprobe: {type: logic}\n",
        "error: eval.yaml:2: model.type: expected a string, got a list",
    ),
    "bad-probe-args": config(
        "model: @MODEL@\nprobe:\n  type: logic\n  args: {strictness: 3}\n",
        "error: eval.yaml:3: bad args for probe type 'logic': got an unexpected keyword argument 'strictness'",
    ),
    "env-value-of-wrong-type": config(
        BASE + "runner:\n  concurrency: '${INSIDELLMS_TEST_N}'\n",
        "error: eval.yaml:4: runner.concurrency: expected an integer, got a string ('many')",
        env={"INSIDELLMS_TEST_N": "many"},
    ),
    "env-in-model-args-unset": config(
        "model: {type: openai, args: {model_name: m, api_key: '${INSIDELLMS_TEST_UNSET_KEY}', base_url: '@URL@'}}\n"
        "probe: {type: logic}\n",
        "error: eval.yaml:1: environment variable INSIDELLMS_TEST_UNSET_KEY is not set (export it, or write ${INSIDELLMS_TEST_UNSET_KEY:-default})",
    ),
    "duplicate-model-names": config(
        "probe: {type: logic}\nmodels:\n  - @MODEL@\n  - @MODEL@\n",
        "error: eval.yaml:2: two models are named 'm'; give each a distinct model_name",
    ),
    "bad-args-of-the-second-model": config(  # at the line of its type
        "models:\n  - @MODEL@\n  - args: {temprature: 1}\n    type: dummy\nprobe: {type: logic}\n",
        "error: eval.yaml:4: bad args for model type 'dummy': got an unexpected keyword argument 'temprature'",
    ),
    "model-arg-value-refused": config(
        "model:\n  type: dummy\n  args: {fail_with: boom}\nprobe: {type: logic}\n",
        "error: eval.yaml:2: bad args for model type 'dummy': fail_with must be one of ['auth', 'error', "
        "'rate_limited', 'timeout', 'transient'], not 'boom'",
    ),
    "same-probe-twice": config(
        "models: [@MODEL@]\nprobes:\n  - {type: logic}\n  - {type: logic}\n",
        "error: eval.yaml:4: two probes are named 'logic'; list each probe once",
    ),
    "probe-without-a-bundled-set": config(
        "models: [@MODEL@]\nprobes:\n  - {type: logic}\n  - {type: prompt, args: {template: '{{ q }}'}}\n",
        "error: eval.yaml:4: probe 'prompt' has no bundled prompt set; give a dataset in the config",
    ),
    "max-examples-zero": config(
        BASE + "runner: {max_examples: 0}\n",
        "error: eval.yaml:3: runner.max_examples: expected an integer >= 1, got 0",
    ),
    "concurrency-null": config(
        BASE + "runner:\n  concurrency: ~\n",
        "error: eval.yaml:4: runner.concurrency: expected an integer, got nothing (null)",
    ),
    "name-is-a-date": config(  # YAML reads an unquoted date as a date
        BASE + "name: 2024-06-01\n",
        "error: eval.yaml:3: name: expected a string or nothing (null), got a date (2024-06-01; quote it to keep it "
        "as text)",
    ),
    # -- prices and budgets ------------------------------------------------------------------------
    "budget-negative": config(
        BASE + "runner: {max_cost_usd: -1}\n",
        "error: eval.yaml:3: runner.max_cost_usd: expected a number > 0.0, got -1",
    ),
    "budget-without-a-price": config(
        BASE + "runner:\n  concurrency: 2\n  max_cost_usd: 5\n",
        "error: eval.yaml:5: runner.max_cost_usd: no price for 'm', so a budget of $5 cannot be kept: give each its "
        "price under 'pricing:' in the config (USD per million input and output tokens)",
    ),
    "budget-without-the-judges-price": config(
        PROMPT + "    template: '{{ q }}'\n    scorers:\n      - {type: judge, rubric: 'Is it correct?'}\n"
        "judge: {type: openai, args: {model_name: grader, api_key: k, base_url: '@URL@'}}\n"
        "pricing:\n  m: {input: 1, output: 2}\nrunner: {max_cost_usd: 1}\n",
        "error: eval.yaml:12: runner.max_cost_usd: no price for 'grader', so a budget of $1 cannot be kept: give each "
        "its price under 'pricing:' in the config (USD per million input and output tokens)",
        files={"qa.csv": QA_CSV},
    ),
    "price-negative": config(
        BASE + "pricing:\n  m: {input: -1, output: 2}\n",
        "error: eval.yaml:4: pricing.m.input: expected a number >= 0.0, got -1 (a price is USD per million tokens: "
        "{input: 0.15, output: 0.6})",
    ),
    "price-missing-output": config(
        BASE + "pricing:\n  m:\n    input: 1\n",
        "error: eval.yaml:4: pricing.m.output: missing (required) (a price is USD per million tokens: "
        "{input: 0.15, output: 0.6})",
    ),
    "price-not-a-number": config(
        BASE + "pricing:\n  gpt-4o:\n    input: 2.5\n    output: cheap\n",
        "error: eval.yaml:6: pricing.gpt-4o.output: expected a number, got a string ('cheap') (a price is USD per "
        "million tokens: {input: 0.15, output: 0.6})",
    ),
    "price-unknown-key": config(
        BASE + "pricing:\n  m: {input: 1, output: 2, cached_input: 0.5}\n",
        "error: eval.yaml:4: pricing.m.cached_input: unknown setting 'cached_input' (a price is USD per million "
        "tokens: {input: 0.15, output: 0.6})",
    ),
    "pricing-not-a-mapping": config(
        BASE + "pricing: [gpt-4o]\n",
        "error: eval.yaml:3: pricing: expected a mapping or nothing (null), got a list",
    ),
    "run-max-cost-zero": command(
        "run", "eval.yaml", "--max-cost", "0",
        expected="error: Invalid value for '--max-cost': 0.0 is not in the range x>0. (see: insidellms run --help)",
        files={"eval.yaml": BASE},
    ),
    "run-max-cost-without-a-price": command(
        "run", "eval.yaml", "--max-cost", "0.5",
        expected="error: --max-cost: no price for 'm', so a budget of $0.5 cannot be kept: give each its price "
                 "under 'pricing:' in the config (USD per million input and output tokens)",
        files={"eval.yaml": BASE},
    ),
    "epochs-zero": config(
        BASE + "runner: {epochs: 0}\n",
        "error: eval.yaml:3: runner.epochs: expected an integer >= 1, got 0",
    ),
    "unknown-reducer": config(
        BASE + "runner:\n  epochs: 3\n  reducer: median\n",
        "error: eval.yaml:5: runner.reducer: unknown reducer 'median' (reducers: mean, majority, max, min, all, "
        "pass_at_K, e.g. pass_at_1)",
    ),
    "unknown-reducer-of-a-score": config(
        BASE + "runner:\n  epochs: 3\n  reducer:\n    pass_rate: max\n    f1: best\n",
        "error: eval.yaml:7: runner.reducer.f1: unknown reducer 'best' (reducers: mean, majority, max, min, all, "
        "pass_at_K, e.g. pass_at_1)",
    ),
    "pass-at-k-beyond-the-epochs": config(
        BASE + "runner: {epochs: 2, reducer: pass_at_5}\n",
        "error: eval.yaml:3: runner.reducer: reducer 'pass_at_5' needs at least 5 epochs, the run has 2",
    ),
    "executor-unknown-type": config(
        BASE + "runner:\n  executor: {type: spark}\n",
        "error: eval.yaml:4: runner.executor.type: invalid value 'spark'",
    ),
    "executor-workers-zero": config(
        BASE + "runner:\n  executor:\n    type: ray\n    workers: 0\n",
        "error: eval.yaml:6: runner.executor.workers: expected an integer >= 1, got 0",
    ),
    "executor-local-with-an-address": config(
        BASE + "runner:\n  executor:\n    address: 10.0.0.1:6379\n",
        "error: eval.yaml:4: runner.executor.type: address and workers apply to the ray executor: set type: ray",
    ),
    # -- prompt sets -------------------------------------------------------------------------------
    "missing-data-file": config(
        "model: @MODEL@\nprobe: {type: logic}\ndataset:\n  path: nope.jsonl\n",
        "error: nope.jsonl: prompt set file not found (dataset at eval.yaml:3)",
    ),
    "malformed-jsonl": config(
        "model: @MODEL@\nprobe: {type: logic}\ndataset: {path: data.jsonl}\n",
        "error: data.jsonl:2: malformed JSON: unexpected end of data (column 29) (dataset at eval.yaml:3)",
        '{"id": 1, "prompt": "ok"}\n{"id": 2, "prompt": "broken"\n',
    ),
    "duplicate-ids": config(
        "model: @MODEL@\nprobe: {type: logic}\ndataset: {path: data.jsonl}\n",
        "error: data.jsonl: duplicate example id '1' (dataset at eval.yaml:3)",
        '{"id": 1, "prompt": "a"}\n{"id": 1, "prompt": "b"}\n',
    ),
    "jsonl-line-not-an-object": config(
        WITH_DATA,
        "error: data.jsonl:4: expected a JSON object, got list (dataset at eval.yaml:3)",
        GOOD_DATA + "[1, 2]\n",
    ),
    "jsonl-id-not-a-string": config(
        WITH_DATA,
        "error: data.jsonl:4: field 'id' must be a string or an integer (dataset at eval.yaml:3)",
        GOOD_DATA + '{"id": {"n": 1}, "prompt": "p", "answer": "a"}\n',
    ),
    "jsonl-not-utf8": config(
        WITH_DATA,
        "error: data.jsonl:4: malformed JSON: str is not valid UTF-8: surrogates not allowed (column 1) (dataset at eval.yaml:3)",
        GOOD_DATA.encode() + b'{"id": "x", "prompt": "\xff", "answer": "a"}\n',
    ),
    "jsonl-missing-field": config(
        WITH_DATA,
        "error: data.jsonl:4: fields 'prompt' and 'answer' missing for probe logic (the row has: id, question)",
        GOOD_DATA + '{"id": "q9", "question": "p"}\n',
    ),
    "jsonl-path-is-a-folder": config(
        BASE + "dataset: {path: data}\n",
        "error: data: is a directory, expected a prompt set file (dataset at eval.yaml:3)",
        files={"data": None},
    ),
    "jsonl-without-path": config(
        BASE + "dataset:\n  format: jsonl\n",
        "error: eval.yaml:4: dataset.format: format jsonl needs 'path'",
    ),
    "csv-bad-column": config(
        BASE + "dataset: {format: csv, path: d.csv, columns: {prompt: query}}\n",
        "error: d.csv:1: column(s) query not in header ['id', 'question', 'answer'] (dataset at eval.yaml:3)",
        "id,question,answer\n1,q,a\n",
        data_name="d.csv",
    ),
    "csv-short-row": config(
        BASE + "dataset: {format: csv, path: d.csv}\n",
        "error: d.csv:3: 2 field(s) where the header has 3 (dataset at eval.yaml:3)",
        "id,prompt,answer\n1,p,a\n2,p\n",
        data_name="d.csv",
    ),
    "csv-not-utf8": config(
        BASE + "dataset: {format: csv, path: d.csv}\n",
        "error: d.csv:3: not UTF-8 text (invalid start byte) (dataset at eval.yaml:3)",
        b"id,prompt,answer\n1,p,a\n2,\xff,a\n",
        data_name="d.csv",
    ),
    "csv-missing-field": config(
        BASE + "dataset: {format: csv, path: d.csv}\n",
        "error: d.csv:2: field 'prompt' missing for probe logic (the row has: id, question, answer)",
        "id,question,answer\n1,p,a\n",
        data_name="d.csv",
    ),
    "csv-duplicate-ids": config(
        BASE + "dataset: {format: csv, path: d.csv}\n",
        "error: d.csv: duplicate example id '1' (dataset at eval.yaml:3)",
        "id,prompt,answer\n1,p,a\n1,p,a\n",
        data_name="d.csv",
    ),
    "inline-items-not-a-list": config(
        BASE + "dataset:\n  format: inline\n  items: 5\n",
        "error: eval.yaml:5: dataset.items: expected a list or nothing (null), got an integer (5)",
    ),
    "inline-item-not-a-mapping": config(
        BASE + "dataset:\n  format: inline\n  items:\n    - {prompt: p, answer: a}\n    - 42\n",
        "error: inline: item 1: expected an object or a string, got int (dataset at eval.yaml:3)",
    ),
    "inline-id-not-a-string": config(
        BASE + "dataset:\n  format: inline\n  items:\n    - {id: [1], prompt: p, answer: a}\n",
        "error: inline: item 0: field 'id' must be a string or an integer (dataset at eval.yaml:3)",
    ),
    "inline-missing-field": config(
        BASE + "dataset:\n  format: inline\n  items:\n    - {prompt: p, answer: a}\n    - {prompt: p}\n",
        "error: eval.yaml:7: field 'answer' missing for probe logic (the row has: prompt)",
    ),
    "inline-duplicate-ids": config(
        BASE + "dataset:\n  format: inline\n  items:\n    - {id: a, prompt: p, answer: a}\n    - {id: a, prompt: p, answer: a}\n",
        "error: inline: duplicate example id 'a' (dataset at eval.yaml:3)",
    ),
    "jsonl-empty": config(WITH_DATA, "error: data.jsonl: the file holds no examples (dataset at eval.yaml:3)", ""),
    "csv-empty": config(
        BASE + "dataset: {format: csv, path: d.csv}\n",
        "error: d.csv: the file holds no examples (dataset at eval.yaml:3)",
        "id,prompt,answer\n", data_name="d.csv",
    ),
    "inline-empty": config(
        BASE + "dataset: {format: inline, items: []}\n",
        "error: inline: 'items' holds no examples (dataset at eval.yaml:3)",
    ),
    "inline-empty-named": config(
        BASE + "dataset: {format: inline, name: smoke, items: []}\n",
        "error: smoke: 'items' holds no examples (dataset at eval.yaml:3)",
    ),
    "dataset-of-the-second-probe-missing": config(
        "models: [@MODEL@]\nprobes:\n  - {type: logic}\n  - type: factuality\n    dataset: {path: nope.jsonl}\n",
        "error: nope.jsonl: prompt set file not found (dataset at eval.yaml:5)",
    ),
    "inline-item-of-the-second-probe-missing-field": config(
        "models: [@MODEL@]\nprobes:\n  - {type: logic}\n  - type: factuality\n    dataset:\n      format: inline\n"
        "      items:\n        - {prompt: p}\n",
        "error: eval.yaml:8: field 'answer' missing for probe factuality (the row has: prompt)",
    ),
    "cluster-field-missing": config(
        BASE + "dataset: {path: data.jsonl, cluster: passage}\n",
        "error: data.jsonl:2: example '1' has no field 'passage' (dataset.cluster); give every row a string or "
        "integer there, or remove dataset.cluster",
        '{"prompt": "p", "answer": "a", "passage": "x"}\n{"prompt": "p", "answer": "a"}\n',
    ),
    "cluster-field-not-a-string": config(
        BASE + "dataset:\n  format: inline\n  cluster: passage\n  items:\n    - {prompt: p, answer: a, passage: x}\n"
        "    - {prompt: p, answer: a, passage: [1]}\n",
        "error: eval.yaml:8: example '1' has list [1] in field 'passage' (dataset.cluster); give every row a string "
        "or integer there, or remove dataset.cluster",
    ),
    "hf-missing-split": config(
        BASE + "dataset: {format: hf, name: qa, split: train}\n",
        "error: hf:qa:train: no split 'train'; the dataset has: test (dataset at eval.yaml:3)",
        setup=hf_folder,
    ),
    "hf-not-a-dataset-folder": config(
        BASE + "dataset: {format: hf, name: qa}\n",
        'error: hf:qa:test: Unknown split "test". Should be one of [\'train\']. (dataset at eval.yaml:3)',
        files={"qa": None, "qa/notes.txt": "hi"},
    ),
    "hf-without-name": config(
        BASE + "dataset: {format: hf}\n",
        "error: eval.yaml:3: dataset.format: format hf needs 'name' (the dataset id)",
    ),
    "hf-missing-field": config(
        BASE + "dataset: {format: hf, name: qa}\n",
        "error: hf:qa:test row 0: fields 'prompt' and 'answer' missing for probe logic "
        "(the row has: id, question, gold)",
        setup=hf_folder,
    ),
    "missing-field-in-a-config-folder": Case(  # the file is named from where the command runs
        "error: project/data.jsonl:4: field 'answer' missing for probe logic (the row has: id, prompt)",
        files={"project/eval.yaml": WITH_DATA, "project/data.jsonl": GOOD_DATA + '{"id": "q9", "prompt": "p"}\n'},
        config="project/eval.yaml",
    ),
    "missing-field-in-a-bundled-set": config(  # named by the package resource, wherever the package is installed
        "model: @MODEL@\nprobe: {type: 'needy_probe:NeedsAHint'}\n",
        "error: insideLLMs:data/logic.jsonl:1: field 'hint' missing for probe needs_a_hint (the row has: id, category, "
        "prompt, answer)",
        files={"site": None, "site/needy_probe.py": (
            "from insideLLMs.probes.logic import LogicProbe\n\n\n"
            "class NeedsAHint(LogicProbe):\n    name = 'needs_a_hint'\n    required_fields = ('prompt', 'hint')\n")},
    ),
    # -- the prompt probe and its scorers (checked on every row before any request) ------------------
    "prompt-template-field-missing": config(
        PROMPT + "    template: 'Q: {{ question }}'\n",
        "error: qa.csv:2: field 'question' missing for probe prompt (template uses it; the row has: id, q, gold)",
        QA_CSV, data_name="qa.csv",
    ),
    "prompt-fields-renamed-column-missing": config(
        PROMPT.replace("qa.csv}", "qa.csv, fields: {question: query}}") + "    template: '{{ question }}'\n",
        "error: qa.csv:1: column(s) query not in header ['id', 'q', 'gold'] (dataset at eval.yaml:2)",
        QA_CSV, data_name="qa.csv",
    ),
    "prompt-template-does-not-parse": config(
        PROMPT + "    template: 'Q: {{ q '\n",
        "error: eval.yaml:6: probe.args.template: template does not parse: unexpected end of template, "
        "expected 'end of print statement'.",
        QA_CSV, data_name="qa.csv",
    ),
    "prompt-template-unsafe": config(
        PROMPT + "    template: '{{ q.__class__ }}'\n",
        "error: qa.csv:2: template does not render: SecurityError: access to attribute '__class__' of 'str' "
        "object is unsafe. (probe prompt)",
        QA_CSV, data_name="qa.csv",
    ),
    "prompt-target-field-missing": config(
        PROMPT + "    template: '{{ q }}'\n    target: '{{ answer }}'\n    scorers: [exact]\n",
        "error: qa.csv:2: field 'answer' missing for probe prompt (target uses it; the row has: id, q, gold)",
        QA_CSV, data_name="qa.csv",
    ),
    "prompt-unknown-scorer": config(
        PROMPT + "    template: '{{ q }}'\n    target: '{{ gold }}'\n    scorers:\n      - exact\n      - {type: fuzzy}\n",
        "error: eval.yaml:10: probe.args.scorers.1.type: unknown scorer type 'fuzzy'; built-in types: choice, exact, "
        "f1, includes, json, judge, numeric, pairwise, regex, or a custom class as 'package.module:ClassName'",
        QA_CSV, data_name="qa.csv",
    ),
    "prompt-bad-regex": config(
        PROMPT + "    template: '{{ q }}'\n    target: '{{ gold }}'\n    scorers:\n      - type: regex\n"
        "        pattern: 'Answer: ([A-Z]+'\n        then: exact\n",
        "error: eval.yaml:10: probe.args.scorers.0.pattern: bad regular expression 'Answer: ([A-Z]+': missing ), "
        "unterminated subpattern at position 8",
        QA_CSV, data_name="qa.csv",
    ),
    "prompt-bad-json-schema": config(
        PROMPT + "    template: '{{ q }}'\n    scorers:\n      - {type: json, schema: {type: objekt}}\n",
        "error: eval.yaml:8: probe.args.scorers.0.schema: not a valid JSON Schema: 'objekt' is not valid under any "
        "of the given schemas (at type)",
        QA_CSV, data_name="qa.csv",
    ),
    "prompt-scorer-without-target": config(
        PROMPT + "    template: '{{ q }}'\n    scorers: [includes]\n",
        "error: eval.yaml:7: probe.args.scorers.0: scorer 'includes' compares with a target: give 'target'",
        QA_CSV, data_name="qa.csv",
    ),
    "prompt-bad-scorer-arg": config(
        PROMPT + "    template: '{{ q }}'\n    target: '{{ gold }}'\n    scorers: [{type: numeric, tolerance: -1}]\n",
        "error: eval.yaml:8: probe.args.scorers.0.tolerance: expected a number >= 0, got -1",
        QA_CSV, data_name="qa.csv",
    ),
    "prompt-numeric-target-not-a-number": config(
        PROMPT + "    template: '{{ q }}'\n    target: '{{ gold }}'\n    scorers: [numeric]\n",
        "error: qa.csv:3: target 'Paris' is not a number (scorer numeric) for probe prompt "
        "(target: '{{ gold }}'; the row has: id, q, gold)",
        QA_CSV, data_name="qa.csv",
    ),
    "prompt-choice-target-not-a-choice": config(
        PROMPT + "    template: '{{ q }}'\n    target: '{{ gold }}'\n    choices: [x, y]\n    scorers: [choice]\n",
        "error: qa.csv:2: target '4' is neither a letter A-B nor the text of a choice (scorer choice) for probe prompt "
        "(target: '{{ gold }}'; the row has: id, q, gold)",
        QA_CSV, data_name="qa.csv",
    ),
    "prompt-duplicate-scorer-names": config(
        PROMPT + "    template: '{{ q }}'\n    target: '{{ gold }}'\n    scorers: [exact, {type: exact, name: exact}]\n",
        "error: eval.yaml:8: probe.args.scorers.1: two scorers are named 'exact'; give this one a distinct 'name'",
        QA_CSV, data_name="qa.csv",
    ),
    "prompt-pass-names-no-scorer": config(
        PROMPT + "    template: '{{ q }}'\n    target: '{{ gold }}'\n    scorers: [exact]\n    pass: f1\n",
        "error: eval.yaml:9: probe.args.pass: expected all, any or a scorer's name (scorers: 'exact'), got 'f1'",
        QA_CSV, data_name="qa.csv",
    ),
    "prompt-unknown-arg": config(
        PROMPT + "    templat: '{{ q }}'\n",
        "error: eval.yaml:6: probe.args.templat: unknown setting 'templat'",
        QA_CSV, data_name="qa.csv",
    ),
    "prompt-few-shot-too-few": config(
        PROMPT + "    template: '{{ q }}'\n    target: '{{ gold }}'\n    few_shot: {path: qa.csv, k: 3}\n",
        "error: qa.csv: holds 2 example(s); few_shot.k is 3 (probe args at eval.yaml:5)",
        QA_CSV, data_name="qa.csv",
    ),
    "prompt-few-shot-field-missing": config(
        PROMPT + "    template: '{{ q }}'\n    target: '{{ gold }}'\n    few_shot: {path: dev.jsonl, k: 1}\n",
        "error: dev.jsonl:1: field 'q' missing for probe prompt (template uses it; the row has: question, gold) "
        "(a few-shot example) (probe args at eval.yaml:5)",
        QA_CSV, data_name="qa.csv", files={"dev.jsonl": '{"question": "1+1?", "gold": "2"}\n'},
    ),
    "prompt-two-probes-one-name": config(
        "models: [@MODEL@]\ndataset: {path: data.jsonl}\nprobes:\n  - {type: prompt}\n"
        "  - {type: prompt, args: {template: 'Q: {{ prompt }}'}}\n",
        "error: eval.yaml:5: two probes are named 'prompt'; give each a distinct 'name' in its args",
        GOOD_DATA,
    ),
    "prompt-template-of-the-second-probe-does-not-parse": config(
        "models: [@MODEL@]\ndataset: {path: data.jsonl}\nprobes:\n  - {type: logic}\n  - type: prompt\n    args:\n"
        "      name: p2\n      template: '{{ q '\n",
        "error: eval.yaml:8: probes.1.args.template: template does not parse: unexpected end of template, "
        "expected 'end of print statement'.",
        GOOD_DATA,
    ),
    "prompt-few-shot-of-the-second-probe-too-few": config(
        "models: [@MODEL@]\ndataset: {path: data.jsonl}\nprobes:\n  - {type: logic}\n  - type: prompt\n    args:\n"
        "      name: p2\n      template: '{{ prompt }}'\n      few_shot: {path: data.jsonl, k: 5}\n",
        "error: data.jsonl: holds 3 example(s); few_shot.k is 5 (probe args at eval.yaml:6)",
        GOOD_DATA,
    ),
    "dataset-fields-and-columns": config(
        BASE + "dataset: {path: data.jsonl, fields: {prompt: q}, columns: {prompt: q}}\n",
        "error: eval.yaml:3: dataset.columns: give 'fields' (example field -> column), not both 'fields' and 'columns'",
        GOOD_DATA,
    ),
    # -- custom types ------------------------------------------------------------------------------
    "custom-probe-module-missing": config(
        "model: @MODEL@\nprobe: {type: 'no_such_module:Probe'}\n",
        "error: eval.yaml:2: cannot import probe type 'no_such_module:Probe': No module named 'no_such_module'",
    ),
    "custom-probe-class-missing": config(
        "model: @MODEL@\nprobe: {type: 'json:NoSuchProbe'}\n",
        "error: eval.yaml:2: cannot import probe type 'json:NoSuchProbe': module 'json' has no attribute 'NoSuchProbe'",
    ),
    "custom-probe-not-a-probe": config(
        "model: @MODEL@\nprobe: {type: 'json:JSONDecoder'}\n",
        "error: eval.yaml:2: probe type 'json:JSONDecoder' is the class json.decoder.JSONDecoder, not a probe: a custom probe type must subclass insideLLMs.probes.base.Probe",
    ),
    "custom-model-not-a-model": config(
        "model: {type: 'json:JSONDecoder'}\nprobe: {type: logic}\n",
        "error: eval.yaml:1: model type 'json:JSONDecoder' is the class json.decoder.JSONDecoder, not a model: a custom model type must subclass insideLLMs.models.base.Model",
    ),
    "custom-model-is-a-probe": config(
        "model: {type: 'insideLLMs.probes:Probe'}\nprobe: {type: logic}\n",
        "error: eval.yaml:1: model type 'insideLLMs.probes:Probe' is the class insideLLMs.probes.base.Probe, not a model: a custom model type must subclass insideLLMs.models.base.Model",
    ),
    "custom-model-not-a-class": config(
        "model: {type: 'json:dumps'}\nprobe: {type: logic}\n",
        "error: eval.yaml:1: model type 'json:dumps' is the function json.dumps, not a model: a custom model type must "
        "subclass insideLLMs.models.base.Model",
    ),
    "custom-model-module-broken": config(
        "model: {type: 'broken_plugin:Model'}\nprobe: {type: logic}\n",
        "error: eval.yaml:1: cannot import model type 'broken_plugin:Model': SyntaxError: invalid syntax (broken_plugin.py, line 1)",
        files={"site": None, "site/broken_plugin.py": "def oops(:\n"},
    ),
    # -- tracking settings -------------------------------------------------------------------------
    "bad-tracking-backend": config(
        "model: @MODEL@\nprobe: {type: logic}\ntracking:\n  backend: [local, neptune]\n",
        "error: eval.yaml:4: tracking.backend: unknown tracking backend 'neptune'; choose from: local, wandb, mlflow, tensorboard",
    ),
    "tracking-no-backend": config(
        BASE + "tracking:\n  backend: []\n",
        "error: eval.yaml:4: tracking.backend: give at least one backend",
    ),
    "tracking-uri-typo": config(
        BASE + "tracking:\n  backend: mlflow\n  tracking_uri: 'htp:/127.0.0.1:5000'\n",
        "error: eval.yaml:5: tracking.tracking_uri: 'htp:/127.0.0.1:5000': unsupported scheme 'htp'; give http(s)://host:port, a database URI (sqlite:///mlflow.db, postgresql://...) or a local folder",
    ),
    "tracking-uri-with-spaces": config(
        BASE + "tracking:\n  backend: mlflow\n  tracking_uri: 'my mlflow server'\n",
        "error: eval.yaml:5: tracking.tracking_uri: 'my mlflow server' is not a URI or a folder path; give http(s)://host:port, a database URI (sqlite:///mlflow.db, postgresql://...) or a local folder",
    ),
    "tracking-uri-not-a-string": config(
        BASE + "tracking:\n  backend: mlflow\n  tracking_uri: 5000\n",
        "error: eval.yaml:5: tracking.tracking_uri: expected a string or nothing (null), got an integer (5000)",
    ),
    "tracking-bad-mode": config(
        BASE + "tracking:\n  backend: wandb\n  mode: sometimes\n",
        "error: eval.yaml:5: tracking.mode: invalid value 'sometimes'",
    ),
    "tracking-negative-flush-timeout": config(
        BASE + "tracking:\n  flush_timeout_s: -1\n",
        "error: eval.yaml:4: tracking.flush_timeout_s: expected a number >= 0.0, got -1",
    ),
    "tracking-enabled-not-a-bool": config(
        BASE + "tracking:\n  enabled: maybe\n",
        "error: eval.yaml:4: tracking.enabled: expected true or false, got a string ('maybe')",
    ),
    "tracking-unknown-key": config(
        BASE + "tracking:\n  backend: mlflow\n  experiment: e\n",
        "error: eval.yaml:5: tracking.experiment: unknown setting 'experiment'",
    ),
    "tracking-tag-not-a-string": config(
        BASE + "tracking:\n  tags: {team: 1}\n",
        "error: eval.yaml:4: tracking.tags: expected a string, got an integer",
    ),
    "run-harness-config": command(
        "run", "eval.yaml",
        expected="error: eval.yaml: has 'models'/'probes' lists; run it with: insidellms harness eval.yaml",
        files={"eval.yaml": "models: [@MODEL@]\nprobe: {type: logic}\n"},
    ),
    "run-unknown-track": command(
        "run", "eval.yaml", "--track", "neptune",
        expected="error: --track neptune: backends are local, wandb, mlflow, tensorboard",
        files={"eval.yaml": BASE},
    ),
    "run-epochs-zero": command(
        "run", "eval.yaml", "--epochs", "0",
        expected="error: Invalid value for '--epochs': 0 is not in the range x>=1. (see: insidellms run --help)",
        files={"eval.yaml": BASE},
    ),
    "run-max-examples-zero": command(
        "run", "eval.yaml", "--max-examples", "0",
        expected="error: Invalid value for '--max-examples': 0 is not in the range x>=1. (see: insidellms run --help)",
        files={"eval.yaml": BASE},
    ),
    "ray-address-with-the-local-executor": command(
        "harness", "eval.yaml", "--executor", "local", "--ray-address", "10.0.0.1:6379",
        expected="error: --ray-address applies to the ray executor: drop it or pass --executor ray",
        files={"eval.yaml": BASE},
    ),
    "ray-address-not-host-port": command(
        "harness", "eval.yaml", "--ray-address", "headnode",
        expected="error: Ray cluster address 'headnode': expected HOST:PORT, auto or local",
        files={"eval.yaml": BASE},
    ),
    "harness-concurrency-not-a-number": command(
        "harness", "eval.yaml", "--concurrency", "x",
        expected="error: Invalid value for '--concurrency': 'x' is not a valid integer range. (see: insidellms harness --help)",
        files={"eval.yaml": BASE},
    ),
    "harness-bad-config": command(
        "harness", "eval.yaml",
        expected="error: eval.yaml:2: unknown probe type 'vibes'; built-in types: bias, code, factuality, instruction_following, jailbreak, logic, prompt, or a custom class as 'package.module:ClassName'",
        files={"eval.yaml": "models: [@MODEL@]\nprobes: [{type: vibes}]\n"},
    ),
    "quicktest-arg-without-value": command(
        "quicktest", "hi", "--arg", "model_name",
        expected="error: --arg 'model_name': expected KEY=VALUE",
    ),
    "quicktest-unknown-model": command(
        "quicktest", "hi", "--model", "gpt5000",
        expected="error: unknown model type 'gpt5000'; built-in types: anthropic, dummy, llamacpp, openai, or a custom class as 'package.module:ClassName'",
    ),
    "quicktest-not-a-model": command(
        "quicktest", "hi", "--model", "json:JSONDecoder",
        expected="error: model type 'json:JSONDecoder' is the class json.decoder.JSONDecoder, not a model: a custom model type must subclass insideLLMs.models.base.Model",
    ),
    "quicktest-bad-arg": command(
        "quicktest", "hi", "--model", "openai", "--arg", "base_url=@URL@", "--arg", "api_key=k", "--arg", "temprature=2",
        expected="error: --arg: bad argument for model 'openai': OpenAIModel.__init__() got an unexpected keyword argument 'temprature'",
    ),
    "quicktest-max-tokens-zero": command(
        "quicktest", "hi", "--max-tokens", "0",
        expected="error: Invalid value for '--max-tokens': 0 is not in the range x>=1. (see: insidellms quicktest --help)",
    ),
    "diff-bad-tolerance": command(
        "diff", "base", "cand", "--tolerance", "score=lots",
        expected="error: --tolerance 'score=lots': expected NAME=NUMBER (e.g. score=0.02) or NUMBER for every score (see: insidellms diff --help)",
        setup=lambda p: (finished_run(p / "base"), finished_run(p / "cand")),
    ),
    "diff-bad-alpha": command(
        "diff", "base", "cand", "--alpha", "2",
        expected="error: Invalid value for '--alpha': 2.0 is not in the range 0<x<1. (see: insidellms diff --help)",
        setup=lambda p: (finished_run(p / "base"), finished_run(p / "cand")),
    ),
    "report-of-a-folder": command(
        "report", "notes",
        expected="error: notes: not a run directory (no records.jsonl)",
        files={"notes": None, "notes/a.txt": "hi"},
    ),
    "report-of-a-file": command(
        "report", "notes.txt",
        expected="error: notes.txt: no such run directory",
        files={"notes.txt": "hi"},
    ),
    "report-malformed-records": command(
        "report", "base",
        expected="error: base/records.jsonl:3: malformed JSON: unexpected end of data (column 29)",
        setup=lambda p: _break_records(finished_run(p / "base")),
    ),
    "tracking-show-unknown-run": command(
        "tracking", "show", "nope",
        expected="error: no run 'nope' in tracking_logs; see: insidellms tracking list tracking_logs",
        setup=tracked_run,
    ),
    "tracking-sync-missing-path": command(
        "tracking", "sync", "nope",
        expected="error: Invalid value for '[PATH]': Path 'nope' does not exist. (see: insidellms tracking sync --help)",
    ),
    "tracking-sync-no-runs": command(
        "tracking", "sync", "empty",
        expected="error: no tracked runs in empty",
        files={"empty": None},
    ),
    "tracking-sync-unknown-backend": command(
        "tracking", "sync", "--backend", "neptune",
        expected="error: unknown tracking backend 'neptune'; choose from: local, wandb, mlflow, tensorboard (or a custom sink as 'package.module:SinkClass')",
        setup=tracked_run,
    ),
    "tracking-push-unknown-backend": command(
        "tracking", "push", "done", "--backend", "neptune",
        expected="error: unknown tracking backend 'neptune'; choose from: local, wandb, mlflow, tensorboard (or a custom sink as 'package.module:SinkClass')",
        setup=tracked_run,
    ),
    "tracking-push-not-a-run": command(
        "tracking", "push", "notes", "--backend", "mlflow",
        expected="error: notes: not a run directory (no records.jsonl)",
        files={"notes": None, "notes/a.txt": "hi"},
    ),
    "tracking-push-bad-uri": command(
        "tracking", "push", "done", "--backend", "mlflow", "--tracking-uri", "not a uri",
        expected="error: Invalid value for '--tracking-uri': 'not a uri' is not a URI or a folder path; give http(s)://host:port, a database URI (sqlite:///mlflow.db, postgresql://...) or a local folder (see: insidellms tracking push --help)",
        setup=tracked_run,
    ),
    "tracking-compare-unknown-run": command(
        "tracking", "compare", "nope",
        expected="error: no run 'nope' in tracking_logs; see: insidellms tracking list tracking_logs",
        setup=tracked_run,
    ),
    # -- run directories ---------------------------------------------------------------------------
    "rundir-holds-a-finished-run": command(
        "run", "eval.yaml", "--run-dir", "out",
        expected="error: out: already holds a finished run; pass --overwrite to replace it",
        files={"eval.yaml": WITH_DATA, "data.jsonl": GOOD_DATA},
        setup=lambda p: finished_run(p / "out"),
    ),
    "rundir-holds-an-interrupted-run": command(
        "run", "eval.yaml", "--run-dir", "out",
        expected="error: out: already holds an interrupted run; pass --overwrite to replace it, or --resume to continue it",
        files={"eval.yaml": WITH_DATA, "data.jsonl": GOOD_DATA},
        setup=lambda p: interrupted_run(p / "out"),
    ),
    "rundir-foreign-folder": command(
        "run", "eval.yaml", "--run-dir", "out",
        expected="error: out: exists and is not an insideLLMs run directory; choose another --run-dir",
        files={"eval.yaml": WITH_DATA, "data.jsonl": GOOD_DATA, "out": None,
        "out/thesis.tex": "my thesis"},
    ),
    "rundir-foreign-folder-resume": command(
        "run", "eval.yaml", "--run-dir", "out", "--resume",
        expected="error: out: exists and is not an insideLLMs run directory; choose another --run-dir",
        files={"eval.yaml": WITH_DATA, "data.jsonl": GOOD_DATA, "out": None,
        "out/thesis.tex": "my thesis"},
    ),
    "rundir-resume-of-another-config": command(
        "run", "eval.yaml", "--run-dir", "out", "--resume",
        expected=re.compile(r"error: out: holds run run-before, but this config gives run [0-9a-f]{16} \(model, "
                            r"probe, data or generation settings changed\); pass --overwrite to start over"),
        files={"eval.yaml": WITH_DATA, "data.jsonl": GOOD_DATA},
        setup=lambda p: interrupted_run(p / "out"),
    ),
    "rundir-is-a-file": command(
        "run", "eval.yaml", "--run-dir", "out",
        expected="error: Invalid value for '--run-dir': Directory 'out' is a file. (see: insidellms run --help)",
        files={"eval.yaml": WITH_DATA, "data.jsonl": GOOD_DATA, "out": "a file"},
    ),
    "rundir-in-config-is-a-file": command(
        "run", "eval.yaml",
        expected="error: out: cannot prepare the run directory (Not a directory); choose another --run-dir or fix its permissions",
        files={"eval.yaml": WITH_DATA + "run_dir: out\n", "data.jsonl": GOOD_DATA,
        "out": "a file"},
    ),
    "rundir-parent-is-a-file": command(
        "run", "eval.yaml", "--run-dir", "notes.txt/out",
        expected="error: notes.txt/out: cannot prepare the run directory (Not a directory); choose another --run-dir or fix its permissions",
        files={"eval.yaml": WITH_DATA, "data.jsonl": GOOD_DATA, "notes.txt": "hi"},
    ),
    # -- diff inputs -------------------------------------------------------------------------------
    "diff-baseline-missing": command(
        "diff", "nope", "cand",
        expected="error: baseline nope: no such directory",
        setup=lambda p: finished_run(p / "cand"),
    ),
    "diff-candidate-missing": command(
        "diff", "base", "nope",
        expected="error: candidate nope: no such directory",
        setup=lambda p: finished_run(p / "base"),
    ),
    "diff-not-a-run-dir": command(
        "diff", "base", "notes",
        expected="error: candidate notes: not a run directory (no records.jsonl)",
        files={"notes": None, "notes/a.txt": "hi"},
        setup=lambda p: finished_run(p / "base"),
    ),
    "diff-a-file": command(
        "diff", "base", "notes.txt",
        expected="error: candidate notes.txt: not a directory (give a run directory)",
        files={"notes.txt": "hi"},
        setup=lambda p: finished_run(p / "base"),
    ),
    "diff-malformed-records-line": command(
        "diff", "base", "cand",
        expected="error: cand/records.jsonl:3: malformed JSON: unexpected end of data (column 29)",
        setup=lambda p: (finished_run(p / "base"), _break_records(finished_run(p / "cand"))),
    ),
    "diff-record-without-key": command(
        "diff", "base", "cand",
        expected="error: cand/records.jsonl:3: not a record (it needs model.id, probe.id and example_id)",
        setup=lambda p: (finished_run(p / "base"), _keyless_record(finished_run(p / "cand"))),
    ),
    "diff-different-epochs": command(
        "diff", "base", "cand",
        expected="error: cand: has 1 epoch(s) per example, the baseline base has 3; compare runs with the same "
                 "runner.epochs",
        setup=lambda p: (epochs_run(p / "base", 3), finished_run(p / "cand")),
    ),
    "diff-significant-regression-with-epochs": command(
        "diff", "base", "cand", "--fail-on-significant-regression",
        expected="error: --fail-on-significant-regression: McNemar's test needs independent pairs, and these runs "
                 "ask each example 3 times; gate with --fail-on-regression-ci pass_rate[:TOL] (its interval is "
                 "clustered by example)",
        setup=lambda p: (epochs_run(p / "base", 3), epochs_run(p / "cand", 3)),
    ),
    "diff-same-dir-twice": command(
        "diff", "base", "base", "--fail-on-regressions",
        expected="error: base: the baseline and the candidate are the same run directory; give the run to compare against the baseline",
        setup=lambda p: finished_run(p / "base"),
    ),
    "diff-output-folder-missing": command(
        "diff", "base", "cand", "-o", "nodir/diff.txt",
        expected="error: nodir/diff.txt: cannot write (No such file or directory)",
        setup=lambda p: (finished_run(p / "base"), finished_run(p / "cand")),
    ),
    "diff-accept-not-a-run": command(
        "diff", "base", "notes", "--accept",
        expected="error: candidate notes: not a run directory (no records.jsonl)",
        files={"notes": None, "notes/a.txt": "hi"},
        setup=lambda p: finished_run(p / "base"),
    ),
    "diff-gate-matched-nothing": command(
        "diff", "base", "cand", "--fail-on-regressions",
        code=2,
        expected="error: gate failed: no example matched: the baseline has 2 and the candidate 2, none with the same key (different probes or models? see --match-on); the gate compared nothing",
        setup=lambda p: (finished_run(p / "base"), finished_run(p / "cand", probe="factuality")),
    ),
    "diff-gate-incomplete-candidate": command(
        "diff", "base", "cand", "--fail-on-regressions",
        code=2,
        expected="error: gate failed: the candidate cand is an incomplete run (interrupted: finish it with --resume) (--allow-missing to gate on the examples both runs have); the candidate lacks 1 of the baseline's 2 examples (--allow-missing to gate on the examples both runs have)",
        setup=lambda p: (finished_run(p / "base"), interrupted_run(p / "cand")),
    ),
    # -- shards and merge --------------------------------------------------------------------------
    "run-shard-not-a-fraction": command(
        "run", "eval.yaml", "--shard", "2",
        expected="error: --shard 2: expected I/N, the 0-based shard I of N shards (e.g. --shard 0/4)",
        files={"eval.yaml": WITH_DATA, "data.jsonl": GOOD_DATA},
    ),
    "run-shard-out-of-range": command(
        "run", "eval.yaml", "--shard", "4/4",
        expected="error: --shard 4/4: I must be 0 to 3 (shards are numbered from 0)",
        files={"eval.yaml": WITH_DATA, "data.jsonl": GOOD_DATA},
    ),
    "harness-shard-of-zero": command(
        "harness", "eval.yaml", "--shard", "0/0",
        expected="error: --shard 0/0: N must be at least 1",
        files={"eval.yaml": "models: [@MODEL@]\nprobes: [{type: logic}]\ndataset: {path: data.jsonl}\n",
               "data.jsonl": GOOD_DATA},
    ),
    "merge-different-configs": command(
        "merge", "a/part-0", "b/part-1", "-o", "merged",
        expected=re.compile(r"error: b/part-1: is shard of run [0-9a-f]{16}, but a/part-0 of run [0-9a-f]{16}; "
                            r"merge only the shards of one run \(same config, data and models\)"),
        setup=lambda p: (shard_dirs(_shard_project(p / "a"), p / "a", 2, only=[0]),
                         shard_dirs(_shard_project(p / "b", n=5), p / "b", 2, only=[1])),
    ),
    "merge-same-run-other-config": command(
        "merge", "a/part-0", "b/part-1", "-o", "merged",
        expected="error: b/part-1: is shard of config other, but a/part-0 of config same; merge only the shards of one "
                 "run (same config, data and models)",
        setup=lambda p: _config_hash_differs(shard_dirs(_shard_project(p / "a"), p / "a", 2, only=[0])[0],
                                             shard_dirs(_shard_project(p / "b"), p / "b", 2, only=[1])[0]),
    ),
    "merge-overlapping-shards": command(
        "merge", "s/part-0", "s/part-1", "t/part-1", "-o", "merged",
        expected="error: t/part-1: shard 1/2 is also in s/part-1; give each shard once",
        setup=lambda p: (shard_dirs(_shard_project(p / "s"), p / "s", 2),
                         shard_dirs(_shard_project(p / "t"), p / "t", 2, only=[1])),
    ),
    "merge-missing-shard": command(
        "merge", "s/part-0", "s/part-2", "-o", "merged",
        expected="error: merge: shard 1/3 missing (2 of 3 given); run it with --shard 1/3, then merge every shard",
        setup=lambda p: shard_dirs(_shard_project(p / "s"), p / "s", 3, only=[0, 2]),
    ),
    "merge-interrupted-shard": command(
        "merge", "s/part-0", "s/part-1", "-o", "merged",
        expected="error: s/part-1: is an interrupted shard; finish it with --resume (and the same --shard), then merge",
        setup=lambda p: _interrupt(shard_dirs(_shard_project(p / "s"), p / "s", 2)[1]),
    ),
    "merge-not-a-shard": command(
        "merge", "s/part-0", "s/whole", "-o", "merged",
        expected="error: s/whole: is not a shard (its manifest names none); merge the run directories of insidellms "
                 "run/harness --shard I/N",
        setup=lambda p: (shard_dirs(_shard_project(p / "s"), p / "s", 2, only=[0]),
                         run_in_process(p / "s" / "eval.yaml", p / "s" / "whole")),
    ),
    "merge-output-exists": command(
        "merge", "s/part-0", "s/part-1", "-o", "merged",
        expected="error: merged: already exists; pass --overwrite to replace it, or choose another -o",
        files={"merged": None, "merged/notes.txt": "mine"},
        setup=lambda p: shard_dirs(_shard_project(p / "s"), p / "s", 2),
    ),
    "merge-overwrite-a-foreign-folder": command(
        "merge", "s/part-0", "s/part-1", "-o", "notes", "--overwrite",
        expected="error: notes: exists and is not an insideLLMs run directory; choose another -o",
        files={"notes": None, "notes/thesis.tex": "my thesis"},
        setup=lambda p: shard_dirs(_shard_project(p / "s"), p / "s", 2),
    ),
    "merge-no-parts": command(
        "merge", "-o", "merged",
        expected="error: merge: give the partial run directories to merge (insidellms merge PART... -o RUN_DIR)",
    ),
}


def _shard_project(root: Path, n: int = 6) -> Path:
    """A dummy-model config whose shards the merge cases start from."""
    root.mkdir(parents=True, exist_ok=True)
    write_jsonl(root / "data.jsonl", qa_rows(n))
    (root / "eval.yaml").write_text("model: {type: dummy}\nprobe: {type: factuality}\ndataset: {path: data.jsonl}\n",
                                    encoding="utf-8")
    return root / "eval.yaml"


def _config_hash_differs(*parts: Path) -> None:
    """Two shards of one run id whose configs differ otherwise (what an edited manifest would say)."""
    import orjson

    for part, value in zip(parts, ("same", "other")):
        manifest = orjson.loads((part / "manifest.json").read_bytes())
        manifest["config_hash"] = value
        (part / "manifest.json").write_bytes(orjson.dumps(manifest))


def _interrupt(part: Path) -> None:
    """What a shard killed mid-run leaves: the .incomplete mark and no end files."""
    for name in ("manifest.json", "summary.json", "config.resolved.yaml", "report.html"):
        (part / name).unlink(missing_ok=True)
    run_id = part.parent.name
    (part / ".incomplete").write_text(f'{{"run_id":"{run_id}"}}\n')


def _break_records(run: Path) -> None:
    with open(run / "records.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"example_id": "q9", "broken\n')


def _keyless_record(run: Path) -> None:
    with open(run / "records.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"output": "4"}\n')


CONFIG_CASES = sorted(name for name, case in CASES.items() if not case.args)
COMMAND_CASES = sorted(name for name, case in CASES.items() if case.args)


def _prepare(tmp_path: Path, case: Case, server: Any) -> tuple[dict[str, str], Callable[[str], str]]:
    """Write the case's files (after its set-up), and return the environment and the placeholder filler."""

    def fill(text: str) -> str:
        return text.replace("@MODEL@", MODEL).replace("@URL@", server.openai_base_url)

    if case.setup is not None:
        case.setup(tmp_path)
    for name, content in case.files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(fill(content), encoding="utf-8")
    env = {
        "PYTHONPATH": os.pathsep.join(p for p in (str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")) if p),
        "PYTHONDONTWRITEBYTECODE": "1",  # a custom type's module must not count as "something written"
        "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",  # a Hugging Face case never reaches the network,
        "HF_DATASETS_CACHE": str(tmp_path.parent / f"{tmp_path.name}-hf-cache"),  # nor shares a cache with another
        **case.env,
    }
    return env, fill


def _snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file's bytes and every folder under ``root``: what a refused command must leave as it was."""
    return {p.relative_to(root).as_posix(): (None if p.is_dir() else p.read_bytes()) for p in sorted(root.rglob("*"))}


def _assert_refused(result: Any, case: Case, server: Any, tmp_path: Path, before: dict[str, bytes | None]) -> str:
    """Exit code, one ``error:`` line as expected, no traceback, no request, nothing written; returns the line."""
    shown = f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.returncode == case.code, shown
    assert "Traceback" not in result.stderr, shown
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), shown
    expected = case.expected
    if isinstance(expected, re.Pattern):
        assert expected.fullmatch(lines[0]), shown
    else:
        assert lines[0] == expected.replace("@URL@", server.openai_base_url), shown
    assert server.stats.requests == 0, "the model was called"
    assert _snapshot(tmp_path) == before, "something was written, changed or removed"
    return lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("case", CONFIG_CASES)
def test_a_config_mistake_is_one_line_in_run_and_validate(tmp_path: Path, fake_llm_server: Any, case: str) -> None:
    spec = CASES[case]
    env, _ = _prepare(tmp_path, spec, fake_llm_server)
    before = _snapshot(tmp_path)
    text = (tmp_path / spec.config).read_text(errors="replace") if (tmp_path / spec.config).is_file() else ""
    said = {}
    for args in (_run_args(spec.config, text), ("validate", spec.config)):
        result = run_cli(*args, cwd=tmp_path, env=env)
        said[args[0]] = _assert_refused(result, spec, fake_llm_server, tmp_path, before)
    assert len(set(said.values())) == 1, said


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_a_config_mistake_is_the_same_line_in_process(
    tmp_path: Path, fake_llm_server: Any, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """``validate`` in this process says each config mistake's line as the command does, and writes nothing
    (the fast twin of the table above, which starts two processes a case)."""
    spec = CASES[case]
    env, _ = _prepare(tmp_path, spec, fake_llm_server)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    for name, value in env.items():
        if name != "PYTHONPATH":
            monkeypatch.setenv(name, value)
    before = _snapshot(tmp_path)
    result = CliRunner().invoke(insidellms, ["validate", spec.config])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    shown = SimpleNamespace(returncode=result.exit_code, stdout=result.stdout, stderr=result.stderr)
    _assert_refused(shown, spec, fake_llm_server, tmp_path, before)


def _run_args(config: str, text: str) -> tuple[str, ...]:
    """``run`` (``harness`` for a grid), into ``out``, tracked: a refused run must leave no tracking files either."""
    command = "harness" if re.search(r"^(models|probes):", text, re.MULTILINE) else "run"
    track = () if "tracking:" in text else ("--track", "local")
    return (command, config, "--run-dir", "out", *track)


@pytest.mark.parametrize("case", COMMAND_CASES)
def test_a_command_line_mistake_is_one_line(tmp_path: Path, fake_llm_server: Any, case: str) -> None:
    spec = CASES[case]
    env, fill = _prepare(tmp_path, spec, fake_llm_server)
    before = _snapshot(tmp_path)
    result = run_cli(*(fill(a) for a in spec.args), cwd=tmp_path, env=env)
    _assert_refused(result, spec, fake_llm_server, tmp_path, before)


def test_the_table_is_broad() -> None:
    """At least 50 mistakes, across every area a user can get wrong."""
    assert len(CASES) >= 50
    commands = {case.args[0] for case in CASES.values() if case.args}
    assert {"run", "harness", "diff", "report", "tracking", "quicktest", "merge"} <= commands


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
