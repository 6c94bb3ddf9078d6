"""The engine behind ``ProbeRunner`` and ``Harness``: one pass over a grid of model × probe cells.

Examples are sent with bounded concurrency, each call retried and
timed out by ``insideLLMs.run._retry``, results put back in example order and streamed to the run
directory and to listeners as they complete. A failed example becomes a record and the run goes
on; a fatal error (bad credentials, an endpoint that stays unreachable) stops the run at once and
leaves the run directory resumable. With a budget (``max_cost_usd``) the run stops as cleanly once
what its records cost reaches it (``BudgetReached``).
"""

from __future__ import annotations

import asyncio
import reprlib
import time
import warnings
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Protocol, Sequence

import yaml

from insideLLMs.rundir import RUN_FILES, Record, RunDirError, RunWriter, SummaryBuilder, Timing, record_cost
from insideLLMs.canonical import SCHEMA_VERSION, compute_run_id, dumps_bytes, hash_obj
from insideLLMs.datasets import Example, PromptSet
from insideLLMs.events import ExampleFinished, RunFinished, RunListener, RunStarted, RunStatus
from insideLLMs.models import PriceTable
from insideLLMs.models.base import Completion, Model, ModelError, Status
from insideLLMs.probes.base import Probe, Verdict
from insideLLMs.run._progress import Progress
from insideLLMs.run._retry import RetryPolicy, call_model
from insideLLMs.run._shards import POSITION, Shard
from insideLLMs.scorers import ScoreContext
from insideLLMs.stats import DEFAULT_REDUCER, Reducer
from insideLLMs.errors import InsideLLMsError, UserError


class RunAborted(InsideLLMsError):
    """The run stopped before the end; the run directory (if any) can be continued with ``--resume``."""

    def __init__(self, message: str, *, done: int, total: int) -> None:
        super().__init__(message)
        self.done = done
        self.total = total


class BudgetReached(RunAborted):
    """The run spent its budget (``max_cost_usd``) and stopped; the examples done so far are written and
    ``--resume`` with a higher budget goes on."""

    def __init__(self, message: str, *, done: int, total: int, spent: float, budget: float) -> None:
        super().__init__(message, done=done, total=total)
        self.spent = spent
        self.budget = budget


class BudgetError(UserError):
    """A budget that cannot be kept: a model without a price (found before any request)."""


@dataclass(frozen=True)
class Cell:
    """One model × one probe over its prompt set."""

    model: Model
    probe: Probe
    prompt_set: PromptSet


@dataclass
class RunSettings:
    concurrency: int = 16
    max_retries: int = 4
    timeout_s: float = 60.0
    generation: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None
    resume: bool = False
    overwrite: bool = False
    listeners: Sequence[RunListener] = ()
    progress: bool | None = False  # None: a bar when stderr is a terminal
    name: str | None = None
    config: dict[str, Any] | None = None  # the resolved, redacted config written to config.resolved.yaml
    report: bool = True
    cache_dir: Path | None = None  # reuse earlier answers to identical requests (opt-in)
    shard: Shard | None = None  # run only this shard's examples into a partial run directory (``merge`` joins them)
    prices: PriceTable | None = None  # None: the shipped price table alone
    max_cost_usd: float | None = None  # stop once the records cost this much (models and judges)
    epochs: int = 1  # ask each example this many times, each epoch its own record
    reducer: str | dict[str, str] | None = None  # how summary.json reduces an example's epochs (default: mean)
    executor: Executor | None = None  # where examples run: None runs them in this process (run._ray: a Ray cluster)

    def __post_init__(self) -> None:
        if self.run_dir is not None:
            self.run_dir = Path(self.run_dir)
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs must be a whole number >= 1, not {self.epochs!r}")
        reducers = self.reducer.values() if isinstance(self.reducer, dict) else [self.reducer or DEFAULT_REDUCER]
        for name in reducers:
            Reducer.parse(name, self.epochs)  # a ValueError that names the reducers there are


