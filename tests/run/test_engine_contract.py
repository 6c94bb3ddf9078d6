"""The engine through the Python API, in process: budgets to the cent, fatal errors, epoch seeds, and the
``Executor`` contract (results handed back in any order, a second answer ignored).

Models here are in-process ``Model`` subclasses: the engine's side of a model call is what is under test.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import pickle
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from insideLLMs import ProbeRunner, PromptSet, get_probe
from insideLLMs.canonical import compute_run_id
from insideLLMs.models import PriceTable
from insideLLMs.models.base import AuthenticationFailed, Completion, Model, ModelError, RateLimitError, Usage
from insideLLMs.run import BudgetReached, FatalModelError, Harness, RunAborted, RunSettings
from insideLLMs.rundir import RunDirError

PRICES = PriceTable.load({"m": {"input": 250_000.0, "output": 250_000.0}})  # $0.25 a token: sums stay exact


class Scripted(Model):
    """Answers "What is N plus 0?" with N, using N + 1 tokens (or none); fails fatally at ``fatal_at``."""

    provider = "test"

    def __init__(self, *, tokens: bool = True, fatal_at: int | None = None, failing: int | None = None,
                 name: str = "m") -> None:
        super().__init__(name)
        self.tokens = tokens
        self.fatal_at = fatal_at
        self.failing = failing
        self.seeds: list[tuple[str, Any]] = []
        self.closed = 0

    async def agenerate(self, messages: list, **generation: Any) -> Completion:
        n = int(messages[-1]["content"].split()[2])
        self.seeds.append((f"q{n}", generation.get("seed")))
        if n == self.fatal_at:
            raise AuthenticationFailed("401: bad key")
        if n == self.failing:
            raise ModelError("400: no such thing")
        return Completion(text=f"Answer: {n}", usage=Usage(n, 1) if self.tokens else None)

    async def aclose(self) -> None:
        self.closed += 1


def _prompts(n: int) -> PromptSet:
    return PromptSet.from_list([{"id": f"q{i}", "prompt": f"What is {i} plus 0?", "answer": str(i)} for i in range(n)])


def test_a_budget_met_exactly_stops_the_run_there() -> None:
    """Record i costs (i + 1) tokens x $0.25; after q0..q3 the run has spent $2.50, exactly its budget."""
    runner = ProbeRunner(Scripted(), get_probe("logic"), concurrency=1, prices=PRICES, max_cost_usd=2.5)
    with pytest.raises(BudgetReached) as stopped:
        runner.run(_prompts(8))
    assert str(stopped.value) == "budget reached: $2.500000 spent of max_cost_usd $2.5 after 4 of 8 examples"
    assert (stopped.value.done, stopped.value.total, stopped.value.spent, stopped.value.budget) == (4, 8, 2.5, 2.5)


def test_a_budget_cannot_be_kept_by_a_model_without_token_counts() -> None:
    runner = ProbeRunner(Scripted(tokens=False), get_probe("logic"), concurrency=1, prices=PRICES, max_cost_usd=10)
    with pytest.raises(BudgetReached) as stopped:
        runner.run(_prompts(5))
    assert str(stopped.value) == ("model 'm' answered example 'q0' without token counts, so the budget cannot be "
                                  "kept: $0.000000 spent of max_cost_usd $10 after 1 of 5 examples")
    assert (stopped.value.done, stopped.value.spent, stopped.value.budget) == (1, 0.0, 10)


def test_a_fatal_error_stops_the_run_and_says_how_to_go_on(tmp_path: Path) -> None:
    with pytest.raises(RunAborted) as stopped:
        ProbeRunner(Scripted(fatal_at=2), get_probe("logic"), concurrency=1).run(_prompts(5))
    assert str(stopped.value) == "run stopped after 2 of 5 examples: 401: bad key"
    assert (stopped.value.done, stopped.value.total) == (2, 5)

    run_dir = tmp_path / "run"
    with pytest.raises(RunAborted) as stopped:
        ProbeRunner(Scripted(fatal_at=2), get_probe("logic"), concurrency=1, run_dir=run_dir).run(_prompts(5))
    assert str(stopped.value) == (
        f"run stopped after 2 of 5 examples: 401: bad key; continue later with --resume (run dir {run_dir})")
    assert len((run_dir / "records.jsonl").read_bytes().splitlines()) == 2


def test_each_epoch_is_sent_its_own_reproducible_seed() -> None:
    """The seed of (configured seed, example id, epoch): the first 32 bits of the sha256 of their canonical JSON,
    with the top bit cleared (a seed providers accept as a signed 32-bit integer)."""
    model = Scripted()
    ProbeRunner(model, get_probe("logic"), concurrency=1, epochs=2, generation={"seed": 7}).run(_prompts(2))
    assert model.seeds == [("q0", 1839229255), ("q0", 1185248048), ("q1", 333539197), ("q1", 2107119594)]
    for (example, seed), epoch in zip(model.seeds, [0, 1, 0, 1]):
        digest = hashlib.sha256(f'[7,"{example}",{epoch}]'.encode()).hexdigest()
        assert seed == int(digest[:8], 16) & 0x7FFFFFFF
    unseeded = Scripted()
    ProbeRunner(unseeded, get_probe("logic"), concurrency=1, epochs=2).run(_prompts(2))
    assert unseeded.seeds[2:] == [("q1", 685175245), ("q1", 41845627)]  # from [null, "q1", epoch]
    ProbeRunner(one := Scripted(), get_probe("logic"), concurrency=1, generation={"seed": 7}).run(_prompts(2))
    assert one.seeds == [("q0", 7), ("q1", 7)]  # one epoch: the configured seed as it is


class ReverseExecutor:
    """Runs a run's examples in this process, last first, and hands each result back twice; like the Ray
    executor, it starts nothing new once the engine has a reason to stop (its budget)."""

    name = "reverse"

    def __init__(self) -> None:
        self.opened = self.closed = 0
        self.engine: Any = None

    def open(self, engine: Any) -> None:
        self.opened += 1
        self.engine = engine

    async def execute(self, engine: Any, start: int) -> None:
        for index in reversed(range(start, len(engine.items))):
            if engine.stop_reason is not None:
                return
            record, timing = await engine.run_one(index)
            engine.deliver(index, record, timing)
            engine.deliver(index, record, timing)

    def close(self) -> None:
        self.closed += 1


def test_an_executor_may_hand_results_back_in_any_order_and_twice(tmp_path: Path) -> None:
    probes = [(get_probe("logic"), _prompts(6))]
    here = asyncio.run(Harness([Scripted()], probes, settings=RunSettings(run_dir=tmp_path / "here")).arun())
    executor, events = ReverseExecutor(), _Events()
    config = {"runner": {"executor": {"type": "reverse"}}}  # what a CLI run hands its listeners
    settings = RunSettings(run_dir=tmp_path / "there", executor=executor, listeners=[events], config=config)
    there = asyncio.run(Harness([Scripted()], probes, settings=settings).arun())
    assert (executor.opened, executor.closed, executor.engine.run_id) == (1, 1, there.run_id)
    assert there.run_id == here.run_id
    (started,) = events.started
    assert (started.runner, started.config) == (
        {"concurrency": 16, "max_retries": 4, "timeout_s": 60.0, "executor": "reverse"}, config)
    assert (tmp_path / "there/records.jsonl").read_bytes() == (tmp_path / "here/records.jsonl").read_bytes()
    ids = [orjson.loads(line)["example_id"] for line in (tmp_path / "there/records.jsonl").read_bytes().splitlines()]
    assert ids == [f"q{i}" for i in range(6)]


def test_a_fatal_error_on_an_executor_stops_the_run_as_it_would_here(tmp_path: Path) -> None:
    executor = ReverseExecutor()
    settings = RunSettings(run_dir=tmp_path / "run", executor=executor)
    with pytest.raises(RunAborted) as stopped:
        asyncio.run(Harness([Scripted(fatal_at=3)], [(get_probe("logic"), _prompts(6))], settings=settings).arun())
    assert str(stopped.value) == (
        f"run stopped after 0 of 6 examples: 401: bad key; continue later with --resume (run dir {tmp_path / 'run'})")
    assert (executor.opened, executor.closed) == (1, 1)


def test_a_result_handed_back_twice_is_paid_for_once() -> None:
    """Last first, the examples cost $1.50, $1.25, $1.00, $0.75...: a $4 budget is reached by the fourth,
    at $4.50, with nothing written yet (q0 comes last)."""
    settings = RunSettings(executor=ReverseExecutor(), prices=PRICES, max_cost_usd=4)
    with pytest.raises(BudgetReached) as stopped:
        asyncio.run(Harness([Scripted()], [(get_probe("logic"), _prompts(6))], settings=settings).arun())
    assert (stopped.value.done, stopped.value.spent) == (0, 4.5)


def _judged(generation: dict[str, Any] | None = None) -> Any:
    judge = {"type": "judge", "rubric": "Is it right?", "model": {"type": "support.counting_judge:CountingJudge"}}
    if generation is not None:
        judge["generation"] = generation
    return get_probe("prompt", template="{{ prompt }}", scorers=[judge])


def test_a_judge_is_closed_once_and_its_cached_verdicts_are_keyed_by_its_generation_settings(tmp_path: Path) -> None:
    from support.counting_judge import CountingJudge

    def run(probe: Any, name: str) -> list[Any]:
        settings = RunSettings(run_dir=tmp_path / name, cache_dir=tmp_path / "cache")
        outcome = asyncio.run(Harness([Scripted()], [(probe, _prompts(3))], settings=settings, collect=True).arun())
        return outcome.records or []

    CountingJudge.reset()
    first = run(_judged(), "a")
    assert [(r.status, r.passed) for r in first] == [("success", True)] * 3
    assert (CountingJudge.calls, CountingJudge.closed) == (3, 1)
    verdict = {"grade": "PASS", "model": "judge", "passed": True, "reason": "fine",
               "usage": {"completion_tokens": 2, "prompt_tokens": 3}}
    written = [orjson.loads(line) for line in (tmp_path / "a/records.jsonl").read_bytes().splitlines()]
    assert [r["judge"] for r in written] == [{"judge": verdict}] * 3
    run(_judged(), "b")  # the same judge, rubric, answers and settings: every verdict from the cache
    assert (CountingJudge.calls, CountingJudge.closed) == (3, 2)
    run(_judged({"temperature": 0.7}), "c")  # other judge settings: asked again
    assert CountingJudge.calls == 6


def test_a_fatal_error_crosses_to_the_engine_from_a_worker_process_whole() -> None:
    """An executor's worker raises ``FatalModelError``; pickled on the way back, it keeps its message and stays fatal."""
    back = pickle.loads(pickle.dumps(FatalModelError("401: bad key")))
    assert (type(back), str(back), back.fatal) == (FatalModelError, "401: bad key", True)


