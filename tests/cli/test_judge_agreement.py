"""``insidellms judge-agreement``: accuracy and Cohen's kappa of a run's judge against human labels, checked
against scikit-learn; bad labels files are one line, exit 1."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml

from insideLLMs.config import load_config
from insideLLMs.run import build_harness
from insideLLMs.stats import cohen_kappa
from support.cli import run_cli, write_jsonl

GRADES = ["A", "B", "C"]


@pytest.mark.parametrize("seed", range(6))
def test_cohen_kappa_matches_scikit_learn(seed: int) -> None:
    from sklearn import metrics  # the dev extra's independent implementation
    rng = random.Random(seed)
    labels = GRADES[: rng.randint(2, 3)]
    a = [rng.choice(labels) for _ in range(rng.randint(5, 60))]
    b = [x if rng.random() < 0.6 else rng.choice(labels) for x in a]
    assert cohen_kappa(a, b) == pytest.approx(metrics.cohen_kappa_score(a, b), abs=1e-12)
    assert cohen_kappa([True, False, True], [True, False, True]) == 1.0
    assert cohen_kappa(["A", "A"], ["A", "A"]) is None  # only one label: agreement beyond chance is undefined


def test_cohen_kappa_edge_cases() -> None:
    from sklearn import metrics  # the dev extra's independent implementation
    assert cohen_kappa(["A"], ["B"]) == metrics.cohen_kappa_score(["A"], ["B"]) == 0.0  # one item, disagreeing
    assert cohen_kappa([], []) is None
    with pytest.raises(ValueError, match=r"two raters must label the same items \(3 vs 2 labels\)"):
        cohen_kappa(["A", "B", "A"], ["A", "B"])


def judged_run(tmp_path: Path, server, n: int = 30, seed: int = 7) -> tuple[Path, list[str]]:  # noqa: ANN001
    """A real judged run: the fake server's judge gives each example a seeded grade (and breaks one verdict)."""
    rng = random.Random(seed)
    grades = [rng.choice(GRADES) for _ in range(n)]
    verdicts = {f"Question {i}?": g for i, g in enumerate(grades)}
    verdicts["Question 0?"] = "raw:not a verdict"
    server.configure(judge={"verdicts": verdicts})
    write_jsonl(tmp_path / "qa.jsonl", [{"id": f"e{i}", "question": f"Question {i}?"} for i in range(n)])
    scorer = {"type": "judge", "rubric": "Good?", "grades": {"A": 1, "B": 0.5, "C": 0}, "pass_at": 0.5,
              "model": {"type": "openai", "args": {"model_name": "j", "api_key": "k", "base_url": server.openai_base_url}}}
    (tmp_path / "eval.yaml").write_text(yaml.safe_dump({
        "model": {"type": "dummy"}, "dataset": {"path": "qa.jsonl"},
        "probe": {"type": "prompt", "args": {"template": "{{ question }}", "scorers": [scorer]}}}), encoding="utf-8")
    build_harness(load_config(tmp_path / "eval.yaml"), run_dir=tmp_path / "run").run()
    return tmp_path / "run", grades


