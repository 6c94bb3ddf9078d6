"""`insidellms run` / `harness` end to end with the dummy model: run directory contract, determinism, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from support.cli import dummy_config, qa_rows, run_cli, write_config, write_jsonl

DETERMINISTIC = ("records.jsonl", "manifest.json")


def _summary_without_volatile(run_dir: Path) -> dict:
    summary = orjson.loads((run_dir / "summary.json").read_bytes())
    summary.pop("volatile")
    return summary


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_jsonl(tmp_path / "data.jsonl", qa_rows(40))
    write_config(tmp_path / "eval.yaml", dummy_config())
    return tmp_path


def test_run_writes_the_run_directory(project: Path) -> None:
    result = run_cli("run", "eval.yaml", "--run-dir", "out", "--no-track", cwd=project)
    assert result.returncode == 0, result.stderr
    run_dir = project / "out"
    for name in ("records.jsonl", "timings.jsonl", "manifest.json", "summary.json", "config.resolved.yaml"):
        assert (run_dir / name).exists(), name
    assert not (run_dir / ".incomplete").exists()
    records = [orjson.loads(line) for line in (run_dir / "records.jsonl").read_bytes().splitlines()]
    assert [r["example_id"] for r in records] == [f"q{i:05d}" for i in range(40)]
    first = records[0]
    assert first["status"] == "success"
    assert first["model"] == {"id": "dummy", "provider": "dummy", "params": {}}
    assert first["probe"]["id"] == "factuality"
    assert first["output"].startswith("What is 0 plus 0?")
    assert first["usage"]["completion_tokens"] > 0
    assert set(first) >= {"run_id", "model", "probe", "example_id", "input", "messages", "output", "scores", "passed", "status", "error", "usage"}
    manifest = orjson.loads((run_dir / "manifest.json").read_bytes())
    assert manifest["run_id"] == first["run_id"]
    assert manifest["counts"] == {"records": 40, "by_status": {"success": 40}}
    assert manifest["datasets"][0]["size"] == 40 and manifest["datasets"][0]["source"] == "data.jsonl"
    summary = orjson.loads((run_dir / "summary.json").read_bytes())
    group = summary["groups"][0]
    assert (group["model"], group["probe"], group["n"], group["success_rate"], group["error_count"]) == ("dummy", "factuality", 40, 1.0, 0)
    assert "p50" in summary["volatile"]["latency_ms"]["dummy/factuality"]
    assert "dummy" in result.stdout and "factuality" in result.stdout  # the results table


def test_two_runs_are_byte_identical(project: Path) -> None:
    for out in ("a", "b"):
        assert run_cli("run", "eval.yaml", "--run-dir", out, "--no-track", "--concurrency", "7" if out == "a" else "3", cwd=project).returncode == 0
    for name in DETERMINISTIC:
        assert (project / "a" / name).read_bytes() == (project / "b" / name).read_bytes(), name
    assert _summary_without_volatile(project / "a") == _summary_without_volatile(project / "b")
    assert (project / "a/summary.json").read_bytes().split(b'"volatile"')[0] == (project / "b/summary.json").read_bytes().split(b'"volatile"')[0]


def test_tracking_settings_do_not_change_the_run_id(project: Path) -> None:
    write_config(project / "tracked.yaml", dummy_config(tracking={"enabled": False, "backend": "local", "tags": ["x"]}))
    assert run_cli("run", "eval.yaml", "--run-dir", "a", "--no-track", cwd=project).returncode == 0
    assert run_cli("run", "tracked.yaml", "--run-dir", "b", "--no-track", cwd=project).returncode == 0
    assert (project / "a/records.jsonl").read_bytes() == (project / "b/records.jsonl").read_bytes()


@pytest.mark.slow
def test_default_run_dir_is_named_by_run_id_and_is_not_overwritten(project: Path) -> None:
    assert run_cli("run", "eval.yaml", "--no-track", cwd=project).returncode == 0
    (run_dir,) = (project / "runs").iterdir()
    run_id = orjson.loads((run_dir / "manifest.json").read_bytes())["run_id"]
    assert run_dir.name == run_id
    again = run_cli("run", "eval.yaml", "--no-track", cwd=project)
    assert again.returncode == 1
    assert again.stderr.strip() == f"error: runs/{run_id}: already holds a finished run; pass --overwrite to replace it"
    assert run_cli("run", "eval.yaml", "--no-track", "--overwrite", cwd=project).returncode == 0


def test_example_errors_are_records_and_fail_on_errors_exits_3(project: Path) -> None:
    write_config(project / "flaky.yaml", dummy_config(model={"type": "dummy", "args": {"fail_every": 4, "fail_with": "rate_limited"}}))
    ok = run_cli("run", "flaky.yaml", "--run-dir", "out", "--no-track", cwd=project)
    assert ok.returncode == 0, ok.stderr
    records = [orjson.loads(line) for line in (project / "out/records.jsonl").read_bytes().splitlines()]
    failed = [r for r in records if r["status"] != "success"]
    assert 0 < len(failed) < 40
    assert all(r["status"] == "rate_limited" and r["error"]["type"] == "RateLimitError" and r["output"] is None for r in failed)
    gated = run_cli("run", "flaky.yaml", "--run-dir", "out2", "--no-track", "--fail-on-errors", cwd=project)
    assert gated.returncode == 3
    assert f"{len(failed)} example(s) ended in an error" in gated.stderr


def test_authentication_error_stops_the_run_early(project: Path) -> None:
    write_config(project / "auth.yaml", dummy_config(model={"type": "dummy", "args": {"fail_every": 1, "fail_with": "auth"}}))
    result = run_cli("run", "auth.yaml", "--run-dir", "out", "--no-track", cwd=project)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: run stopped after 0 of 40 examples: scripted failure")
    assert "--resume" in lines[0]
    assert (project / "out/.incomplete").exists() and not (project / "out/manifest.json").exists()


def test_harness_grid_order_and_max_examples(tmp_path: Path) -> None:
    write_config(tmp_path / "grid.yaml", {
        "models": [{"type": "dummy", "args": {"model_name": "m1"}}, {"type": "dummy", "args": {"model_name": "m2", "canned_response": "5"}}],
        "probes": [{"type": "logic"}, {"type": "factuality"}],
        "generation": {"temperature": 0},
    })
    result = run_cli("harness", "grid.yaml", "--run-dir", "out", "--max-examples", "3", "--no-track", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    records = [orjson.loads(line) for line in (tmp_path / "out/records.jsonl").read_bytes().splitlines()]
    order = [(r["model"]["id"], r["probe"]["id"]) for r in records]
    assert order == [("m1", "logic")] * 3 + [("m1", "factuality")] * 3 + [("m2", "logic")] * 3 + [("m2", "factuality")] * 3
    summary = orjson.loads((tmp_path / "out/summary.json").read_bytes())
    assert [(g["model"], g["probe"], g["n"]) for g in summary["groups"]] == [
        ("m1", "logic", 3), ("m1", "factuality", 3), ("m2", "logic", 3), ("m2", "factuality", 3)]
    # `run` refuses a grid and says what to use instead
    refused = run_cli("run", "grid.yaml", "--no-track", cwd=tmp_path)
    assert refused.returncode == 1 and "insidellms harness grid.yaml" in refused.stderr


def test_python_api_matches_the_documented_names(tmp_path: Path) -> None:
    from insideLLMs import ProbeRunner, PromptSet, get_model, get_probe

    data = write_jsonl(tmp_path / "logic.jsonl", [{"id": "a", "prompt": "2+2?", "answer": "4"}, {"id": "b", "prompt": "3+3?", "answer": "6"}])
    model = get_model("dummy", responses={"2+2?": "Answer: 4"})
    probe = get_probe("logic")
    prompt_set = PromptSet.from_jsonl(data)
    runner = ProbeRunner(model, probe, concurrency=16, run_dir=tmp_path / "run")
    with pytest.raises(RuntimeError, match=r"^no run yet: call run\(\) or arun\(\) first$"):
        runner.success_rate  # noqa: B018
    results = runner.run(prompt_set)
    assert [r.example_id for r in results] == ["a", "b"]
    assert runner.success_rate == 1.0 and runner.error_count == 0
    assert (tmp_path / "run" / "records.jsonl").read_bytes().count(b"\n") == 2


def test_probe_runner_defaults_and_every_argument_reach_the_run_settings(tmp_path: Path) -> None:
    from insideLLMs import ProbeRunner, get_model, get_probe
    from insideLLMs.models import PriceTable
    from insideLLMs.run import RunSettings

    model, probe = get_model("dummy"), get_probe("logic")
    assert ProbeRunner(model, probe).settings == RunSettings(
        concurrency=16, max_retries=4, timeout_s=60.0, resume=False, overwrite=False, progress=False, epochs=1
    )
    listener, prices = object(), PriceTable.load()
    runner = ProbeRunner(
        model, probe, concurrency=3, max_retries=0, timeout_s=2.5, generation={"temperature": 0}, run_dir=tmp_path,
        resume=True, overwrite=True, listeners=(listener,), progress=None, prices=prices, max_cost_usd=0.5, epochs=2,
        reducer="max",
    )
    assert runner.settings == RunSettings(
        concurrency=3, max_retries=0, timeout_s=2.5, generation={"temperature": 0}, run_dir=tmp_path, resume=True,
        overwrite=True, listeners=(listener,), progress=None, prices=prices, max_cost_usd=0.5, epochs=2, reducer="max",
    )


def test_response_cache_reuses_answers_across_runs(project: Path) -> None:
    config = dummy_config(model={"type": "dummy", "args": {"latency_ms": 1}})
    config["runner"]["cache_dir"] = "cache"
    write_config(project / "cached.yaml", config)
    assert run_cli("run", "cached.yaml", "--run-dir", "a", "--no-track", cwd=project).returncode == 0
    assert run_cli("run", "cached.yaml", "--run-dir", "b", "--no-track", cwd=project).returncode == 0
    assert (project / "cache/responses.sqlite").exists()
    timings = [[orjson.loads(x)["cache_hit"] for x in (project / d / "timings.jsonl").read_bytes().splitlines()] for d in "ab"]
    assert timings[0] == [False] * 40 and timings[1] == [True] * 40
    assert (project / "a/records.jsonl").read_bytes() == (project / "b/records.jsonl").read_bytes()


@pytest.mark.parametrize(("concurrency", "window"), [(8, 256), (80, 320)])
def test_a_slow_example_holds_back_at_most_a_window_of_results(tmp_path: Path, concurrency: int, window: int) -> None:
    """Results are written in example order, so one slow answer keeps later ones in memory; the
    runner stops starting new examples a window (4 x concurrency, at least 256) ahead of the next to write."""
    import asyncio

    from insideLLMs import ProbeRunner, PromptSet, get_probe
    from insideLLMs.models.base import Completion, Model

    class SlowFirstTwo(Model):
        """q0 answers once the other workers have stopped starting examples; q1 answers after q0, once they
        have stopped again (no new start for 200 turns of the event loop, where an unblocked worker would
        start one at each turn)."""

        provider = "test"

        def __init__(self) -> None:
            super().__init__("slow-first-two")
            self.q0_done = False
            self.q1_done = False
            self.started_before_q0 = 0
            self.started_between = 0

        async def _until_nothing_starts(self) -> None:
            seen, still = -1, 0
            while still < 200:
                await asyncio.sleep(0)
                started = self.started_before_q0 + self.started_between
                still = still + 1 if started == seen else 0
                seen = started

        async def agenerate(self, messages: list, **generation: object) -> Completion:
            prompt = messages[-1]["content"]
            if prompt.startswith("What is 0 plus"):
                await self._until_nothing_starts()
                self.q0_done = True
            elif prompt.startswith("What is 1 plus"):
                while not self.q0_done:
                    await asyncio.sleep(0)
                await self._until_nothing_starts()
                self.q1_done = True
            elif not self.q0_done:
                self.started_before_q0 += 1
            elif not self.q1_done:
                self.started_between += 1
            return Completion(text=f"Answer: {prompt.split()[2]}")

    model = SlowFirstTwo()
    n = window + 44
    prompts = PromptSet.from_list([{"id": f"q{i:04d}", "prompt": f"What is {i} plus 0?", "answer": str(i)} for i in range(n)])
    runner = ProbeRunner(model, get_probe("logic"), concurrency=concurrency, run_dir=tmp_path / "run")
    records = runner.run(prompts)
    assert [r.example_id for r in records] == [f"q{i:04d}" for i in range(n)]
    assert runner.success_rate == 1.0 and all(r.passed for r in records)
    # q0 to q(window - 1) fill the window: the rest of them start while q0 runs, nothing beyond
    assert model.started_before_q0 == window - 2
    # with q0 written, q1 is next to write: the window reaches one further and only that one starts
    assert model.started_between == 1
    lines = (tmp_path / "run" / "records.jsonl").read_bytes().splitlines()
    assert [orjson.loads(line)["example_id"] for line in lines] == [f"q{i:04d}" for i in range(n)]


def test_record_dict_has_exactly_the_record_fields() -> None:
    from insideLLMs.rundir import RECORD_FIELDS, Record

    rec = Record("r", {"id": "m"}, {"id": "p"}, "e1", {"prompt": "x"}, [], "out", {"s": 1}, True, "success")
    assert tuple(rec.to_dict()) == RECORD_FIELDS
    assert Record.from_dict(rec.to_dict()) == rec


def test_run_prints_an_aligned_results_table(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "data.jsonl", qa_rows(1200))
    config = dummy_config(model={"type": "dummy", "args": {"model_name": "dummy", "canned_response": "2", "fail_every": 9}})
    write_config(tmp_path / "eval.yaml", config)
    result = run_cli("run", "eval.yaml", "--run-dir", "out", "--no-track", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("run ") and len(lines[0].split()[1]) == 16
    header, rule, row = lines[1], lines[2], lines[3]
    assert header.split() == ["model", "probe", "n", "success", "pass", "rate", "(95%", "CI)", "errors", "p50", "ms",
                              "tokens", "cost"]
    cells = row.split()
    tokens = json.loads((tmp_path / "out" / "summary.json").read_text())["totals"]["tokens"]
    assert cells[-2:] == [f"{tokens['prompt'] + tokens['completion']:,}", "$0"]  # the dummy runs here: free
    assert cells[:3] == ["dummy", "factuality", "1,200"]
    errors = int(cells[6].replace(",", ""))
    assert 0 < errors < 1200 and cells[3] == f"{(1200 - errors) / 1200:.0%}"
    assert cells[4:6] == ["0%", "(0–1)"]  # "2" is right for q00001 alone: at most 1 pass in ~1,000
    assert len(row) == len(header) == len(rule)  # the last column is right-aligned under its header
    assert lines[4] == "run directory: out" and lines[5] == f"report:        {Path('out') / 'report.html'}"