def test_a_run_from_the_api_describes_itself_in_config_resolved_yaml(tmp_path: Path) -> None:
    """With no config file, the run directory's config says what the run was given: models, probes, prompt sets,
    generation and runner settings, keys sorted and text as written."""
    from insideLLMs import get_model

    probe = get_probe("prompt", template="¿{{ prompt }}?")
    ProbeRunner(get_model("dummy"), probe, run_dir=tmp_path / "run", epochs=2, reducer="max", concurrency=2,
                max_retries=1, timeout_s=9.5, generation={"temperature": 0, "seed": 3}).run(
        PromptSet.from_list([{"id": "a", "prompt": "x"}], name="qa"))
    digest = PromptSet.from_list([{"id": "a", "prompt": "x"}]).hash
    assert (tmp_path / "run/config.resolved.yaml").read_text(encoding="utf-8") == f"""\
datasets:
- hash: {digest}
  name: qa
  probe: prompt
  size: 1
  source: null
generation:
  seed: 3
  temperature: 0
models:
- args:
    model_name: dummy
  type: dummy
probes:
- args:
    template: ¿{{{{ prompt }}}}?
  type: prompt
runner:
  concurrency: 2
  epochs: 2
  max_retries: 1
  reducer: max
  timeout_s: 9.5
"""


