"""From a config to the run it describes (``build_harness``): the models and probes, each probe's prompt set read as
the config says, the run settings, and the command line's overrides. (Mistakes: tests/cli/test_bad_input.py.)"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from insideLLMs.config import ConfigError, load_config
from insideLLMs.errors import UserError
from insideLLMs.models import PriceTable
from insideLLMs.run import RayExecutor, build_harness, self_grading
from insideLLMs.run._runner import Harness
from support.cli import write_jsonl

ROWS = [{"id": f"q{i}", "prompt": f"{i}+{i}?", "answer": str(2 * i)} for i in range(3)]


def _harness(tmp_path: Path, text: str, **options: Any) -> Harness:
    (tmp_path / "eval.yaml").write_text(text, encoding="utf-8")
    return build_harness(load_config(tmp_path / "eval.yaml"), **options)


def _ids(harness: Harness) -> list[tuple[str, str, list[str]]]:
    return [(c.model.model_id, c.probe.name, [e.id for e in c.prompt_set]) for c in harness.cells]


def test_every_model_meets_every_probe_with_its_prompt_set(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "data.jsonl", ROWS)
    write_jsonl(tmp_path / "other.jsonl", [{"id": "x", "prompt": "p", "answer": "a"}])
    harness = _harness(tmp_path, (
        "models:\n  - {type: dummy, args: {model_name: a}}\n  - {type: dummy, args: {model_name: b}}\n"
        "dataset: {path: data.jsonl}\n"
        "probes:\n  - {type: logic}\n  - {type: factuality, dataset: {path: other.jsonl}}\n"))
    assert _ids(harness) == [("a", "logic", ["q0", "q1", "q2"]), ("a", "factuality", ["x"]),
                             ("b", "logic", ["q0", "q1", "q2"]), ("b", "factuality", ["x"])]


def test_a_probe_without_a_dataset_runs_its_bundled_set(tmp_path: Path) -> None:
    harness = _harness(tmp_path, "model: {type: dummy}\nprobe: {type: logic}\n", max_examples=2)
    [cell] = harness.cells
    assert (cell.prompt_set.source, len(cell.prompt_set)) == ("insideLLMs:data/logic.jsonl", 2)


def test_the_run_settings_come_from_the_config(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "data.jsonl", ROWS)
    text = ("name: nightly\nmodel: {type: dummy, args: {model_name: m}}\nprobe: {type: logic}\n"
            "dataset: {path: data.jsonl}\ngeneration: {temperature: 0, max_tokens: 8}\n"
            "runner:\n  concurrency: 3\n  max_retries: 1\n  timeout_s: 7.5\n  cache_dir: answers\n  max_examples: 2\n"
            "  max_cost_usd: 2\n  epochs: 3\n  reducer: max\npricing:\n  m: {input: 1, output: 2}\n")
    harness = _harness(tmp_path, text, run_dir=tmp_path / "run")
    settings = harness.settings
    loaded = load_config(tmp_path / "eval.yaml")
    assert (settings.concurrency, settings.max_retries, settings.timeout_s) == (3, 1, 7.5)
    assert settings.generation == {"temperature": 0, "max_tokens": 8}
    assert (settings.name, settings.config, settings.run_dir) == ("nightly", loaded.resolved, tmp_path / "run")
    assert settings.cache_dir == Path("answers")  # relative to where the command runs
    assert (settings.max_cost_usd, settings.epochs, settings.reducer, settings.executor) == (2.0, 3, "max", None)
    assert settings.prices is not None
    assert settings.prices.overrides == PriceTable.load({"m": {"input": 1, "output": 2}}).overrides
    assert [len(c.prompt_set) for c in harness.cells] == [2]


def test_the_command_line_overrides_the_config(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "data.jsonl", ROWS)
    text = ("model: {type: dummy, args: {model_name: m}}\nprobe: {type: logic}\ndataset: {path: data.jsonl}\n"
            "runner: {concurrency: 3, max_examples: 2, epochs: 2, max_cost_usd: 2}\n"
            "pricing: {m: {input: 1, output: 2}}\n")
    harness = _harness(tmp_path, text, concurrency=5, max_examples=1, epochs=4, max_cost_usd=9.0)
    assert (harness.settings.concurrency, harness.settings.epochs, harness.settings.max_cost_usd) == (5, 4, 9.0)
    assert [len(c.prompt_set) for c in harness.cells] == [1]


def test_defaults_without_runner_settings(tmp_path: Path) -> None:
    settings = _harness(tmp_path, "model: {type: dummy}\nprobe: {type: logic}\n").settings
    assert (settings.concurrency, settings.max_retries, settings.timeout_s, settings.epochs) == (16, 4, 60.0, 1)
    assert (settings.cache_dir, settings.max_cost_usd, settings.reducer, settings.generation) == (None, None, None, {})
    assert settings.prices is not None and settings.prices.overrides == {}


# -- prompt sets as the dataset block says -------------------------------------------------------------------

def test_jsonl_and_csv_with_fields_ids_and_names(tmp_path: Path) -> None:
    (tmp_path / "sets").mkdir()
    write_jsonl(tmp_path / "sets/qa.jsonl", [{"key": "k1", "question": "1+1?", "gold": "2"}])
    (tmp_path / "sets/qa.csv").write_text("key,question,gold\nc1,2+2?,4\n", encoding="utf-8")
    harness = _harness(tmp_path, (
        "model: {type: dummy}\nprobes:\n"
        "  - type: logic\n    dataset: {path: sets/qa.jsonl, id_field: key, name: mine,\n"
        "              fields: {prompt: question, answer: gold}}\n"
        "  - type: factuality\n    dataset: {format: csv, path: sets/qa.csv, id_field: key, name: sheet,\n"
        "              columns: {prompt: question, answer: gold}}\n"
        "  - type: jailbreak\n    dataset: {format: csv, path: sets/qa.csv, fields: {prompt: question}}\n"))
    jsonl, csv, plain = (c.prompt_set for c in harness.cells)
    assert (jsonl.name, jsonl.source, [(e.id, e.data) for e in jsonl]) == (
        "mine", "sets/qa.jsonl", [("k1", {"key": "k1", "prompt": "1+1?", "answer": "2"})])
    assert (csv.name, csv.source, [(e.id, e.data) for e in csv]) == (
        "sheet", "sets/qa.csv", [("c1", {"key": "c1", "prompt": "2+2?", "answer": "4"})])
    assert (plain.name, [(e.id, e.data) for e in plain]) == ("qa", [("0", {"key": "c1", "prompt": "2+2?", "gold": "4"})])


def test_inline_items_with_fields_and_ids(tmp_path: Path) -> None:
    harness = _harness(tmp_path, (
        "model: {type: dummy}\nprobes:\n  - type: logic\n    dataset:\n      format: inline\n      id_field: n\n"
        "      fields: {prompt: q}\n      items: [{n: a, q: '1+1?', answer: '2'}]\n"
        "  - type: factuality\n    dataset: {format: inline, name: smoke, items: [{prompt: p, answer: a}]}\n"))
    first, second = (c.prompt_set for c in harness.cells)
    assert (first.name, [(e.id, e.data) for e in first]) == (
        "inline", [("a", {"n": "a", "prompt": "1+1?", "answer": "2"})])
    assert (second.name, [e.data for e in second]) == ("smoke", [{"prompt": "p", "answer": "a"}])


def test_a_saved_hugging_face_dataset_with_split_limit_and_fields(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets", reason="the hf extra is not installed")
    rows = [{"qid": f"r{i}", "question": f"{i}+{i}?", "gold": str(2 * i)} for i in range(3)]
    datasets.DatasetDict({"dev": datasets.Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "sets/qa"))
    harness = _harness(tmp_path, (
        "model: {type: dummy}\nprobe: {type: logic}\n"
        "dataset: {format: hf, name: sets/qa, split: dev, limit: 2, id_field: qid,\n"
        "          fields: {prompt: question, answer: gold}}\n"))
    [cell] = harness.cells
    assert (cell.prompt_set.name, cell.prompt_set.source) == ("qa", "hf:sets/qa:dev")
    assert [(e.id, e.data) for e in cell.prompt_set] == [
        ("r0", {"qid": "r0", "prompt": "0+0?", "answer": "0"}), ("r1", {"qid": "r1", "prompt": "1+1?", "answer": "2"})]


def test_a_subset_of_a_hugging_face_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets", reason="the hf extra is not installed")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")  # read when a set is built
    folder = tmp_path / "sets" / "qa"
    folder.mkdir(parents=True)
    for subset in ("easy", "hard"):
        (folder / f"{subset}.csv").write_text(f"id,prompt,answer\n{subset}0,q,a\n", encoding="utf-8")
    (folder / "README.md").write_text(
        "---\nconfigs:\n"
        "- config_name: easy\n  data_files:\n  - split: test\n    path: easy.csv\n"
        "- config_name: hard\n  data_files:\n  - split: test\n    path: hard.csv\n---\n", encoding="utf-8")
    harness = _harness(tmp_path, "model: {type: dummy}\nprobe: {type: logic}\n"
                                 "dataset: {format: hf, name: sets/qa, subset: hard}\n")
    [cell] = harness.cells
    assert (cell.prompt_set.source, [e.id for e in cell.prompt_set]) == ("hf:sets/qa/hard:test", ["hard0"])


def test_few_shot_examples_are_read_with_the_datasets_fields(tmp_path: Path) -> None:
    (tmp_path / "qa.csv").write_text("id,q,gold\n1,2+2?,4\n", encoding="utf-8")
    write_jsonl(tmp_path / "dev.jsonl", [{"q": "1+1?", "gold": "2"}])
    harness = _harness(tmp_path, (
        "model: {type: dummy}\ndataset: {format: csv, path: qa.csv, fields: {question: q, answer: gold}}\n"
        "probe:\n  type: prompt\n  args:\n    template: 'Q: {{ question }}'\n    target: '{{ answer }}'\n"
        "    few_shot: {path: dev.jsonl, k: 1}\n"))
    [cell] = harness.cells
    assert cell.probe.build_all(cell.prompt_set.examples[0]) == [[
        {"role": "user", "content": "Q: 1+1?"}, {"role": "assistant", "content": "2"},
        {"role": "user", "content": "Q: 2+2?"}]]


def test_a_cluster_field_groups_examples(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "data.jsonl", [row | {"passage": f"p{i // 2}"} for i, row in enumerate(ROWS)])
    harness = _harness(tmp_path, "model: {type: dummy}\nprobe: {type: logic}\n"
                                 "dataset: {path: data.jsonl, cluster: passage}\n", max_examples=2)
    [cell] = harness.cells
    assert (cell.prompt_set.cluster, [e.cluster for e in cell.prompt_set]) == ("passage", ["p0", "p0"])
    plain = _harness(tmp_path, "model: {type: dummy}\nprobe: {type: logic}\ndataset: {path: data.jsonl}\n")
    assert plain.cells[0].prompt_set.cluster is None


def test_rows_of_a_dataset_given_by_absolute_path_are_named_by_it(tmp_path: Path) -> None:
    data = tmp_path / "elsewhere" / "data.jsonl"
    write_jsonl(data, [*ROWS, {"id": "bad", "prompt": "p"}])
    (tmp_path / "project").mkdir()
    with pytest.raises(UserError) as caught:
        _harness(tmp_path / "project", f"model: {{type: dummy}}\nprobe: {{type: logic}}\ndataset: {{path: '{data}'}}\n")
    assert str(caught.value) == f"{data}:4: field 'answer' missing for probe logic (the row has: id, prompt)"


# -- judges -------------------------------------------------------------------------------------------

JUDGED = """model: {type: dummy, args: {model_name: m}}
dataset: {path: data.jsonl}
judge: {type: dummy, args: {model_name: grader}}
probe:
  type: prompt
  args:
    template: '{{ prompt }}'
    target: '{{ answer }}'
    scorers:
      - exact
      - {type: judge, name: j1, rubric: r}
      - {type: judge, name: j2, rubric: r, model: {type: dummy, args: {model_name: own}}}
      - {type: judge, name: j3, rubric: r, models: [{type: dummy, args: {model_name: v1}},
                                                    {type: dummy, args: {model_name: v2}}]}
      - {type: pairwise, name: pw}
