"""The LLM judge scorer: strict verdicts, the record's judge section, the engine's cache, retries and time limits,
against the fake OpenAI-compatible server's judge mode (and the dummy model as a judge)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from insideLLMs.config import SchemaError, load_config
from insideLLMs.run import build_harness
from insideLLMs.scorers import Answer, get_scorer
from insideLLMs.scorers._judge import JudgeError, judge_prompt, parse_verdict
from support.cli import run_cli, write_jsonl

GRADES = {"A": 1, "B": 0.5, "C": 0}
ROWS = [
    {"id": "q1", "question": "Capital of France?", "gold": "Paris"},
    {"id": "q2", "question": "Capital of Italy?", "gold": "Rome"},
    {"id": "q3", "question": "Capital of Spain?", "gold": "Madrid"},
]
ANSWERS = {"France": "It is Paris.", "Italy": "Milan, I think.", "Spain": "No idea."}


def records(run_dir: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in (run_dir / "records.jsonl").read_bytes().splitlines()]


def judge_entry(url: str, **extra: Any) -> dict[str, Any]:
    return {"type": "judge", "rubric": "Is the answer the reference city?", "grades": GRADES, "pass_at": 0.5,
            "model": {"type": "openai", "args": {"model_name": "judge-1", "api_key": "k", "base_url": url}}, **extra}


def write_eval(tmp_path: Path, server: Any, scorer: dict[str, Any] | None = None, **top: Any) -> Path:
    write_jsonl(tmp_path / "qa.jsonl", ROWS)
    config = {
        "model": {"type": "dummy", "args": {"model_name": "graded", "responses": {
            r["question"]: ANSWERS[r["question"].split()[-1].rstrip("?")] for r in ROWS}}},
        "dataset": {"path": "qa.jsonl"},
        "probe": {"type": "prompt", "args": {"template": "{{ question }}", "target": "{{ gold }}",
                                             "scorers": ["includes", scorer or judge_entry(server.openai_base_url)]}},
        "runner": {"max_retries": 1, "timeout_s": 5},
        **top,
    }
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def run(config: Path, run_dir: Path, cache_dir: Path | None = None, **settings: Any) -> dict[str, Any]:
    harness = build_harness(load_config(config), run_dir=run_dir, **settings)
    harness.settings.cache_dir = cache_dir
    return harness.run().summary


# -- the verdict and the prompt ------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ('{"grade": "A", "reason": "right city"}', ("A", "right city")),
    ('  {"grade": " B ", "reason": ""}\n', ("B", "")),
    ('```json\n{"grade": "C", "reason": "wrong"}\n```', ("C", "wrong")),
    ('{"grade": "A"}', ("A", "")),
])
def test_a_verdict_is_one_json_object_with_a_declared_grade(text: str, expected: tuple[str, str]) -> None:
    assert parse_verdict(text, GRADES) == expected


@pytest.mark.parametrize("text, message", [
    ("Grade: A", "verdict is not JSON: 'Grade: A'"),
    ('The verdict is {"grade": "A"}', "verdict is not JSON"),
    ('{"grade": "a", "reason": "x"}', "grade 'a' is not one of A, B, C"),
    ('{"grade": "Z"}', "grade 'Z' is not one of A, B, C"),
    ('{"grade": 1}', "grade 1 is not one of A, B, C"),
    ('{"reason": "fine"}', 'verdict has no "grade"'),
    ('["A"]', 'verdict has no "grade"'),
    ('{"grade": "A", "reason": 3}', '"reason" is not text: 3'),
    ("", "verdict is not JSON: ''"),
])
def test_anything_else_is_a_judge_error(text: str, message: str) -> None:
    with pytest.raises(JudgeError) as caught:
        parse_verdict(text, GRADES)
    assert str(caught.value).startswith(message)


def test_the_judge_prompt_shows_question_answer_reference_rubric_and_scale() -> None:
    answer = Answer("It is Paris.", ("Paris",), (), None,
                    ({"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}))
    (message,) = judge_prompt(answer, "Same city as the reference?", GRADES)
    assert message["role"] == "user"
    assert message["content"] == (
        "You are grading a model's answer. Apply the rubric strictly and grade only what is written.\n\n"
        "[Question]\nCapital of France?\n\n[Answer]\nIt is Paris.\n\n[Reference answer]\nParis\n\n"
        "[Rubric]\nSame city as the reference?\n\n[Grades]\nOne of: A (1), B (0.5), C (0) (the number is what the "
        'grade is worth).\n\nReply with only a JSON object: {"grade": "<one of the grades>", "reason": "<one short '
        'sentence>"}')
    no_target = judge_prompt(Answer("x", (), (), None, ({"role": "user", "content": "q"},)), "r", GRADES)
    assert "[Reference answer]" not in no_target[0]["content"]


@pytest.mark.parametrize("params, message", [
    ({"rubric": "r", "model": {"type": "dummy"}, "grades": {}}, "grades: expected a mapping of grade -> number"),
    ({"rubric": "r", "model": {"type": "dummy"}, "grades": ["A", "B"]}, "grades: expected a mapping"),
    ({"rubric": "r", "model": {"type": "dummy"}, "grades": {"A": "good"}}, "grades.A: grade 'A' must map to a number"),
    ({"rubric": "r", "model": {"type": "dummy"}, "grades": {"A": True}}, "grades.A: grade 'A' must map to a number"),
    ({"rubric": "r", "model": {"type": "dummy"}, "pass_at": 2}, "pass_at: no grade reaches pass_at 2"),
    ({"rubric": "r", "model": {"type": "dummy"}, "pass_at": "A"}, "pass_at: expected a number"),
    ({"rubric": " ", "model": {"type": "dummy"}}, "rubric: a judge needs a 'rubric'"),
    ({"rubric": "r"}, ": a judge needs a model"),
    ({"rubric": "r", "model": {"type": "gpt9"}}, "model.type: unknown model type 'gpt9'"),
    ({"rubric": "r", "model": {"type": "dummy", "args": {"temp": 1}}}, "model.args: bad args for model type 'dummy'"),
    ({"rubric": "r", "model": {"type": "dummy", "arg": {}}}, "model: unknown key(s) arg"),
    ({"rubric": "r", "model": {"type": "dummy"}, "models": [{"type": "dummy"}]}, "models: give 'model'"),
    ({"rubric": "r", "models": []}, "models: expected a list of judge models"),
])
def test_bad_judge_args_name_the_key(params: dict[str, Any], message: str) -> None:
    with pytest.raises(SchemaError) as caught:
        get_scorer("judge", **params)
    where = ".".join(str(p) for p in caught.value.loc)
    assert f"{where}: {caught.value.message}".startswith(message)


def test_default_scale_is_pass_fail_and_passes_at_the_best_grade() -> None:
    scorer = get_scorer("judge", rubric="r", model={"type": "dummy"})
    assert (scorer.grades, scorer.pass_at) == ({"PASS": 1, "FAIL": 0}, 1)
    with pytest.raises(TypeError, match="scores within a run"):
        scorer.score(Answer("x"))


# -- in a run, against the fake server's judge mode -----------------------------------------------

def test_the_judges_cost_is_apart_from_the_graded_models(tmp_path: Path, fake_llm_server) -> None:  # noqa: ANN001
    fake_llm_server.configure(judge={"default": "A"})
    pricing = {"graded": {"input": 10.0, "output": 20.0}, "judge-1": {"input": 1.0, "output": 4.0}}
    summary = run(write_eval(tmp_path, fake_llm_server, pricing=pricing), tmp_path / "run")
    recs = records(tmp_path / "run")
    judge_in = sum(r["judge"]["judge"]["usage"]["prompt_tokens"] for r in recs)
    judge_out = sum(r["judge"]["judge"]["usage"]["completion_tokens"] for r in recs)
    totals = summary["totals"]
    assert totals["tokens"] == {"prompt": 9, "completion": 8}  # the graded dummy's own counts
    assert totals["cost_usd"] == round((9 * 10.0 + 8 * 20.0) / 1e6, 10) == 0.00025
    assert totals["judge_tokens"] == {"prompt": judge_in, "completion": judge_out} and judge_out == 21
    assert totals["judge_cost_usd"] == pytest.approx((judge_in * 1.0 + judge_out * 4.0) / 1e6, abs=1e-12)
    manifest = orjson.loads((tmp_path / "run" / "manifest.json").read_bytes())
    assert manifest["pricing"]["models"] == {"graded": {"input": 10.0, "output": 20.0, "source": "config"},
                                             "judge-1": {"input": 1.0, "output": 4.0, "source": "config"}}


def test_grades_reasons_and_usage_are_in_the_record_apart_from_the_models(tmp_path: Path, fake_llm_server) -> None:  # noqa: ANN001
    fake_llm_server.configure(judge={"verdicts": {"It is Paris": "A", "Milan": "C"}, "default": "B"})
    summary = run(write_eval(tmp_path, fake_llm_server), tmp_path / "run")
    recs = records(tmp_path / "run")
    assert [(r["status"], r["scores"], r["passed"]) for r in recs] == [
        ("success", {"includes": True, "judge": 1}, True),
        ("success", {"includes": False, "judge": 0}, False),
        ("success", {"includes": False, "judge": 0.5}, False),  # includes fails; the judge passes at 0.5
    ]
    first = recs[0]
    assert first["usage"] == {"prompt_tokens": 3, "completion_tokens": 3}  # the dummy's own count
    verdict = first["judge"]["judge"]
    assert verdict["grade"] == "A" and verdict["reason"] == "fake judge says A" and verdict["passed"] is True
    assert verdict["model"] == "judge-1" and verdict["usage"]["completion_tokens"] == 7
    assert verdict["usage"]["prompt_tokens"] > 50
    sent = fake_llm_server.stats.last_request["body"]
    assert sent["temperature"] == 0 and sent["max_tokens"] == 256 and sent["model"] == "judge-1"
    assert fake_llm_server.stats.judge_requests == 3
    assert summary["totals"]["status_counts"] == {"success": 3}
    assert summary["totals"]["judge_tokens"]["completion"] == 21  # the judge's tokens apart from the model's
    assert summary["totals"]["tokens"] == {"prompt": 9, "completion": 8}
    assert summary["totals"]["cost_usd"] == 0.0  # the dummy runs here: free
    assert summary["totals"]["judge_cost_usd"] is None  # judge-1 has no price: unknown, never 0
    # the probe spec in the record shows the judge model's spec, never its key or host
    spec_entry = first["probe"]["params"]["scorers"][1]
    assert spec_entry["models"] == [{"id": "judge-1", "provider": "openai", "params": {}}]
    assert "model" not in spec_entry and b"127.0.0.1" not in (tmp_path / "run/records.jsonl").read_bytes()


def test_malformed_and_off_scale_verdicts_are_judge_errors_never_a_pass_or_fail(tmp_path: Path, fake_llm_server) -> None:  # noqa: ANN001
    fake_llm_server.configure(judge={"verdicts": {"It is Paris": "raw:I think it is an A.", "Milan": {"grade": "Z"}},
                                     "default": "A"})
    summary = run(write_eval(tmp_path, fake_llm_server), tmp_path / "run")
    recs = records(tmp_path / "run")
    assert [r["status"] for r in recs] == ["judge_error", "judge_error", "success"]
    assert [r["passed"] for r in recs] == [None, None, False]
    assert recs[0]["error"] == {"type": "JudgeError",
                                "message": "judge: verdict is not JSON: 'I think it is an A.'"}
    assert recs[1]["error"]["message"] == "judge: grade 'Z' is not one of A, B, C"
    assert recs[0]["scores"] == {"includes": True}  # the other scorers still score
    assert recs[0]["judge"]["judge"]["output"] == "I think it is an A."
    assert recs[0]["output"] == "It is Paris."
    totals = summary["totals"]
    assert totals["status_counts"] == {"judge_error": 2, "success": 1}
    assert (totals["error_count"], totals["scored"], totals["passed"]) == (2, 1, 0)


@pytest.mark.slow
def test_a_slow_judge_hits_the_time_limit_and_is_retried_then_a_judge_error(tmp_path: Path, fake_llm_server) -> None:  # noqa: ANN001
    fake_llm_server.configure(judge={"default": "A", "latency_ms": 3000})
    config = write_eval(tmp_path, fake_llm_server)
    text = config.read_text().replace("timeout_s: 5", "timeout_s: 0.3")
    config.write_text(text)
    write_jsonl(tmp_path / "qa.jsonl", ROWS[:1])
    run(config, tmp_path / "run")
    (rec,) = records(tmp_path / "run")
    assert rec["status"] == "judge_error"
    assert rec["error"]["message"] == "judge: the judge call failed (timeout): no answer within 0.3 s"
    assert fake_llm_server.stats.judge_requests == 2  # max_retries: 1


def test_a_transient_judge_failure_is_retried(tmp_path: Path, fake_llm_server) -> None:  # noqa: ANN001
    fake_llm_server.configure(judge={"default": "A"})
    fake_llm_server.add_fault("status", status=503, times=1, match="Reply with only a JSON object")
    write_jsonl(tmp_path / "qa.jsonl", ROWS[:1])
    config = write_eval(tmp_path, fake_llm_server)
    write_jsonl(tmp_path / "qa.jsonl", ROWS[:1])
    run(config, tmp_path / "run")
    (rec,) = records(tmp_path / "run")
    assert rec["status"] == "success" and rec["judge"]["judge"]["grade"] == "A"
    assert fake_llm_server.stats.judge_requests == 2


def test_the_cache_reuses_a_verdict_only_for_the_same_judge_rubric_and_output(tmp_path: Path, fake_llm_server) -> None:  # noqa: ANN001
    fake_llm_server.configure(judge={"default": "A"})
    cache = tmp_path / "cache"
    config = write_eval(tmp_path, fake_llm_server)
    first = run(config, tmp_path / "r1", cache_dir=cache)
    assert fake_llm_server.stats.judge_requests == 3
    run(config, tmp_path / "r2", cache_dir=cache)  # identical: every verdict from the cache
    assert fake_llm_server.stats.judge_requests == 3
    assert (tmp_path / "r1/records.jsonl").read_bytes() == (tmp_path / "r2/records.jsonl").read_bytes()
    rubric = write_eval(tmp_path, fake_llm_server, judge_entry(fake_llm_server.openai_base_url, rubric="Stricter."))
    second = run(rubric, tmp_path / "r3", cache_dir=cache)
    assert fake_llm_server.stats.judge_requests == 6
    assert second["run_id"] != first["run_id"]
    other = judge_entry(fake_llm_server.openai_base_url)
    other["model"]["args"]["model_name"] = "judge-2"
    run(write_eval(tmp_path, fake_llm_server, other), tmp_path / "r4", cache_dir=cache)
    assert fake_llm_server.stats.judge_requests == 9


def test_a_judge_with_bad_credentials_stops_the_run_resumable(tmp_path: Path, fake_llm_server) -> None:  # noqa: ANN001
    from insideLLMs.run import RunAborted

    fake_llm_server.configure(judge={"default": "A"}, api_key="secret")
    with pytest.raises(RunAborted, match="run stopped after 0 of 3 examples"):
        run(write_eval(tmp_path, fake_llm_server), tmp_path / "run")
    fake_llm_server.configure(api_key=None)
    run(write_eval(tmp_path, fake_llm_server), tmp_path / "run", resume=True)
    assert [r["judge"]["judge"]["grade"] for r in records(tmp_path / "run")] == ["A", "A", "A"]


def test_a_top_level_judge_block_serves_every_judge_without_a_model(tmp_path: Path, fake_llm_server) -> None:  # noqa: ANN001
    fake_llm_server.configure(judge={"default": "C"})
    scorer = {"type": "judge", "rubric": "Right city?", "grades": GRADES}
    top = {"judge": {"type": "openai", "args": {"model_name": "top-judge", "api_key": "k",
                                                 "base_url": fake_llm_server.openai_base_url}}}
    run(write_eval(tmp_path, fake_llm_server, scorer, **top), tmp_path / "run")
    recs = records(tmp_path / "run")
    assert {r["judge"]["judge"]["model"] for r in recs} == {"top-judge"}
    assert [r["scores"]["judge"] for r in recs] == [0, 0, 0]
    assert fake_llm_server.stats.last_request["body"]["model"] == "top-judge"


def test_the_dummy_model_can_judge_deterministically(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "qa.jsonl", ROWS)
    scorer = {"type": "judge", "rubric": "Right city?",
              "model": {"type": "dummy", "args": {"model_name": "dummy-judge",
                                                  "canned_response": '{"grade": "PASS", "reason": "looks right"}'}}}
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump({
        "model": {"type": "dummy"}, "dataset": {"path": "qa.jsonl"},
        "probe": {"type": "prompt", "args": {"template": "{{ question }}", "scorers": [scorer]}}}), encoding="utf-8")
    run(path, tmp_path / "a")
    run(path, tmp_path / "b")
    assert (tmp_path / "a/records.jsonl").read_bytes() == (tmp_path / "b/records.jsonl").read_bytes()
    recs = records(tmp_path / "a")
    assert [(r["scores"], r["passed"]) for r in recs] == [({"judge": 1}, True)] * 3
    assert recs[0]["judge"] == {"judge": {"model": "dummy-judge", "grade": "PASS", "reason": "looks right",
                                          "passed": True, "usage": {"prompt_tokens": 57, "completion_tokens": 5}}}


def dummy_judge(name: str, grade: str) -> dict[str, Any]:
    verdict = grade[4:] if grade.startswith("raw:") else f'{{"grade": "{grade}", "reason": "{name} says {grade}"}}'
    return {"type": "dummy", "args": {"model_name": name, "canned_response": verdict}}


@pytest.mark.parametrize("grades, expected", [
    (["A", "A", "C"], ("A", 1, 0.666667, True)),
    (["A", "C"], ("C", 0, 0.5, False)),  # a tie goes to the lowest grade: never an optimistic pass
    (["A", "raw:no idea", "B"], ("B", 0.5, 0.333333, True)),  # a broken vote counts against agreement
])
def test_several_judges_vote_and_report_their_agreement(tmp_path: Path, grades: list[str], expected: tuple) -> None:
    write_jsonl(tmp_path / "qa.jsonl", ROWS[:1])
    scorer = {"type": "judge", "rubric": "Right city?", "grades": GRADES, "pass_at": 0.5,
              "models": [dummy_judge(f"j{i}", g) for i, g in enumerate(grades)]}
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump({
        "model": {"type": "dummy"}, "dataset": {"path": "qa.jsonl"},
        "probe": {"type": "prompt", "args": {"template": "{{ question }}", "scorers": [scorer]}}}), encoding="utf-8")
    summary = run(path, tmp_path / "run")
    (rec,) = records(tmp_path / "run")
    grade, value, agreement, passed = expected
    assert rec["scores"] == {"judge": value, "judge.agreement": agreement}
    assert rec["passed"] is passed and rec["status"] == "success"
    verdict = rec["judge"]["judge"]
    assert (verdict["grade"], verdict["agreement"], verdict["passed"]) == (grade, agreement, passed)
    assert [v["model"] for v in verdict["votes"]] == [f"j{i}" for i in range(len(grades))]
    assert summary["totals"]["judge_tokens"]["completion"] == sum(v["usage"]["completion_tokens"] for v in verdict["votes"])


def test_when_no_judge_gives_a_verdict_it_is_a_judge_error(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "qa.jsonl", ROWS[:1])
    scorer = {"type": "judge", "rubric": "r", "models": [dummy_judge("j0", "raw:hmm"), dummy_judge("j1", "raw:{}")]}
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump({
        "model": {"type": "dummy"}, "dataset": {"path": "qa.jsonl"},
        "probe": {"type": "prompt", "args": {"template": "{{ question }}", "scorers": [scorer]}}}), encoding="utf-8")
    run(path, tmp_path / "run")
    (rec,) = records(tmp_path / "run")
    assert (rec["status"], rec["passed"], rec["scores"]) == ("judge_error", None, {})
    assert rec["error"]["message"] == "judge: no judge gave a usable verdict (verdict is not JSON: 'hmm')"


# -- the command line: bad input and the self-grading warning --------------------------------------

@pytest.mark.slow
def test_bad_judge_configs_are_one_line_exit_1_and_nothing_sent(tmp_path: Path, fake_llm_server) -> None:  # noqa: ANN001
    url = fake_llm_server.openai_base_url
    cases = {
        "no-model": ({"type": "judge", "rubric": "r"}, "probe.args.scorers.1: a judge needs a model"),
        "bad-scale": (judge_entry(url, grades={"A": "top"}), "probe.args.scorers.1.grades.A: grade 'A' must map"),
        "bad-type": ({**judge_entry(url), "model": {"type": "gpt9"}}, "probe.args.scorers.1.model.type: unknown model"),
    }
    for name, (scorer, message) in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        write_eval(folder, fake_llm_server, scorer)
        result = run_cli("run", "eval.yaml", "--run-dir", "out", "--no-track", cwd=folder)
        assert result.returncode == 1, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and "eval.yaml:" in lines[0], result.stderr
        assert not (folder / "out").exists()
    assert fake_llm_server.stats.requests == 0


@pytest.mark.slow
def test_a_judge_grading_itself_gets_a_one_line_warning(tmp_path: Path, fake_llm_server) -> None:  # noqa: ANN001
    fake_llm_server.configure(judge={"default": "A"})
    graded = {"type": "openai", "args": {"model_name": "same", "api_key": "k", "base_url": fake_llm_server.openai_base_url}}
    scorer = {"type": "judge", "rubric": "r", "grades": GRADES, "model": graded}
    config = write_eval(tmp_path, fake_llm_server, scorer)
    data = yaml.safe_load(config.read_text())
    data["model"] = graded
    config.write_text(yaml.safe_dump(data))
    result = run_cli("run", "eval.yaml", "--run-dir", "out", "--no-track", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "self-grading" in line]
    assert warnings == ["! probe prompt: the judge is the model under test (same); self-grading tends to flatter it: "
                        "use another judge model"]


# -- pairwise, both orders -----------------------------------------------------------------------

def pairwise_entry(url: str, **extra: Any) -> dict[str, Any]:
    return {"type": "pairwise", "rubric": "Which names the right city?",
            "model": {"type": "openai", "args": {"model_name": "judge-1", "api_key": "k", "base_url": url}}, **extra}


def test_pairwise_judges_both_orders_and_counts_only_agreement(tmp_path: Path, fake_llm_server) -> None:  # noqa: ANN001
    fake_llm_server.configure(judge={
        "verdicts": {
            "[Answer 1]\nIt is Paris.": "1", "[Answer 2]\nIt is Paris.": "2",  # the answer wins in both orders
            "[Answer 1]\nRome": "1", "[Answer 2]\nRome": "2",  # the reference wins in both orders
        },
        "default": "1",  # Spain: a judge that always prefers the first answer
    })
    run(write_eval(tmp_path, fake_llm_server, pairwise_entry(fake_llm_server.openai_base_url)), tmp_path / "run")
    recs = records(tmp_path / "run")
    assert [(r["scores"]["pairwise"], r["scores"]["pairwise.consistent"], r["passed"]) for r in recs] == [
        (1.0, True, True),
        (0.0, True, False),
        (0.5, False, False),  # position bias: a tie, never a win (and includes failed)
    ]
    assert [r["judge"]["pairwise"]["grade"] for r in recs] == ["answer", "reference", "tie"]
    assert [r["judge"]["pairwise"]["passed"] for r in recs] == [True, False, False]  # a biased tie never passes
    orders = recs[0]["judge"]["pairwise"]["orders"]
    assert [o["grade"] for o in orders] == ["1", "2"] and all(o["usage"] for o in orders)
    assert fake_llm_server.stats.judge_requests == 6
    sent = fake_llm_server.stats.last_request["body"]["messages"][0]["content"]
    assert "[Answer 1]\nMadrid\n\n[Answer 2]\nNo idea." in sent  # the swapped order: the reference first


def test_pairwise_without_swap_asks_once_and_a_broken_order_is_a_judge_error(tmp_path: Path, fake_llm_server) -> None:  # noqa: ANN001
    fake_llm_server.configure(judge={"verdicts": {"[Answer 2]\nIt is Paris.": "raw:both fine"}, "default": "tie"})
    write_jsonl(tmp_path / "qa.jsonl", ROWS[:1])
    once = write_eval(tmp_path, fake_llm_server, pairwise_entry(fake_llm_server.openai_base_url, swap=False))
    write_jsonl(tmp_path / "qa.jsonl", ROWS[:1])
    run(once, tmp_path / "once")
    (rec,) = records(tmp_path / "once")
    assert rec["scores"] == {"includes": True, "pairwise": 0.5} and rec["passed"] is True
    assert fake_llm_server.stats.judge_requests == 1
    both = write_eval(tmp_path, fake_llm_server, pairwise_entry(fake_llm_server.openai_base_url))
    write_jsonl(tmp_path / "qa.jsonl", ROWS[:1])
    run(both, tmp_path / "both")
    (rec,) = records(tmp_path / "both")
    assert rec["status"] == "judge_error" and rec["passed"] is None
    assert rec["error"]["message"] == "pairwise: verdict is not JSON: 'both fine'"


def test_pairwise_needs_a_target_and_one_model() -> None:
    from insideLLMs.probes import get_probe

    with pytest.raises(SchemaError, match="compares with a target"):
        get_probe("prompt", scorers=[{"type": "pairwise", "model": {"type": "dummy"}}])
    with pytest.raises(SchemaError, match="unexpected keyword argument 'models'"):
        get_probe("prompt", target="x", scorers=[{"type": "pairwise", "models": [{"type": "dummy"}]}])
    with pytest.raises(SchemaError, match="swap: expected true or false"):
        get_scorer("pairwise", model={"type": "dummy"}, swap="yes")


def test_judge_calls_stay_within_the_runs_concurrency(tmp_path: Path, fake_llm_server) -> None:  # noqa: ANN001
    fake_llm_server.configure(judge={"default": "A", "latency_ms": 50})
    config = write_eval(tmp_path, fake_llm_server)
    write_jsonl(tmp_path / "qa.jsonl", [{"id": f"q{i}", "question": f"Capital {i}?", "gold": "x"} for i in range(8)])
    run(config, tmp_path / "run", concurrency=2)
    assert fake_llm_server.stats.judge_requests == 8
    assert fake_llm_server.stats.peak_in_flight == 2  # the judge is called from the example's own worker