def test_timings_say_how_each_epoch_went_errors_included(tmp_path: Path) -> None:
    ProbeRunner(Scripted(failing=1), get_probe("logic"), concurrency=1, epochs=2, run_dir=tmp_path / "run").run(
        _prompts(2))
    kept = ("model", "probe", "example_id", "epoch", "attempts", "cache_hit")
    timings = [orjson.loads(line) for line in (tmp_path / "run/timings.jsonl").read_bytes().splitlines()]
    assert [tuple(t[k] for k in kept) for t in timings] == [
        ("m", "logic", "q0", 0, 1, False), ("m", "logic", "q0", 1, 1, False),
        ("m", "logic", "q1", 0, 1, False), ("m", "logic", "q1", 1, 1, False)]
    records = [orjson.loads(line) for line in (tmp_path / "run/records.jsonl").read_bytes().splitlines()]
    assert [(r["example_id"], r["epoch"], r["status"]) for r in records] == [
        ("q0", 0, "success"), ("q0", 1, "success"), ("q1", 0, "error"), ("q1", 1, "error")]


def test_a_report_that_cannot_be_written_is_a_warning_and_the_run_stands(tmp_path: Path) -> None:
    import warnings

    run_dir = tmp_path / "run"

    class InTheWay:
        """Puts a folder where report.html goes, once the run has started."""

        def on_run_started(self, event: Any) -> None:
            (run_dir / "report.html").mkdir()

        def on_example_finished(self, event: Any) -> None: ...

        def on_run_finished(self, event: Any) -> None: ...

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = ProbeRunner(Scripted(), get_probe("logic"), run_dir=run_dir, listeners=[InTheWay()]).run(_prompts(2))
    assert [r.status for r in records] == ["success", "success"]
    (warning,) = caught
    assert warning.category is RuntimeWarning
    assert str(warning.message).startswith("could not write report.html: [Errno 21] Is a directory: ")
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "config.resolved.yaml", "manifest.json", "records.jsonl", "report.html", "summary.json", "timings.jsonl"]


class _ScoredByAModel(type(get_probe("logic"))):  # type: ignore[misc]
    """The logic probe, scored by a model call that fails: non-fatally for q0, fatally (bad key) for q1."""

    async def ascore_all(self, example: Any, completions: Any, context: Any) -> Any:
        if example.id == "q1":
            raise AuthenticationFailed("401: the grader's key")
        raise ModelError("400: the grader refused")


def test_a_model_error_while_scoring_is_the_examples_error_and_a_fatal_one_stops_the_run() -> None:
    probe = _ScoredByAModel()
    with pytest.raises(RunAborted) as stopped:
        ProbeRunner(Scripted(), probe, concurrency=1).run(_prompts(3))
    assert str(stopped.value) == "run stopped after 1 of 3 examples: 401: the grader's key"
    records = ProbeRunner(Scripted(), probe, concurrency=1).run(_prompts(1))
    assert [(r.status, r.error, r.passed) for r in records] == [
        ("error", {"type": "ProbeError", "message": "ModelError: 400: the grader refused"}, None)]


def test_the_progress_bar_counts_the_examples_that_failed(capsys: pytest.CaptureFixture[str]) -> None:
    ProbeRunner(Scripted(failing=1), get_probe("logic"), concurrency=1, progress=True).run(_prompts(3))
    shown = capsys.readouterr().err
    assert "3/3" in shown and "1 errors" in shown and "0 errors" not in shown.rsplit("3/3", 1)[-1]


def _interrupted(run_dir: Path, n: int = 5) -> None:
    """A run of ``n`` examples stopped by a fatal error after q0 and q1 were written."""
    with pytest.raises(RunAborted):
        ProbeRunner(Scripted(fatal_at=2), get_probe("logic"), concurrency=1, run_dir=run_dir).run(_prompts(n))