"""


def _judges(harness: Harness) -> list[str]:
    return [m.model_id for m in harness.cells[0].probe.judge_models]


def test_the_config_judge_grades_for_every_judge_scorer_that_names_none(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "data.jsonl", ROWS)
    assert _judges(_harness(tmp_path, JUDGED)) == ["grader", "own", "v1", "v2", "grader"]


def test_without_a_config_judge_every_judge_names_its_model(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "data.jsonl", ROWS)
    text = JUDGED.replace("judge: {type: dummy, args: {model_name: grader}}\n", "").replace(
        "      - {type: judge, name: j1, rubric: r}\n", "").replace(
        "      - {type: pairwise, name: pw}\n", "")
    assert _judges(_harness(tmp_path, text)) == ["own", "v1", "v2"]


def test_a_judge_that_is_the_model_under_test_is_told(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "data.jsonl", ROWS)
    text = JUDGED.replace("model_name: grader", "model_name: m")
    two_models = "models: [{type: dummy, args: {model_name: m}}, {type: dummy, args: {model_name: n}}]\n"
    harness = _harness(tmp_path, text.replace("model: {type: dummy, args: {model_name: m}}\n", two_models))
    warning = ("probe prompt: the judge is the model under test (m); self-grading tends to flatter it: "
               "use another judge model")
    assert self_grading(harness) == [warning]
    assert self_grading(_harness(tmp_path, JUDGED)) == []


# -- where examples run -----------------------------------------------------------------------------------

RAY = ("model: {type: dummy}\nprobe: {type: logic}\nrunner:\n  executor:\n    address: 'head:6379'\n    workers: 2\n"
       "    type: ray\n")


def test_the_ray_executor_as_configured_or_overridden(tmp_path: Path) -> None:
    executor = _harness(tmp_path, RAY, max_examples=1).settings.executor
    assert isinstance(executor, RayExecutor) and (executor.address, executor.workers) == ("head:6379", 2)
    moved = _harness(tmp_path, RAY, max_examples=1, ray_address="other:1").settings.executor
    assert isinstance(moved, RayExecutor) and (moved.address, moved.workers) == ("other:1", 2)
    assert _harness(tmp_path, RAY, max_examples=1, executor="local").settings.executor is None
    local = "model: {type: dummy}\nprobe: {type: logic}\n"
    by_flag = _harness(tmp_path, local, max_examples=1, executor="ray").settings.executor
    assert isinstance(by_flag, RayExecutor) and (by_flag.address, by_flag.workers) == ("auto", None)
    by_address = _harness(tmp_path, local, max_examples=1, ray_address="h:2").settings.executor
    assert isinstance(by_address, RayExecutor) and by_address.address == "h:2"
    with pytest.raises(UserError) as caught:
        _harness(tmp_path, local, executor="local", ray_address="h:2")
    assert str(caught.value) == "--ray-address applies to the ray executor: drop it or pass --executor ray"


def test_without_ray_installed_the_executor_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed: importlib finds no spec
    with pytest.raises(ConfigError) as configured:
        _harness(tmp_path, RAY)
    assert str(configured.value) == (
        f"{tmp_path / 'eval.yaml'}:7: runner.executor: the ray executor needs the ray package: "
        "pip install 'insidellms[ray]'")
    with pytest.raises(ConfigError) as flagged:
        _harness(tmp_path, "model: {type: dummy}\nprobe: {type: logic}\n", executor="ray")
    assert str(flagged.value) == "--executor ray: the ray executor needs the ray package: pip install 'insidellms[ray]'"
