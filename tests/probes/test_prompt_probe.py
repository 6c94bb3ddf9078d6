"""The ``prompt`` probe: your template, few-shot turns, choices and scorers, from the API and through
``insidellms run`` on the dummy model and the fake OpenAI-compatible and Anthropic servers."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from insideLLMs.config import SchemaError
from insideLLMs.datasets import Example
from insideLLMs.models import Completion
from insideLLMs.probes import get_probe
from support.cli import run_cli, with_pythonpath, write_jsonl

MCQ_ROWS = [
    {"id": "q1", "question": "Capital of France?", "options": ["Paris", "London", "Rome"], "gold": "Paris"},
    {"id": "q2", "question": "2 + 2?", "options": ["3", "4", "5"], "gold": "B"},
]
DEV_ROWS = [{"id": f"d{i}", "question": f"Dev question {i}?", "options": ["x", "y"], "gold": "y"} for i in range(6)]


def ex(id: str = "e1", **data: object) -> Example:
    return Example(id=id, data=dict(data))


def records(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


# -- from the API --------------------------------------------------------------------------------

def test_template_system_and_lettered_choices_make_the_messages() -> None:
    probe = get_probe("prompt", system="You are {{ role }}.", template="Q: {{ question }}",
                      choices="{{ options }}", target="{{ gold }}", scorers=["choice"])
    row = ex(role="a quiz master", **MCQ_ROWS[0])
    assert probe.build(row) == [
        {"role": "system", "content": "You are a quiz master."},
        {"role": "user", "content": "Q: Capital of France?\n\nA. Paris\nB. London\nC. Rome"},
    ]
    assert probe.score(row, Completion(text="The answer is (A).")).passed is True
    assert probe.score(row, Completion(text="B.")).scores == {"choice": False}


def test_default_template_is_the_prompt_field_and_no_scorers_pass_nothing() -> None:
    probe = get_probe("prompt")
    assert probe.build(ex(prompt="Hi")) == [{"role": "user", "content": "Hi"}]
    verdict = probe.score(ex(prompt="Hi"), Completion(text="Hello"))
    assert (verdict.scores, verdict.passed) == ({}, None)


def test_target_list_field_and_list_of_templates() -> None:
    one_field = get_probe("prompt", target="{{ answers }}", scorers=["exact"])
    row = ex(prompt="Largest US city?", answers=["New York", "NYC"])
    assert one_field.score(row, Completion(text="nyc")).passed is True
    templates = get_probe("prompt", target=["{{ a }}", "{{ b }} City"], scorers=["exact"])
    assert templates.score(ex(prompt="p", a="NYC", b="New York"), Completion(text="New York city")).passed is True


def test_pass_all_any_or_one_scorer() -> None:
    scorers = [{"type": "exact"}, {"type": "includes"}, {"type": "f1"}]  # f1 has no pass mark: it never decides
    row, said = ex(prompt="p", gold="Paris"), Completion(text="It is Paris")
    results = {rule: get_probe("prompt", target="{{ gold }}", scorers=scorers, **{"pass": rule}).score(row, said)
               for rule in ("all", "any", "includes", "exact")}
    assert {rule: v.passed for rule, v in results.items()} == {"all": False, "any": True, "includes": True, "exact": False}
    assert results["all"].scores == {"exact": False, "includes": True, "f1": 0.5}
    named = get_probe("prompt", target="{{ gold }}", scorers=[{"type": "exact", "name": "strict"}, "exact"])
    assert set(named.score(row, Completion(text="Paris")).scores) == {"strict", "exact"}


def test_rows_are_checked_for_everything_the_probe_needs() -> None:
    probe = get_probe("prompt", template="{{ question }}", target="{{ gold }}", choices="{{ options }}",
                      scorers=["choice", "numeric"])
    assert probe.row_problem({"question": "q", "gold": "2", "options": ["1", "2"]}) is None
    assert probe.row_problem({"gold": "2", "options": ["1"]}) == (
        "field 'question' missing for probe prompt (template uses it; the row has: gold, options)")
    assert probe.row_problem({"question": "q", "gold": "2", "options": []}) == "choices is empty (probe prompt)"
    assert probe.row_problem({"question": "q", "gold": "B", "options": ["1", "2"]}).startswith(
        "target 'B' is not a number (scorer numeric)")


def test_a_probe_name_tells_evals_apart() -> None:
    probe = get_probe("prompt", name="support-qa")
    assert probe.name == "support-qa" and probe.spec["id"] == "support-qa"
    with pytest.raises(SchemaError) as caught:
        get_probe("prompt", **{"pass": "exact"})
    assert caught.value.loc == ("pass",)


def test_few_shot_turns_are_drawn_by_seed_and_never_the_example_itself(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "dev.jsonl", DEV_ROWS)
    args = dict(template="{{ question }}", choices="{{ options }}", target="{{ gold }}", scorers=["choice"])

    def shots(seed: int, row: Example) -> list[str]:
        probe = get_probe("prompt", few_shot={"path": "dev.jsonl", "k": 2, "seed": seed}, **args)
        probe.prepare(tmp_path, {})
        messages = probe.build(row)
        assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
        assert [m["content"] for m in messages[1::2][:2]] == ["B", "B"]  # the target "y" as its letter
        return [m["content"].split("\n")[0] for m in messages[0:4:2]]

    row = ex(**MCQ_ROWS[0])
    first = shots(0, row)
    assert shots(0, row) == first  # the same draw every time
    assert any(shots(seed, row) != first for seed in range(1, 5))  # another seed, another draw
    itself = Example("other", dict(DEV_ROWS[int(first[0].split()[-1].rstrip("?"))]))
    assert first[0] not in shots(0, itself) and len(shots(0, itself)) == 2  # a shot never answers itself


# -- through the command line ---------------------------------------------------------------------

MCQ_CONFIG = """\
model: {type: dummy, args: {canned_response: "The answer is (A)."}}
dataset: {path: mcq.jsonl, fields: {question: q}}
probe:
  type: prompt
  args:
    system: "Answer with the letter of the right choice."
    template: "{{ question }}"
    choices: "{{ options }}"
    target: "{{ gold }}"
    few_shot: {path: dev.jsonl, k: 2, seed: 7}
    scorers: [choice, {type: includes, name: says_gold}]
    pass: choice