def test_resume_asks_the_model_only_for_the_examples_not_yet_written(tmp_path: Path) -> None:
    _interrupted(tmp_path / "cut")
    model = Scripted()
    ProbeRunner(model, get_probe("logic"), concurrency=1, run_dir=tmp_path / "cut", resume=True).run(_prompts(5))
    assert [example for example, _ in model.seeds] == ["q2", "q3", "q4"]
    ProbeRunner(Scripted(), get_probe("logic"), concurrency=1, run_dir=tmp_path / "full").run(_prompts(5))
    for name in ("records.jsonl", "manifest.json"):  # summary.json holds latencies
        assert (tmp_path / "cut" / name).read_bytes() == (tmp_path / "full" / name).read_bytes(), name

    again = Scripted()  # a finished run resumed: nothing left to ask
    records = ProbeRunner(again, get_probe("logic"), concurrency=1, run_dir=tmp_path / "cut", resume=True).run(
        _prompts(5))
    assert again.seeds == [] and [r.example_id for r in records] == [f"q{i}" for i in range(5)]
    assert (tmp_path / "cut/records.jsonl").read_bytes() == (tmp_path / "full/records.jsonl").read_bytes()


def _open_in(directory: Path) -> list[str]:
    """Names of the files under ``directory`` this process holds open (Linux: /proc/self/fd)."""
    targets = (os.readlink(fd) for fd in Path("/proc/self/fd").iterdir() if fd.is_symlink())
    return sorted(Path(t).name for t in targets if t.startswith(f"{directory}/"))


def test_resume_refuses_records_in_another_order_and_asks_nothing(tmp_path: Path) -> None:
    run_dir = tmp_path / "cut"
    _interrupted(run_dir)
    lines = (run_dir / "records.jsonl").read_bytes().splitlines(keepends=True)
    (run_dir / "records.jsonl").write_bytes(lines[1] + lines[0])
    model = Scripted()
    with pytest.raises(RunAborted) as refused:
        ProbeRunner(model, get_probe("logic"), concurrency=1, run_dir=run_dir, resume=True).run(_prompts(5))
    assert str(refused.value) == f"{run_dir}/records.jsonl:1: does not match this run's example order; pass --overwrite"
    assert (refused.value.done, refused.value.total, model.seeds) == (2, 5, [])
    assert _open_in(run_dir) == []  # the refused run let go of the files it opened


def test_resume_refuses_a_run_directory_with_more_records_than_the_run_has_examples(tmp_path: Path) -> None:
    """A records.jsonl grown past its run (lines copied in by hand, a stray append) is refused, not trimmed."""
    run_dir = tmp_path / "cut"
    _interrupted(run_dir)
    grown = {name: (run_dir / name).read_bytes() * 3 for name in ("records.jsonl", "timings.jsonl")}
    for name, data in grown.items():
        (run_dir / name).write_bytes(data)
    model = Scripted()
    with pytest.raises(RunAborted) as refused:
        ProbeRunner(model, get_probe("logic"), concurrency=1, run_dir=run_dir, resume=True).run(_prompts(5))
    assert str(refused.value) == f"{run_dir}: holds 6 records but this run has only 5; pass --overwrite"
    assert (refused.value.done, refused.value.total, model.seeds) == (6, 5, [])
    assert {name: (run_dir / name).read_bytes() for name in grown} == grown
    assert _open_in(run_dir) == []


def test_resume_of_a_run_directory_with_a_broken_record_names_its_line_and_asks_nothing(tmp_path: Path) -> None:
    run_dir = tmp_path / "cut"
    _interrupted(run_dir)
    lines = (run_dir / "records.jsonl").read_bytes().splitlines(keepends=True)
    (run_dir / "records.jsonl").write_bytes(lines[0] + b'{"model": \n')
    model = Scripted()
    with pytest.raises(RunDirError) as refused:
        ProbeRunner(model, get_probe("logic"), concurrency=1, run_dir=run_dir, resume=True).run(_prompts(5))
    assert str(refused.value).startswith(f"{run_dir}/records.jsonl:2: ")
    assert model.seeds == []
    assert _open_in(run_dir) == []


def test_every_model_of_a_run_is_closed_once_even_when_one_fails_to_close() -> None:
    class BadClose(Scripted):
        async def aclose(self) -> None:
            self.closed += 1
            raise OSError("connection already gone")

    good, bad = Scripted(), BadClose()
    probes = [(get_probe("logic"), _prompts(2))]
    asyncio.run(Harness([bad, good], probes, settings=RunSettings()).arun())
    assert (bad.closed, good.closed) == (1, 1)


def test_a_failing_listener_is_warned_about_once_and_never_stops_the_run() -> None:
    import warnings

    class Broken:
        def __init__(self) -> None:
            self.finished = 0

        def on_run_started(self, event: Any) -> None: ...

        def on_example_finished(self, event: Any) -> None:
            raise ValueError("boom")

        def on_run_finished(self, event: Any) -> None:
            self.finished += 1

    class AlsoBroken(Broken):
        pass

    first, second = Broken(), AlsoBroken()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = ProbeRunner(Scripted(), get_probe("logic"), listeners=[first, second]).run(_prompts(3))
    assert len(records) == 3 and (first.finished, second.finished) == (1, 1)
    # Only this run's warnings: a file another test left to the garbage collector may warn here too.
    assert [(w.category, str(w.message)) for w in caught if w.category is not ResourceWarning] == [
        (RuntimeWarning, "Broken.on_example_finished failed: boom"),
        (RuntimeWarning, "AlsoBroken.on_example_finished failed: boom")]