@pytest.mark.slow
def test_agreement_of_grades_and_of_pass_fail_with_human_labels(tmp_path: Path, fake_llm_server) -> None:  # noqa: ANN001
    from sklearn import metrics  # the dev extra's independent implementation
    run_dir, grades = judged_run(tmp_path, fake_llm_server)
    rng = random.Random(1)
    human = [g if rng.random() < 0.7 else rng.choice(GRADES) for g in grades]
    rows = [{"id": f"e{i}", "grade": h} for i, h in enumerate(human)] + [{"id": "not-in-run", "grade": "A"}]
    write_jsonl(tmp_path / "labels.jsonl", rows)
    result = run_cli("judge-agreement", str(run_dir), "labels.jsonl", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    judge, people = grades[1:], human[1:]  # e0's verdict did not parse: a judge error, not compared
    assert got == {
        "scorer": "judge", "by": "grade", "labels": 31, "compared": 29, "judge_errors": 1, "unmatched": 1,
        "accuracy": pytest.approx(sum(a == b for a, b in zip(judge, people)) / 29),
        "kappa": pytest.approx(metrics.cohen_kappa_score(people, judge)),
    }
    text = run_cli("judge-agreement", str(run_dir), "labels.jsonl", cwd=tmp_path)
    assert text.stdout.splitlines()[0] == ("judge 'judge' vs human labels (grade): 29 compared, 1 judge error(s), "
                                           "1 label(s) without a judged example")
    assert text.stdout.splitlines()[1].startswith("accuracy ")
    passed = [{"id": f"e{i}", "passed": h != "C"} for i, h in enumerate(human)]
    write_jsonl(tmp_path / "passed.jsonl", passed)
    got = json.loads(run_cli("judge-agreement", str(run_dir), "passed.jsonl", "--json", cwd=tmp_path).stdout)
    people_pass, judge_pass = [h != "C" for h in people], [g != "C" for g in judge]
    assert (got["by"], got["compared"]) == ("passed", 29)
    assert got["kappa"] == pytest.approx(metrics.cohen_kappa_score(people_pass, judge_pass))


@pytest.mark.slow
def test_bad_labels_are_one_line_and_exit_1(tmp_path: Path, fake_llm_server) -> None:  # noqa: ANN001
    run_dir, _ = judged_run(tmp_path, fake_llm_server, n=3)
    cases = {
        "missing.jsonl": None,
        "broken.jsonl": '{"id": "e1", "grade": "A"}\n{"id": "e2", \n',
        "no-id.jsonl": '{"grade": "A"}\n',
        "no-label.jsonl": '{"id": "e1", "score": 1}\n',
        "mixed.jsonl": '{"id": "e1", "grade": "A"}\n{"id": "e2", "passed": true}\n',
        "twice.jsonl": '{"id": "e1", "grade": "A"}\n{"id": "e1", "grade": "B"}\n',
        "bad-passed.jsonl": '{"id": "e1", "passed": "yes"}\n',
        "nothing-matches.jsonl": '{"id": "zzz", "grade": "A"}\n',
        "empty.jsonl": "\n",
    }
    expected = {
        "missing.jsonl": "missing.jsonl: cannot read (No such file or directory)",
        "broken.jsonl": "broken.jsonl:2: malformed JSON",
        "no-id.jsonl": 'no-id.jsonl:1: a label needs "id"',
        "no-label.jsonl": 'no-label.jsonl:1: a label needs "grade"',
        "mixed.jsonl": 'mixed.jsonl:2: this label gives "passed" but the ones before give "grade"',
        "twice.jsonl": "twice.jsonl:2: example 'e1' is labelled twice",
        "bad-passed.jsonl": 'bad-passed.jsonl:1: "passed" must be true or false',
        "nothing-matches.jsonl": "nothing-matches.jsonl: no label matches an example judged in",
        "empty.jsonl": "empty.jsonl: holds no labels",
    }
    for name, text in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text, encoding="utf-8")
        result = run_cli("judge-agreement", str(run_dir), name, cwd=tmp_path)
        assert result.returncode == 1, (name, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and expected[name] in lines[0], (name, result.stderr)
    write_jsonl(tmp_path / "ok.jsonl", [{"id": "e1", "grade": "A"}])
    for args, message in (
        (["no-such-run", "ok.jsonl"], "no-such-run: no such run directory"),
        ([str(run_dir), "ok.jsonl", "--scorer", "other"], "no judge scorer named 'other' (there are: judge)"),
        ([str(run_dir), "ok.jsonl", "--model", "other"], "no record for model 'other' has a judge verdict"),
    ):
        result = run_cli("judge-agreement", *args, cwd=tmp_path)
        assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert message in result.stderr, result.stderr