"""


def _mcq_files(root: Path) -> None:
    write_jsonl(root / "mcq.jsonl", [{"q" if k == "question" else k: v for k, v in r.items()} for r in MCQ_ROWS])
    write_jsonl(root / "dev.jsonl", [{"q" if k == "question" else k: v for k, v in r.items()} for r in DEV_ROWS])
    (root / "eval.yaml").write_text(MCQ_CONFIG, encoding="utf-8")


def test_run_on_the_dummy_model_writes_scores_messages_and_passed(tmp_path: Path) -> None:
    _mcq_files(tmp_path)
    result = run_cli("run", "eval.yaml", "--run-dir", "out", "--no-track", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    recs = records(tmp_path / "out/records.jsonl")
    assert [(r["example_id"], r["scores"], r["passed"]) for r in recs] == [
        ("q1", {"choice": True, "says_gold": False}, True),
        ("q2", {"choice": False, "says_gold": False}, False),
    ]
    messages = recs[0]["messages"]  # the prompt as sent: system, two shots, the question
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert messages[-1]["content"] == "Capital of France?\n\nA. Paris\nB. London\nC. Rome"
    assert recs[0]["input"]["question"] == "Capital of France?"  # renamed by dataset.fields
    assert recs[0]["probe"]["few_shot"] and recs[0]["probe"]["scorers"] == {"choice": "1", "says_gold": "1"}
    summary = orjson.loads((tmp_path / "out/summary.json").read_bytes())
    assert summary["groups"][0]["scores"] == {"choice": 0.5, "says_gold": 0.0}


@pytest.mark.slow
def test_two_runs_are_byte_identical_and_a_changed_template_or_shot_file_is_another_run(tmp_path: Path) -> None:
    _mcq_files(tmp_path)
    for out in ("a", "b"):
        assert run_cli("run", "eval.yaml", "--run-dir", out, "--no-track", cwd=tmp_path).returncode == 0
    for name in ("records.jsonl", "manifest.json", "config.resolved.yaml"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    run_id = orjson.loads((tmp_path / "a/manifest.json").read_bytes())["run_id"]

    def run_id_after(change: callable) -> str:  # type: ignore[valid-type]
        _mcq_files(tmp_path)
        change()
        result = run_cli("validate", "eval.yaml", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return result.stdout.rsplit("run_id ", 1)[1].strip()

    assert run_id_after(lambda: None) == run_id
    assert run_id_after(lambda: (tmp_path / "eval.yaml").write_text(
        MCQ_CONFIG.replace('"{{ question }}"', '"Q: {{ question }}"'), encoding="utf-8")) != run_id
    assert run_id_after(lambda: write_jsonl(tmp_path / "dev.jsonl", DEV_ROWS[:-1])) != run_id


@pytest.mark.slow
def test_system_and_few_shot_turns_reach_openai_and_anthropic_servers(tmp_path: Path, fake_llm_server) -> None:  # noqa: ANN001
    write_jsonl(tmp_path / "qa.jsonl", [{"id": "q1", "question": "Capital of France?", "gold": "Paris"}])
    write_jsonl(tmp_path / "dev.jsonl", [{"question": "Capital of Italy?", "gold": "Rome"}])
    fake_llm_server.configure(answers={"France": "Paris."})
    args = "{model_name: m, api_key: k, base_url: '%s'}"
    for provider, url in (("openai", fake_llm_server.openai_base_url), ("anthropic", fake_llm_server.base_url)):
        (tmp_path / "eval.yaml").write_text(
            f"model: {{type: {provider}, args: {args % url}}}\n"
            "dataset: {path: qa.jsonl}\n"
            "probe:\n  type: prompt\n  args:\n    system: Be brief.\n    template: '{{ question }}'\n"
            "    target: '{{ gold }}'\n    few_shot: {path: dev.jsonl, k: 1}\n    scorers: [exact, f1]\n",
            encoding="utf-8")
        result = run_cli("run", "eval.yaml", "--run-dir", f"out-{provider}", "--no-track", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        body = fake_llm_server.stats.last_request["body"]
        turns = [{"role": "user", "content": "Capital of Italy?"}, {"role": "assistant", "content": "Rome"},
                 {"role": "user", "content": "Capital of France?"}]
        if provider == "openai":
            assert body["messages"] == [{"role": "system", "content": "Be brief."}, *turns]
        else:
            assert body["system"] == "Be brief." and body["messages"] == turns
        (rec,) = records(tmp_path / f"out-{provider}/records.jsonl")
        assert (rec["output"], rec["scores"], rec["passed"]) == ("Paris.", {"exact": True, "f1": 1.0}, True)


PLUGIN = '''
from insideLLMs.scorers import Score, Scorer


class Shouting(Scorer):
    """Passes when the answer is in capitals."""

    name = "shouting"
    needs_target = False

    def score(self, answer):
        loud = answer.text.isupper()
        return Score(loud, loud, {"length": len(answer.text)})
'''


@pytest.mark.slow
def test_a_custom_scorer_by_module_colon_class_and_entry_point(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "loud_scorers").mkdir(parents=True)
    (site / "loud_scorers/__init__.py").write_text(PLUGIN, encoding="utf-8")
    dist = site / "loud_scorers-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: loud-scorers\nVersion: 0.1\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text("[insidellms.scorers]\nshouting = loud_scorers:Shouting\n", encoding="utf-8")
    env = {"PYTHONPATH": with_pythonpath(site)}
    for scorer in ("'loud_scorers:Shouting'", "shouting"):
        (tmp_path / "eval.yaml").write_text(
            "model: {type: dummy}\ndataset: {format: inline, items: ['HEY', 'hey there']}\n"
            f"probe: {{type: prompt, args: {{scorers: [{scorer}]}}}}\n", encoding="utf-8")
        result = run_cli("run", "eval.yaml", "--run-dir", "out", "--no-track", "--overwrite", cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        assert [(r["scores"], r["passed"]) for r in records(tmp_path / "out/records.jsonl")] == [
            ({"shouting": True, "shouting.length": 3}, True), ({"shouting": False, "shouting.length": 9}, False)]
    assert "shouting" in run_cli("list", "scorers", env=env).stdout
    (tmp_path / "eval.yaml").write_text(
        "model: {type: dummy}\ndataset: {format: inline, items: [a]}\n"
        "probe: {type: prompt, args: {scorers: ['json:JSONDecoder']}}\n", encoding="utf-8")
    bad = run_cli("validate", "eval.yaml", cwd=tmp_path)
    assert (bad.returncode, bad.stderr) == (1, "error: eval.yaml:3: probe.args.scorers.0.type: scorer type "
            "'json:JSONDecoder' is the class json.decoder.JSONDecoder, not a scorer: a custom scorer type must "
            "subclass insideLLMs.scorers.base.Scorer\n")


def test_dataset_fields_rename_for_built_in_probes_in_every_format(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "qa.jsonl", [{"key": "k1", "question": "Capital of France?", "expected": "Paris"}])
    (tmp_path / "eval.yaml").write_text(
        "model: {type: dummy, args: {canned_response: Paris}}\nprobe: {type: factuality}\n"
        "dataset: {path: qa.jsonl, id_field: key, fields: {prompt: question, answer: expected}}\n", encoding="utf-8")
    result = run_cli("run", "eval.yaml", "--run-dir", "out", "--no-track", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (rec,) = records(tmp_path / "out/records.jsonl")
    assert (rec["example_id"], rec["input"], rec["passed"]) == (
        "k1", {"key": "k1", "prompt": "Capital of France?", "answer": "Paris"}, True)