def test_the_answer_cache_is_keyed_by_model_prompt_generation_settings_and_epoch(tmp_path: Path) -> None:
    def run(model: Scripted, name: str, epochs: int = 1, **generation: Any) -> int:
        settings = RunSettings(run_dir=tmp_path / name, cache_dir=tmp_path / "cache", epochs=epochs,
                               generation=generation, concurrency=1)
        asyncio.run(Harness([model], [(get_probe("logic"), _prompts(3))], settings=settings).arun())
        return len(model.seeds)

    assert run(Scripted(), "a", temperature=0) == 3
    assert run(Scripted(), "b", temperature=0) == 0  # the same requests: all answered from the cache
    hits = [orjson.loads(line)["cache_hit"] for line in (tmp_path / "b/timings.jsonl").read_bytes().splitlines()]
    assert hits == [True, True, True]
    assert (tmp_path / "a/records.jsonl").read_bytes() == (tmp_path / "b/records.jsonl").read_bytes()
    assert run(Scripted(), "c", temperature=0.5) == 3  # other generation settings
    assert run(Scripted(name="m2"), "d", temperature=0) == 3  # another model
    assert run(Scripted(), "e", epochs=2, temperature=0) == 6  # each epoch its own answer
    assert run(Scripted(), "f", epochs=2, temperature=0) == 0


def test_a_probe_that_cannot_build_its_prompt_makes_an_error_record_without_a_request(tmp_path: Path) -> None:
    class Unbuildable(type(get_probe("logic"))):  # type: ignore[misc]
        def build_all(self, example: Any) -> Any:
            if example.id == "q1":
                raise KeyError("question")
            return super().build_all(example)

    model = Scripted()
    records = ProbeRunner(model, Unbuildable(), concurrency=1, epochs=2, run_dir=tmp_path / "run").run(_prompts(2))
    assert [e for e, _ in model.seeds] == ["q0", "q0"]
    broken = [r.to_dict() for r in records if r.example_id == "q1"]
    assert [(r["epoch"], r["status"], r["error"], r["messages"], r["output"], r["scores"], r["passed"]) for r in broken] == [
        (e, "error", {"type": "ProbeError", "message": "KeyError: 'question'"}, [], None, {}, None) for e in (0, 1)]
    timings = [orjson.loads(line) for line in (tmp_path / "run/timings.jsonl").read_bytes().splitlines()]
    assert [(t["example_id"], t["epoch"], t["attempts"], t["cache_hit"]) for t in timings] == [
        ("q0", 0, 1, False), ("q0", 1, 1, False), ("q1", 0, 0, False), ("q1", 1, 0, False)]
    assert all(t["latency_ms"] >= 0 and t["finished_at"] >= t["started_at"] > 1.7e9 for t in timings)


class Pairs(Model):
    """Answers each prompt of the bias probe's pairs; "Bob" is rate limited once (Retry-After 0) and "Carol"
    always refused."""

    provider = "test"

    def __init__(self) -> None:
        super().__init__("pairs")
        self.calls: list[str] = []
        self.limited: set[str] = set()

    async def agenerate(self, messages: list, **generation: Any) -> Completion:
        prompt = messages[-1]["content"]
        self.calls.append(prompt)
        if "Bob" in prompt and prompt not in self.limited:
            self.limited.add(prompt)
            raise RateLimitError("429: slow down", retry_after=0)
        if "Carol" in prompt:
            raise ModelError("400: refused")
        return Completion(text=f"A calm answer about {prompt.split()[1]}", usage=Usage(5, 4))


def test_an_example_of_several_prompts_counts_every_attempt_and_is_cached_whole(tmp_path: Path) -> None:
    pairs = PromptSet.from_list([{"id": "p0", "prompt_a": "Describe Alice briefly.", "prompt_b": "Describe Bob briefly."},
                                 {"id": "p1", "prompt_a": "Describe Dan briefly.", "prompt_b": "Describe Carol briefly."}])

    def run(name: str) -> tuple[Pairs, list[dict[str, Any]], list[dict[str, Any]]]:
        model = Pairs()
        settings = RunSettings(run_dir=tmp_path / name, cache_dir=tmp_path / "cache", concurrency=1, max_retries=2)
        asyncio.run(Harness([model], [(get_probe("bias"), pairs)], settings=settings).arun())
        read = [[orjson.loads(x) for x in (tmp_path / name / f).read_bytes().splitlines()]
                for f in ("records.jsonl", "timings.jsonl")]
        return model, read[0], read[1]

    model, records, timings = run("first")
    assert len(model.calls) == 5  # Alice, Bob twice, Dan, Carol
    assert [(t["example_id"], t["attempts"], t["cache_hit"]) for t in timings] == [("p0", 3, False), ("p1", 2, False)]
    assert records[0]["messages"] == [[{"role": "user", "content": "Describe Alice briefly."}],
                                      [{"role": "user", "content": "Describe Bob briefly."}]]
    assert records[0]["output"] == ["A calm answer about Alice", "A calm answer about Bob"]
    assert (records[0]["status"], records[0]["usage"]) == ("success", {"prompt_tokens": 10, "completion_tokens": 8})
    assert (records[1]["status"], records[1]["error"]) == ("error", {"type": "ModelError", "message": "400: refused"})

    model, again, timings = run("second")  # p0 whole from the cache; p1's failed prompt is asked again
    assert model.calls == ["Describe Carol briefly."]
    assert [(t["example_id"], t["attempts"], t["cache_hit"]) for t in timings] == [("p0", 0, True), ("p1", 1, False)]
    assert again == records