class Executor(Protocol):
    """Runs a share of a run's examples somewhere else and hands each result back to the engine.

    The engine stays the only writer of the run directory and the only caller of listeners: an executor
    calls ``engine.deliver(index, record, timing)`` for every example it finishes (in any order, a second
    answer for one is ignored) and starts no example ``engine.window`` or more ahead of ``engine.next_write``,
    so results wait in memory for at most a window.
    """

    name: str

    def open(self, engine: Engine) -> None:
        """Connect and start workers before anything is written (a failure here is the user's to fix)."""

    async def execute(self, engine: Engine, start: int) -> None:
        """Run examples ``start..`` of ``engine.items``; raise ``FatalModelError`` to stop the run."""

    def close(self) -> None:
        """Stop the workers; called once, however the run ended."""


@dataclass
class RunOutcome:
    run_id: str
    run_dir: Path | None
    summary: dict[str, Any]
    records: list[Record] | None


def library_version() -> str:
    from insideLLMs import __version__

    return __version__


def _unique(specs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    for spec in specs:
        if spec not in seen:
            seen.append(spec)
    return seen


def _run_identity(cells: Sequence[Cell], generation: dict[str, Any], epochs: int = 1) -> tuple[str, dict[str, Any]]:
    models = _unique(c.model.spec for c in cells)
    probes = _unique(c.probe.spec for c in cells)
    datasets = _unique({"probe": c.probe.name, **c.prompt_set.info} for c in cells)
    clusters = [d.get("cluster") for d in datasets]  # a named cluster field changes the records: and the run_id
    run_id = compute_run_id(models, probes, [d["hash"] for d in datasets], generation,
                            clusters if any(clusters) else None, epochs)
    identity = {"models": models, "probes": probes, "datasets": datasets, "generation": generation}
    if epochs > 1:  # one epoch keeps the manifest (and config_hash) of a run before epochs existed
        identity["epochs"] = epochs
    return run_id, identity


def epoch_seed(seed: int | None, example_id: str, epoch: int) -> int:
    """The seed sent with one epoch of one example: derived from (the configured seed, example id, epoch), so
    epochs sample differently and a rerun sends the same seeds (reproducible where the provider honours them)."""
    return int(hash_obj([seed, example_id, epoch])[:8], 16) & 0x7FFFFFFF


def _error_record(exc: BaseException) -> dict[str, str]:
    return {"type": type(exc).__name__, "message": str(exc)}


class _Listeners:
    """Calls every listener, never letting one break the run (warns once per listener)."""

    def __init__(self, listeners: Sequence[RunListener]) -> None:
        self._listeners = list(listeners)
        self._warned: set[int] = set()

    def __bool__(self) -> bool:
        return bool(self._listeners)

    def emit(self, method: str, event: Any) -> None:
        for listener in self._listeners:
            try:
                getattr(listener, method)(event)
            except Exception as exc:  # a listener must never fail the evaluation
                if id(listener) not in self._warned:
                    self._warned.add(id(listener))
                    warnings.warn(f"{type(listener).__name__}.{method} failed: {exc}", RuntimeWarning, stacklevel=2)


class Engine:
    def __init__(self, cells: Sequence[Cell], settings: RunSettings, collect: bool) -> None:
        self.cells = list(cells)
        self.settings = settings
        self.collect = collect
        self.generation = {k: v for k, v in settings.generation.items() if v is not None}
        self.policy = RetryPolicy(max_retries=settings.max_retries, timeout_s=settings.timeout_s)
        self.epochs = settings.epochs
        self.run_id, self.identity = _run_identity(self.cells, self.generation, self.epochs)
        # canonical order: model, probe (the cells), example, epoch
        self.items: list[tuple[Cell, Example, int]] = [
            (cell, example, epoch) for cell in self.cells for example in cell.prompt_set for epoch in range(self.epochs)
        ]
        self.full_total = len(self.items)  # records of the whole run, whichever shard this is
        #: with a shard: each item's position in the whole run (timings.jsonl carries it; merge orders by it)
        self.positions: list[int] | None = None
        if settings.shard is not None:
            shard = settings.shard
            kept = [(i, item) for i, item in enumerate(self.items) if shard.holds(item[0].probe.name, item[1].id)]
            self.positions = [i for i, _ in kept]
            self.items = [item for _, item in kept]
        # model and probe specs, built once per cell rather than once per record
        self._specs = {id(cell): (cell.model.spec, cell.probe.spec) for cell in self.cells}
        self.listeners = _Listeners(settings.listeners)
        self.cache = _open_cache(settings.cache_dir) if settings.cache_dir else None
        self.score_models: list[Model] = []  # models a scorer called (judges), closed with the run's
        self.score_context = ScoreContext(generate=self._generate)
        self.price_table = settings.prices if settings.prices is not None else PriceTable.load()
        self.prices = run_prices(self.cells, self.price_table)
        self.budget = settings.max_cost_usd
        check_budget(self.prices, self.budget)
        self.spent = 0.0
        self.stop_reason: str | None = None  # why workers take no new example (the budget)

    async def run(self) -> RunOutcome:
        settings = self.settings
        executor = settings.executor
        try:
            if executor is not None:
                executor.open(self)  # an unreachable cluster stops the run before its directory is touched
            return await self._run()
        finally:
            if executor is not None:
                executor.close()

    async def _run(self) -> RunOutcome:
        settings = self.settings
        writer = RunWriter(settings.run_dir, self.run_id, resume=settings.resume, overwrite=settings.overwrite) if settings.run_dir else None
        done = writer.prepare() if writer else 0
        self.summary = SummaryBuilder(self.run_id, self.epochs, settings.reducer, self.prices)
        self.report_data = _report_data() if writer and settings.report else None
        self.records: list[Record] | None = [] if self.collect else None
        if writer and done:
            try:
                self._take_in_written(writer, done)
            except BaseException:  # a refused or unreadable resume leaves the files as they were, and closed
                writer.close()
                raise
        self.writer = writer
        self.next_write = done
        self.pending: dict[int, tuple[Record, Timing]] = {}
        self.progress = Progress(len(self.items), done=done, enabled=settings.progress)
        started = time.monotonic()
        self.listeners.emit("on_run_started", self._started_event(done))
        status: RunStatus = "failed"
        error: str | None = None
        try:
            await self._execute(done)
            status = "finished"
        except RunAborted as exc:
            error = str(exc)
            raise
        except (asyncio.CancelledError, KeyboardInterrupt):
            status, error = "interrupted", "interrupted"
            raise
        finally:
            self.progress.close()
            if self.cache is not None:
                self.cache.close()
            await self.close_models()
            summary = self.summary.build(wall_time_s=time.monotonic() - started)
            manifest = None
            if writer:
                if status == "finished":
                    manifest = self._manifest(summary)
                    writer.finalize(manifest, summary, self._config_yaml())
                    if self.report_data is not None:
                        self.report_data.use_latencies(self.summary.latencies())
                        _write_report(writer.run_dir, self.report_data)
                else:
                    writer.close()
            self.listeners.emit("on_run_finished", self._finished_event(status, summary, manifest, error))
        return RunOutcome(self.run_id, settings.run_dir, summary, self.records)

    async def close_models(self) -> None:
        """Close the connections of the run's models and of the models its scorers called."""
        closing = _unique_models(self.cells)
        closing += [m for m in self.score_models if all(m is not c for c in closing)]
        await asyncio.gather(*(m.aclose() for m in closing), return_exceptions=True)

    def _take_in_written(self, writer: RunWriter, done: int) -> None:
        """Count what a resumed run had already written (in the summary, the budget, the report and the records),
        in one read that also checks each record is the example this run has at its place."""
        if done > len(self.items):
            raise RunAborted(
                f"{writer.run_dir}: holds {done} records but this run has only {len(self.items)}; pass --overwrite",
                done=done, total=len(self.items),
            )
        for index, rec in enumerate(writer.existing_records()):
            cell, example, epoch = self.items[index]
            if ((rec["model"]["id"], rec["probe"]["id"], rec["example_id"], rec.get("epoch"))
                    != (cell.model.model_id, cell.probe.name, example.id, self._epoch(epoch))):
                raise RunAborted(
                    f"{writer.run_dir}/records.jsonl:{index + 1}: does not match this run's example order; pass --overwrite",
                    done=done, total=len(self.items),
                )
            self.summary.add_record(rec)
            if self.budget is not None:
                self._spend(rec)
            if self.report_data is not None:
                self.report_data.add_record(rec)
            if self.records is not None:
                self.records.append(Record.from_dict(rec))
        for timing in writer.existing_timings():
            self.summary.add_timing(timing)

    async def _execute(self, start: int) -> None:
        if start >= len(self.items):
            return
        if self.stop_reason is not None:  # a resumed run that had already spent its budget
            self._stop_for_budget()
        self.next_index = start
        self.window = max(4 * self.settings.concurrency, 256)
        # Workers whose example is a full window ahead of the next one to write wait here, in index order.
        self.blocked: deque[tuple[int, asyncio.Future[None]]] = deque()
        try:
            async with asyncio.TaskGroup() as group:
                if self.settings.executor is not None:
                    group.create_task(self.settings.executor.execute(self, start))
                else:
                    for _ in range(min(self.settings.concurrency, len(self.items) - start)):
                        group.create_task(self._worker())
        except* RunDirError as eg:  # the run directory could not be written: the run stops, resumable
            raise eg.exceptions[0] from None
        except* FatalModelError as eg:  # from an executor's worker
            raise self._aborted(eg.exceptions[0]) from None
        except* _Fatal as eg:
            fatal = eg.exceptions[0]
            assert isinstance(fatal, _Fatal)
            raise self._aborted(fatal.cause) from None
        if self.stop_reason is not None and self.next_write < len(self.items):
            self._stop_for_budget()

    def _aborted(self, cause: BaseException) -> RunAborted:
        """What a fatal model error becomes: the run stops with what was written kept, resumable."""
        if self.writer:
            self.writer.flush()
        where = f"; continue later with --resume (run dir {self.writer.run_dir})" if self.writer else ""
        return RunAborted(
            f"run stopped after {self.next_write} of {len(self.items)} examples: {cause}{where}",
            done=self.next_write, total=len(self.items),
        )

    def _spend(self, record: dict[str, Any]) -> None:
        """Count what a record cost against the budget; past it (or unmeterable), workers take no new example."""
        assert self.budget is not None
        cost = record_cost(record, self.prices)
        if cost is None:
            self.stop_reason = (f"model {record['model']['id']!r} answered example {record['example_id']!r} "
                                "without token counts, so the budget cannot be kept")
            return
        self.spent += cost
        if self.spent >= self.budget and self.stop_reason is None:
            self.stop_reason = "budget"

    def _stop_for_budget(self) -> None:
        assert self.budget is not None and self.stop_reason is not None
        if self.writer:
            self.writer.flush()
        done, total = self.next_write, len(self.items)
        why = ("budget reached" if self.stop_reason == "budget" else self.stop_reason)
        raise BudgetReached(
            f"{why}: ${self.spent:.6f} spent of max_cost_usd ${self.budget:g} after {done} of {total} examples",
            done=done, total=total, spent=self.spent, budget=self.budget,
        )

    async def _worker(self) -> None:
        while self.next_index < len(self.items):
            if self.stop_reason is not None:  # over budget: what is in flight finishes, nothing new starts
                return
            index = self.next_index
            self.next_index += 1
            await self.room(index)
            cell, example, epoch = self.items[index]
            record, timing = await self._one(cell, example, self._epoch(epoch))
            self.deliver(index, record, timing)

    async def room(self, index: int) -> None:
        """Wait until example ``index`` is within the write window (a window ahead of the next to write)."""
        if index - self.next_write >= self.window:
            room = asyncio.get_running_loop().create_future()
            self.blocked.append((index, room))
            await room

    def deliver(self, index: int, record: Record, timing: Timing) -> None:
        """Example ``index`` is done: count its cost against the budget, write it and every result now next in
        example order."""
        if index < self.next_write or index in self.pending:  # already written: a re-run's second answer
            return
        if self.budget is not None:
            self._spend(record.to_dict())
        self.pending[index] = (record, timing)
        self._drain()

    async def run_one(self, index: int) -> tuple[Record, Timing]:
        """Run example ``index`` of ``items`` (an executor's worker runs its share through this)."""
        cell, example, epoch = self.items[index]
        try:
            return await self._one(cell, example, self._epoch(epoch))
        except _Fatal as fatal:
            raise FatalModelError(str(fatal.cause)) from None

    def _wake_blocked(self) -> None:
        """Let waiting workers go on once their example is within the window again."""
        while self.blocked and self.blocked[0][0] - self.next_write < self.window:
            _, room = self.blocked.popleft()
            if not room.done():
                room.set_result(None)

    def _epoch(self, epoch: int) -> int | None:
        """The epoch as records carry it: None in a run of one epoch (its records keep their bytes)."""
        return epoch if self.epochs > 1 else None

    def _generation_for(self, example: Example, epoch: int | None) -> dict[str, Any]:
        if epoch is None:
            return self.generation
        return self.generation | {"seed": epoch_seed(self.generation.get("seed"), example.id, epoch)}

    async def _one(self, cell: Cell, example: Example, epoch: int | None = None) -> tuple[Record, Timing]:
        wall_start, t0 = time.time(), time.perf_counter()
        attempts = 0
        cache_hits = 0
        model_spec, probe_spec = self._specs[id(cell)]
        generation = self._generation_for(example, epoch)
        base = dict(run_id=self.run_id, model=model_spec, probe=probe_spec, example_id=example.id, input=example.data)
        if example.cluster is not None:
            base["cluster"] = example.cluster
        if epoch is not None:
            base["epoch"] = epoch
        try:
            conversations = cell.probe.build_all(example)
        except Exception as exc:
            record = Record(**base, messages=[], output=None, scores={}, passed=None, status="error",
                            error={"type": "ProbeError", "message": f"{type(exc).__name__}: {exc}"})
            return record, self._timing(cell, example, epoch, t0, wall_start, 0)
        messages: list[Any] = conversations[0] if len(conversations) == 1 else conversations
        completions: list[Completion] = []
        try:
            for conversation in conversations:
                key = self.cache.key(cell.model.spec, conversation, generation, epoch) if self.cache is not None else None
                if key is not None and (cached := self.cache.get(key)) is not None:
                    completions.append(cached)
                    cache_hits += 1
                    continue
                completion, n = await call_model(cell.model, conversation, generation, self.policy)
                attempts += n
                completions.append(completion)
                if key is not None:
                    self.cache.put(key, completion)
        except ModelError as exc:
            attempts += getattr(exc, "attempts", 1)
            if exc.fatal:
                raise _Fatal(exc) from None
            record = Record(**base, messages=messages, output=None, scores={}, passed=None,
                            status=exc.status, error=_error_record(exc))
            return record, self._timing(cell, example, epoch, t0, wall_start, attempts)
        except Exception as exc:  # a provider bug must not end the run
            record = Record(**base, messages=messages, output=None, scores={}, passed=None,
                            status="error", error=_error_record(exc))
            return record, self._timing(cell, example, epoch, t0, wall_start, max(attempts, 1))
        verdict, score_error = await _score(cell.probe, example, completions, self.score_context)
        first = completions[0]
        usage = None
        if len(completions) == 1:
            if first.usage:
                usage = {"prompt_tokens": first.usage.prompt_tokens, "completion_tokens": first.usage.completion_tokens}
        elif all(c.usage for c in completions):
            usage = {
                "prompt_tokens": sum(c.usage.prompt_tokens for c in completions),  # type: ignore[union-attr]
                "completion_tokens": sum(c.usage.completion_tokens for c in completions),  # type: ignore[union-attr]
            }
        output: str | list[str] = first.text if len(completions) == 1 else [c.text for c in completions]
        status: Status = "success" if verdict else "error"
        if verdict is not None and verdict.judge_error is not None:  # a verdict, but no usable judgement
            status, score_error = "judge_error", {"type": "JudgeError", "message": verdict.judge_error}
        record = Record(
            **base, messages=messages, output=output,
            scores=dict(verdict.scores) if verdict else {},
            passed=verdict.passed if verdict else None,
            status=status,
            error=score_error,
            usage=usage, served_model=first.served_model, system_fingerprint=first.system_fingerprint,
            judge=verdict.judge if verdict else None,
        )
        return record, self._timing(cell, example, epoch, t0, wall_start, attempts,
                                    cache_hit=cache_hits == len(conversations))

    async def _generate(self, model: Model, messages: list[Any], generation: dict[str, Any]) -> Completion:
        """A scorer's own model call (the judge's): the same retries, time limits and response cache as the
        graded model's, keyed by the judge model's spec, its messages (rubric and judged output included) and
        its generation settings."""
        if all(model is not m for m in self.score_models):
            self.score_models.append(model)
        key = self.cache.key(model.spec, messages, generation) if self.cache is not None else None
        if self.cache is not None and key is not None and (cached := self.cache.get(key)) is not None:
            return cached
        completion, _ = await call_model(model, messages, generation, self.policy)
        if self.cache is not None and key is not None:
            self.cache.put(key, completion)
        return completion

    @staticmethod
    def _timing(cell: Cell, example: Example, epoch: int | None, t0: float, wall_start: float, attempts: int,
                cache_hit: bool = False) -> Timing:
        return Timing(
            model_id=cell.model.model_id, probe_id=cell.probe.name, example_id=example.id,
            latency_ms=(time.perf_counter() - t0) * 1000.0, attempts=attempts, cache_hit=cache_hit,
            started_at=wall_start, finished_at=time.time(), epoch=epoch,
        )

    def _drain(self) -> None:
        """Write every result that is next in example order."""
        while self.next_write in self.pending:
            record, timing = self.pending.pop(self.next_write)
            record_dict = record.to_dict()
            timing_dict = timing.to_dict()
            if self.positions is not None:
                timing_dict[POSITION] = self.positions[self.next_write]
            if self.writer:
                self.writer.write(dumps_bytes(record_dict) + b"\n", dumps_bytes(timing_dict) + b"\n")
            self.summary.add_record(record_dict)
            self.summary.add_timing(timing_dict)
            if self.report_data is not None:
                self.report_data.add_record(record_dict)
            if self.records is not None:
                self.records.append(record)
            self.progress.advance(record.status != "success")
            if self.listeners:  # no event is built when nothing listens
                self.listeners.emit("on_example_finished", ExampleFinished(self.next_write, record, timing))
            self.next_write += 1
        if self.blocked:
            self._wake_blocked()

    # -- events and end-of-run files ------------------------------------------------------------

    def _started_event(self, done: int) -> RunStarted:
        s = self.settings
        return RunStarted(
            run_id=self.run_id, run_dir=s.run_dir, name=s.name,
            models=self.identity["models"], probes=self.identity["probes"], datasets=self.identity["datasets"],
            generation=self.generation,
            runner={"concurrency": s.concurrency, "max_retries": s.max_retries, "timeout_s": s.timeout_s,
                    **({"executor": s.executor.name} if s.executor is not None else {})}
            | self._epoch_settings(),
            total=len(self.items), library_version=library_version(), config=s.config, resumed=done,
            shard=None if s.shard is None else str(s.shard),
        )

    def _finished_event(
        self, status: RunStatus, summary: dict[str, Any], manifest: dict[str, Any] | None, error: str | None
    ) -> RunFinished:
        run_dir = self.settings.run_dir
        artifacts = {}
        if run_dir and status == "finished":
            artifacts = {name: run_dir / name for name in RUN_FILES if (run_dir / name).exists()}
        return RunFinished(self.run_id, run_dir, status, summary, manifest, artifacts, error)

    def _epoch_settings(self) -> dict[str, Any]:
        """``epochs`` and ``reducer`` of a run with epochs (nothing for one epoch: its files keep their bytes)."""
        if self.epochs == 1:
            return {}
        return {"epochs": self.epochs, "reducer": self.settings.reducer or DEFAULT_REDUCER}

    def _manifest(self, summary: dict[str, Any]) -> dict[str, Any]:
        shard = self.settings.shard
        return {
            **({} if shard is None else {"shard": {"index": shard.index, "count": shard.count,
                                                   "run_records": self.full_total}}),
            "run_id": self.run_id,
            "schema_version": SCHEMA_VERSION,
            "library_version": library_version(),
            "config_hash": hash_obj(self.identity),
            **self.identity,
            **self._epoch_settings(),
            "counts": {"records": summary["totals"]["n"], "by_status": summary["totals"]["status_counts"]},
            "pricing": {**self.price_table.describe(), "models": self.prices},
            "files": list(RUN_FILES),
        }

    def _config_yaml(self) -> str:
        config = self.settings.config
        if config is None:  # API use: describe the run from what it was given
            config = {
                "models": [{"type": m["provider"], "args": m["params"] | {"model_name": m["id"]}} for m in self.identity["models"]],
                "probes": [{"type": p["id"], "args": p["params"]} for p in self.identity["probes"]],
                "datasets": self.identity["datasets"],
                "generation": self.generation,
                "runner": {"concurrency": self.settings.concurrency, "max_retries": self.settings.max_retries,
                           "timeout_s": self.settings.timeout_s} | self._epoch_settings(),
            }
        return yaml.safe_dump(config, sort_keys=True, allow_unicode=True)


async def _score(
    probe: Probe, example: Example, completions: list[Completion], context: ScoreContext
) -> tuple[Verdict | None, dict[str, str] | None]:
    """The probe's verdict, or the error record when scoring raised or returned something else. A fatal
    error of a judge's model (bad credentials) stops the run as the graded model's would."""
    try:
        verdict = await probe.ascore_all(example, completions, context)
    except ModelError as exc:
        if exc.fatal:
            raise _Fatal(exc) from None
        return None, {"type": "ProbeError", "message": f"{type(exc).__name__}: {exc}"}
    except Exception as exc:
        return None, {"type": "ProbeError", "message": f"{type(exc).__name__}: {exc}"}
    if not isinstance(verdict, Verdict):
        method = "score" if type(probe).score_all is Probe.score_all else "score_all"
        got = "None" if verdict is None else f"{reprlib.repr(verdict)} ({type(verdict).__name__})"
        return None, {"type": "ProbeError", "message": f"probe {probe.name!r} {method}() returned {got}, expected a Verdict"}
    return verdict, None


class _Fatal(Exception):
    def __init__(self, cause: ModelError) -> None:
        super().__init__(str(cause))
        self.cause = cause


class FatalModelError(ModelError):
    """A fatal model error raised where an executor's worker ran the example; it stops the run as it would here.

    It keeps only the message, so it crosses process boundaries (pickled) whatever the original error held.
    """

    fatal = True

    def __init__(self, message: str) -> None:
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (FatalModelError, (str(self),))


def _open_cache(directory: Path) -> Any:
    from insideLLMs.run._cache import ResponseCache  # sqlite3 only when the cache is on

    return ResponseCache(directory)


def run_prices(cells: Sequence[Cell], table: PriceTable) -> dict[str, dict[str, Any] | None]:
    """The price of every model a run calls (the graded models and their judges), None where unknown."""
    models = [(cell.model.model_id, cell.model.provider) for cell in cells]
    models += [(judge.model_id, judge.provider) for cell in cells for judge in cell.probe.judge_models]
    return table.prices(dict.fromkeys(models))


def check_budget(prices: dict[str, dict[str, Any] | None], budget: float | None) -> None:
    """A budget needs every model's price: ``BudgetError`` names those without one (before any request)."""
    unpriced = [name for name, price in prices.items() if price is None]
    if budget is not None and unpriced:
        raise BudgetError(
            f"no price for {', '.join(map(repr, unpriced))}, so a budget of ${budget:g} cannot be kept: "
            "give each its price under 'pricing:' in the config (USD per million input and output tokens)"
        )


def _unique_models(cells: Sequence[Cell]) -> list[Model]:
    models: list[Model] = []
    for cell in cells:
        if all(cell.model is not m for m in models):
            models.append(cell.model)
    return models


def _report_data() -> Any:
    """Gathers what report.html shows while records are written (None without the report module)."""
    try:
        from insideLLMs.report import ReportData
    except ImportError:
        return None
    return ReportData()


def _write_report(run_dir: Path, data: Any) -> None:
    from insideLLMs.report import write_report

    try:
        write_report(run_dir, data)
    except Exception as exc:  # the report is a view; the records are what matter
        warnings.warn(f"could not write report.html: {exc}", RuntimeWarning, stacklevel=2)