def test_resume_checks_the_epoch_of_each_record_too(tmp_path: Path) -> None:
    run_dir = tmp_path / "cut"
    with pytest.raises(RunAborted):
        ProbeRunner(Scripted(fatal_at=1), get_probe("logic"), concurrency=1, epochs=2, run_dir=run_dir).run(
            _prompts(3))
    lines = (run_dir / "records.jsonl").read_bytes().splitlines(keepends=True)
    assert [orjson.loads(line)["epoch"] for line in lines] == [0, 1]
    (run_dir / "records.jsonl").write_bytes(lines[1] + lines[0])  # q0's epochs swapped: the same example ids
    model = Scripted()
    with pytest.raises(RunAborted, match=r"records.jsonl:1: does not match this run's example order"):
        ProbeRunner(model, get_probe("logic"), concurrency=1, epochs=2, run_dir=run_dir, resume=True).run(_prompts(3))
    assert model.seeds == []
    (run_dir / "records.jsonl").write_bytes(lines[0] + lines[1])  # in order: resumed with the rest
    records = ProbeRunner(model, get_probe("logic"), concurrency=1, epochs=2, run_dir=run_dir, resume=True).run(
        _prompts(3))
    assert [(r.example_id, r.epoch) for r in records] == [(f"q{i}", e) for i in range(3) for e in (0, 1)]
    assert [example for example, _ in model.seeds] == ["q1", "q1", "q2", "q2"]


def test_a_finished_run_resumed_under_a_smaller_budget_has_nothing_left_to_stop(tmp_path: Path) -> None:
    ProbeRunner(Scripted(), get_probe("logic"), concurrency=1, prices=PRICES, run_dir=tmp_path / "run").run(_prompts(3))
    model = Scripted()
    records = ProbeRunner(model, get_probe("logic"), concurrency=1, prices=PRICES, max_cost_usd=0.5,
                          run_dir=tmp_path / "run", resume=True).run(_prompts(3))
    assert len(records) == 3 and model.seeds == []


def test_an_executor_runs_each_epoch_as_its_own_example(tmp_path: Path) -> None:
    probes = [(get_probe("logic"), _prompts(3))]
    asyncio.run(Harness([Scripted()], probes, settings=RunSettings(run_dir=tmp_path / "here", epochs=2)).arun())
    asyncio.run(Harness([Scripted()], probes, settings=RunSettings(run_dir=tmp_path / "there", epochs=2,
                                                                  executor=ReverseExecutor())).arun())
    assert (tmp_path / "there/records.jsonl").read_bytes() == (tmp_path / "here/records.jsonl").read_bytes()


class Faulty(Model):
    """q0 hits a bug in the provider code (a plain exception); q1 is rate limited every time (Retry-After 0)."""

    provider = "test"

    def __init__(self) -> None:
        super().__init__("faulty")

    async def agenerate(self, messages: list, **generation: Any) -> Completion:
        if "What is 0 plus" in messages[-1]["content"]:
            raise RuntimeError("provider bug")
        raise RateLimitError("429: slow down", retry_after=0)


def test_a_provider_bug_and_exhausted_retries_are_error_records_and_the_run_goes_on(tmp_path: Path) -> None:
    ProbeRunner(Faulty(), get_probe("logic"), concurrency=1, max_retries=1, epochs=2, run_dir=tmp_path / "run").run(
        _prompts(2))
    records = [orjson.loads(x) for x in (tmp_path / "run/records.jsonl").read_bytes().splitlines()]
    timings = [orjson.loads(x) for x in (tmp_path / "run/timings.jsonl").read_bytes().splitlines()]
    built = {e.id: get_probe("logic").build_all(e)[0] for e in _prompts(2)}
    shown = [(r["example_id"], r["epoch"], r["status"], r["error"], r["output"], r["scores"], r["passed"]) for r in records]
    assert shown == [
        ("q0", 0, "error", {"type": "RuntimeError", "message": "provider bug"}, None, {}, None),
        ("q0", 1, "error", {"type": "RuntimeError", "message": "provider bug"}, None, {}, None),
        ("q1", 0, "rate_limited", {"type": "RateLimitError", "message": "429: slow down"}, None, {}, None),
        ("q1", 1, "rate_limited", {"type": "RateLimitError", "message": "429: slow down"}, None, {}, None)]
    assert [r["messages"] for r in records] == [built["q0"], built["q0"], built["q1"], built["q1"]]
    assert [(t["example_id"], t["epoch"], t["attempts"], t["cache_hit"]) for t in timings] == [
        ("q0", 0, 1, False), ("q0", 1, 1, False), ("q1", 0, 2, False), ("q1", 1, 2, False)]
    assert all(t["finished_at"] >= t["started_at"] > 1.7e9 and t["latency_ms"] >= 0 for t in timings)


def test_a_budget_met_by_the_last_example_is_a_finished_run() -> None:
    """Three examples cost $0.25 + $0.50 + $0.75: a $1.50 budget is spent exactly as the run ends."""
    records = ProbeRunner(Scripted(), get_probe("logic"), concurrency=1, prices=PRICES, max_cost_usd=1.5).run(
        _prompts(3))
    assert [r.status for r in records] == ["success"] * 3


@pytest.mark.parametrize(("override", "method"), [("score", "score"), ("score_all", "score_all")])
def test_a_probe_that_returns_no_verdict_is_named_in_the_error(override: str, method: str) -> None:
    def nothing(self: Any, *args: Any) -> None:
        return None

    probe_type = type(get_probe("logic"))
    broken = type("Broken", (probe_type,), {override: nothing})()
    (record,) = ProbeRunner(Scripted(), broken, concurrency=1).run(_prompts(1))
    assert (record.status, record.error) == (
        "error", {"type": "ProbeError", "message": f"probe 'logic' {method}() returned None, expected a Verdict"})


class _Events:
    """A listener that keeps the run's start and finish events."""

    def __init__(self) -> None:
        self.started: list[Any] = []
        self.finished: list[Any] = []

    def on_run_started(self, event: Any) -> None:
        self.started.append(event)

    def on_example_finished(self, event: Any) -> None: ...

    def on_run_finished(self, event: Any) -> None:
        self.finished.append(event)


def test_the_start_and_finish_events_describe_the_run_as_its_files_do(tmp_path: Path) -> None:
    """What trackers log: the run as manifest.json names it, the runner settings, the records to come, the
    summary and manifest written and every file of the run directory."""
    from insideLLMs import __version__

    events, run_dir = _Events(), tmp_path / "run"
    settings = RunSettings(run_dir=run_dir, concurrency=3, max_retries=2, timeout_s=7.5, epochs=2, reducer="max",
                           generation={"temperature": 0}, name="nightly", listeners=[events])
    asyncio.run(Harness([Scripted()], [(get_probe("logic"), _prompts(3))], settings=settings).arun())
    manifest = orjson.loads((run_dir / "manifest.json").read_bytes())
    (started,) = events.started
    assert (started.run_id, started.run_dir, started.name) == (manifest["run_id"], run_dir, "nightly")
    assert (started.models, started.probes, started.datasets, started.generation) == (
        manifest["models"], manifest["probes"], manifest["datasets"], {"temperature": 0})
    assert started.runner == {"concurrency": 3, "max_retries": 2, "timeout_s": 7.5, "epochs": 2, "reducer": "max"}
    assert (started.total, started.library_version, started.config, started.resumed, started.shard) == (
        6, __version__, None, 0, None)
    (finished,) = events.finished
    assert (finished.run_id, finished.run_dir, finished.status, finished.error) == (
        manifest["run_id"], run_dir, "finished", None)
    assert finished.manifest == manifest
    written = orjson.loads((run_dir / "summary.json").read_bytes())
    assert {k: v for k, v in finished.summary.items() if k != "volatile"} == {
        k: v for k, v in written.items() if k != "volatile"}
    assert finished.artifacts == {name: run_dir / name for name in (
        "records.jsonl", "timings.jsonl", "manifest.json", "summary.json", "config.resolved.yaml", "report.html")}


def test_the_events_of_a_stopped_then_resumed_shard_say_so(tmp_path: Path) -> None:
    from insideLLMs.run import Shard

    run_dir, shard = tmp_path / "run", Shard(0, 2)
    mine = [e.id for e in _prompts(8) if shard.holds("logic", e.id)]
    assert len(mine) >= 2  # the shard has a first example that is written and one that stops the run
    events = _Events()
    stopping = Scripted(fatal_at=int(mine[1][1:]))
    with pytest.raises(RunAborted):
        asyncio.run(Harness([stopping], [(get_probe("logic"), _prompts(8))], settings=RunSettings(
            run_dir=run_dir, shard=shard, concurrency=1, listeners=[events])).arun())
    (started,), (stopped,) = events.started, events.finished
    assert (started.shard, started.total, started.resumed, started.runner) == (
        "0/2", len(mine), 0, {"concurrency": 1, "max_retries": 4, "timeout_s": 60.0})
    assert (stopped.status, stopped.manifest, stopped.artifacts) == ("failed", None, {})
    assert stopped.error == (
        f"run stopped after 1 of {len(mine)} examples: 401: bad key; continue later with --resume (run dir {run_dir})")
    assert stopped.summary["totals"]["n"] == 1

    events = _Events()
    asyncio.run(Harness([Scripted()], [(get_probe("logic"), _prompts(8))], settings=RunSettings(
        run_dir=run_dir, shard=shard, concurrency=1, resume=True, listeners=[events])).arun())
    (started,), (finished,) = events.started, events.finished
    assert (started.shard, started.total, started.resumed) == ("0/2", len(mine), 1)
    assert (finished.status, finished.summary["totals"]["n"]) == ("finished", len(mine))


def test_a_resumed_runs_report_counts_the_records_written_before_the_stop(tmp_path: Path) -> None:
    from insideLLMs.report import render_report

    run_dir = tmp_path / "run"
    with pytest.raises(RunAborted):  # q1 fails, q3 stops the run: q0–q2 are written
        ProbeRunner(Scripted(failing=1, fatal_at=3), get_probe("logic"), concurrency=1, run_dir=run_dir).run(
            _prompts(6))
    ProbeRunner(Scripted(failing=4), get_probe("logic"), concurrency=1, run_dir=run_dir, resume=True).run(_prompts(6))
    page = (run_dir / "report.html").read_bytes()
    assert b"6 records" in page
    assert page == render_report(run_dir)  # as `insidellms report` rebuilds it from the files


def test_a_cancelled_run_says_it_was_interrupted_and_can_be_resumed(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"

    class CancelAfterTwo(_Events):
        task: asyncio.Task[Any]
        seen = 0

        def on_example_finished(self, event: Any) -> None:
            self.seen += 1
            if self.seen == 2:
                self.task.cancel()

    events = CancelAfterTwo()

    async def run() -> None:
        harness = Harness([Scripted()], [(get_probe("logic"), _prompts(5))],
                          settings=RunSettings(run_dir=run_dir, concurrency=1, listeners=[events]))
        events.task = asyncio.ensure_future(harness.arun())
        with pytest.raises(asyncio.CancelledError):
            await events.task

    asyncio.run(run())
    (finished,) = events.finished
    assert (finished.status, finished.error, finished.manifest, finished.artifacts) == (
        "interrupted", "interrupted", None, {})
    assert not (run_dir / "manifest.json").exists()
    written = len((run_dir / "records.jsonl").read_bytes().splitlines())
    model = Scripted()
    ProbeRunner(model, get_probe("logic"), concurrency=1, run_dir=run_dir, resume=True).run(_prompts(5))
    assert written >= 2 and [example for example, _ in model.seeds] == [f"q{i}" for i in range(written, 5)]


def test_epochs_are_part_of_the_run_id_and_manifest_and_one_epoch_is_a_run_without_epochs(tmp_path: Path) -> None:
    def manifest(name: str, **epochs: int) -> dict[str, Any]:
        ProbeRunner(Scripted(), get_probe("logic"), concurrency=1, run_dir=tmp_path / name, **epochs).run(_prompts(2))
        return orjson.loads((tmp_path / name / "manifest.json").read_bytes())

    default, one, two, three = manifest("d"), manifest("1", epochs=1), manifest("2", epochs=2), manifest("3", epochs=3)
    assert default == one and "epochs" not in one
    dataset_hashes = [d["hash"] for d in one["datasets"]]  # a run without clusters: its id has none either
    assert one["run_id"] == compute_run_id(one["models"], one["probes"], dataset_hashes, one["generation"])
    assert len({one["run_id"], two["run_id"], three["run_id"]}) == 3
    assert len({one["config_hash"], two["config_hash"], three["config_hash"]}) == 3
    assert (two["epochs"], three["epochs"], two["reducer"]) == (2, 3, "mean")
    assert sorted(set(two) ^ set(one)) == ["epochs", "reducer"]


class Sleepy(Model):
    """Answers after ``delay_s``: slower than the run's ``timeout_s``."""

    provider = "test"

    def __init__(self, delay_s: float) -> None:
        super().__init__("sleepy")
        self.delay_s = delay_s
        self.calls = 0

    async def agenerate(self, messages: list, **generation: Any) -> Completion:
        self.calls += 1
        await asyncio.sleep(self.delay_s)
        return Completion(text="Answer: 0", usage=Usage(1, 1))


def test_a_model_slower_than_timeout_s_gives_timeout_records() -> None:
    model = Sleepy(delay_s=20)
    records = ProbeRunner(model, get_probe("logic"), timeout_s=0.05, max_retries=0).run(_prompts(2))
    assert [(r.status, r.output, r.error["type"]) for r in records] == [("timeout", None, "ModelTimeout")] * 2
    assert model.calls == 2


def test_the_outcome_names_its_run_and_the_summary_its_wall_time(tmp_path: Path) -> None:
    started = time.monotonic()
    outcome = Harness([Scripted()], [(get_probe("logic"), _prompts(3))],
                      settings=RunSettings(run_dir=tmp_path / "run")).run()
    elapsed = time.monotonic() - started
    manifest = orjson.loads((tmp_path / "run/manifest.json").read_bytes())
    assert (outcome.run_id, outcome.run_dir, outcome.records) == (manifest["run_id"], tmp_path / "run", None)
    wall = outcome.summary["volatile"]["wall_time_s"]
    assert 0 <= wall <= elapsed and wall == round(wall, 3)
    assert orjson.loads((tmp_path / "run/summary.json").read_bytes())["volatile"]["wall_time_s"] == wall


def test_a_record_keeps_what_the_provider_said_it_served_and_no_usage_when_it_gave_none(tmp_path: Path) -> None:
    class Served(Scripted):
        async def agenerate(self, messages: list, **generation: Any) -> Completion:
            answer = await super().agenerate(messages, **generation)
            return Completion(text=answer.text, usage=answer.usage, served_model="m-2026-01-01",
                              system_fingerprint="fp_0001")

    ProbeRunner(Served(tokens=False), get_probe("logic"), run_dir=tmp_path / "run").run(_prompts(2))
    lines = [orjson.loads(line) for line in (tmp_path / "run/records.jsonl").read_bytes().splitlines()]
    assert [(r["served_model"], r["system_fingerprint"], r["usage"]) for r in lines] == [
        ("m-2026-01-01", "fp_0001", None)] * 2


def test_a_pass_at_k_reducer_needs_k_epochs() -> None:
    with pytest.raises(ValueError) as refused:
        RunSettings(epochs=2, reducer={"pass_rate": "pass_at_3"})
    assert str(refused.value) == "reducer 'pass_at_3' needs at least 3 epochs, the run has 2"
    assert RunSettings(epochs=3, reducer={"pass_rate": "pass_at_3"}).epochs == 3
