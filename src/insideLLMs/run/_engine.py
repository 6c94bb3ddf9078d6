"""The engine behind ``ProbeRunner`` and ``Harness``: one pass over a grid of model × probe cells.

Examples are sent with bounded concurrency, each call retried and
timed out by ``insideLLMs.run._retry``, results put back in example order and streamed to the run
directory and to listeners as they complete. A failed example becomes a record and the run goes
on; a fatal error (bad credentials, an endpoint that stays unreachable) stops the run at once and
leaves the run directory resumable.
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

from insideLLMs.rundir import RUN_FILES, Record, RunDirError, RunWriter, SummaryBuilder, Timing
from insideLLMs.canonical import SCHEMA_VERSION, compute_run_id, dumps_bytes, hash_obj
from insideLLMs.datasets import Example, PromptSet
from insideLLMs.events import ExampleFinished, RunFinished, RunListener, RunStarted, RunStatus
from insideLLMs.models.base import Completion, Model, ModelError, Status
from insideLLMs.probes.base import Probe, Verdict
from insideLLMs.run._progress import Progress
from insideLLMs.run._retry import RetryPolicy, call_model
from insideLLMs.scorers import ScoreContext
from insideLLMs.errors import InsideLLMsError


class RunAborted(InsideLLMsError):
    """The run stopped before the end; the run directory (if any) can be continued with ``--resume``."""

    def __init__(self, message: str, *, done: int, total: int) -> None:
        super().__init__(message)
        self.done = done
        self.total = total


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
    executor: Executor | None = None  # where examples run: None runs them in this process (run._ray: a Ray cluster)

    def __post_init__(self) -> None:
        if self.run_dir is not None:
            self.run_dir = Path(self.run_dir)


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


def _run_identity(cells: Sequence[Cell], generation: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    models = _unique(c.model.spec for c in cells)
    probes = _unique(c.probe.spec for c in cells)
    datasets = _unique({"probe": c.probe.name, **c.prompt_set.info} for c in cells)
    clusters = [d.get("cluster") for d in datasets]  # a named cluster field changes the records: and the run_id
    run_id = compute_run_id(models, probes, [d["hash"] for d in datasets], generation,
                            clusters if any(clusters) else None)
    identity = {"models": models, "probes": probes, "datasets": datasets, "generation": generation}
    return run_id, identity


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
        self.run_id, self.identity = _run_identity(self.cells, self.generation)
        self.items: list[tuple[Cell, Example]] = [
            (cell, example) for cell in self.cells for example in cell.prompt_set
        ]
        # model and probe specs, built once per cell rather than once per record
        self._specs = {id(cell): (cell.model.spec, cell.probe.spec) for cell in self.cells}
        self.listeners = _Listeners(settings.listeners)
        self.cache = _open_cache(settings.cache_dir) if settings.cache_dir else None
        self.score_models: list[Model] = []  # models a scorer called (judges), closed with the run's
        self.score_context = ScoreContext(generate=self._generate)

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
        self._check_resumable(writer, done)
        self.summary = SummaryBuilder(self.run_id)
        self.report_data = _report_data() if writer and settings.report else None
        self.records: list[Record] | None = [] if self.collect else None
        if writer and done:
            for rec in writer.existing_records():
                self.summary.add_record(rec)
                if self.report_data is not None:
                    self.report_data.add_record(rec)
                if self.records is not None:
                    self.records.append(Record.from_dict(rec))
            for timing in writer.existing_timings():
                self.summary.add_timing(timing)
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

    def _check_resumable(self, writer: RunWriter | None, done: int) -> None:
        if not writer or not done:
            return
        if done > len(self.items):
            raise RunAborted(
                f"{writer.run_dir}: holds {done} records but this run has only {len(self.items)}; pass --overwrite",
                done=done, total=len(self.items),
            )
        for index, rec in enumerate(writer.existing_records()):
            cell, example = self.items[index]
            if (rec["model"]["id"], rec["probe"]["id"], rec["example_id"]) != (cell.model.model_id, cell.probe.name, example.id):
                raise RunAborted(
                    f"{writer.run_dir}/records.jsonl:{index + 1}: does not match this run's example order; pass --overwrite",
                    done=done, total=len(self.items),
                )

    async def _execute(self, start: int) -> None:
        if start >= len(self.items):
            return
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

    def _aborted(self, cause: BaseException) -> RunAborted:
        """What a fatal model error becomes: the run stops with what was written kept, resumable."""
        if self.writer:
            self.writer.flush()
        where = f"; continue later with --resume (run dir {self.writer.run_dir})" if self.writer else ""
        return RunAborted(
            f"run stopped after {self.next_write} of {len(self.items)} examples: {cause}{where}",
            done=self.next_write, total=len(self.items),
        )

    async def _worker(self) -> None:
        while self.next_index < len(self.items):
            index = self.next_index
            self.next_index += 1
            await self.room(index)
            cell, example = self.items[index]
            record, timing = await self._one(cell, example)
            self.deliver(index, record, timing)

    async def room(self, index: int) -> None:
        """Wait until example ``index`` is within the write window (a window ahead of the next to write)."""
        if index - self.next_write >= self.window:
            room = asyncio.get_running_loop().create_future()
            self.blocked.append((index, room))
            await room

    def deliver(self, index: int, record: Record, timing: Timing) -> None:
        """Example ``index`` is done: write it and every result now next in example order."""
        if index < self.next_write or index in self.pending:  # already written: a re-run's second answer
            return
        self.pending[index] = (record, timing)
        self._drain()

    async def run_one(self, index: int) -> tuple[Record, Timing]:
        """Run example ``index`` of ``items`` (an executor's worker runs its share through this)."""
        cell, example = self.items[index]
        try:
            return await self._one(cell, example)
        except _Fatal as fatal:
            raise FatalModelError(str(fatal.cause)) from None

    def _wake_blocked(self) -> None:
        """Let waiting workers go on once their example is within the window again."""
        while self.blocked and self.blocked[0][0] - self.next_write < self.window:
            _, room = self.blocked.popleft()
            if not room.done():
                room.set_result(None)

    async def _one(self, cell: Cell, example: Example) -> tuple[Record, Timing]:
        wall_start, t0 = time.time(), time.perf_counter()
        attempts = 0
        cache_hits = 0
        model_spec, probe_spec = self._specs[id(cell)]
        base = dict(run_id=self.run_id, model=model_spec, probe=probe_spec, example_id=example.id, input=example.data)
        if example.cluster is not None:
            base["cluster"] = example.cluster
        try:
            conversations = cell.probe.build_all(example)
        except Exception as exc:
            record = Record(**base, messages=[], output=None, scores={}, passed=None, status="error",
                            error={"type": "ProbeError", "message": f"{type(exc).__name__}: {exc}"})
            return record, self._timing(cell, example, t0, wall_start, 0)
        messages: list[Any] = conversations[0] if len(conversations) == 1 else conversations
        completions: list[Completion] = []
        try:
            for conversation in conversations:
                if self.cache is not None and (cached := self._cached(cell.model, conversation)) is not None:
                    completions.append(cached)
                    cache_hits += 1
                    continue
                completion, n = await call_model(cell.model, conversation, self.generation, self.policy)
                attempts += n
                completions.append(completion)
                if self.cache is not None:
                    self.cache.put(self.cache.key(cell.model.spec, conversation, self.generation), completion)
        except ModelError as exc:
            attempts += getattr(exc, "attempts", 1)
            if exc.fatal:
                raise _Fatal(exc) from None
            record = Record(**base, messages=messages, output=None, scores={}, passed=None,
                            status=exc.status, error=_error_record(exc))
            return record, self._timing(cell, example, t0, wall_start, attempts)
        except Exception as exc:  # a provider bug must not end the run
            record = Record(**base, messages=messages, output=None, scores={}, passed=None,
                            status="error", error=_error_record(exc))
            return record, self._timing(cell, example, t0, wall_start, max(attempts, 1))
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
        return record, self._timing(cell, example, t0, wall_start, attempts, cache_hit=cache_hits == len(conversations))

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

    def _cached(self, model: Model, conversation: list[Any]) -> Completion | None:
        if self.cache is None:
            return None
        return self.cache.get(self.cache.key(model.spec, conversation, self.generation))

    @staticmethod
    def _timing(cell: Cell, example: Example, t0: float, wall_start: float, attempts: int, cache_hit: bool = False) -> Timing:
        return Timing(
            model_id=cell.model.model_id, probe_id=cell.probe.name, example_id=example.id,
            latency_ms=(time.perf_counter() - t0) * 1000.0, attempts=attempts, cache_hit=cache_hit,
            started_at=wall_start, finished_at=time.time(),
        )

    def _drain(self) -> None:
        """Write every result that is next in example order."""
        while self.next_write in self.pending:
            record, timing = self.pending.pop(self.next_write)
            record_dict = record.to_dict()
            timing_dict = timing.to_dict()
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
                    **({"executor": s.executor.name} if s.executor is not None else {})},
            total=len(self.items), library_version=library_version(), config=s.config, resumed=done,
        )

    def _finished_event(
        self, status: RunStatus, summary: dict[str, Any], manifest: dict[str, Any] | None, error: str | None
    ) -> RunFinished:
        run_dir = self.settings.run_dir
        artifacts = {}
        if run_dir and status == "finished":
            artifacts = {name: run_dir / name for name in RUN_FILES if (run_dir / name).exists()}
        return RunFinished(self.run_id, run_dir, status, summary, manifest, artifacts, error)

    def _manifest(self, summary: dict[str, Any]) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "schema_version": SCHEMA_VERSION,
            "library_version": library_version(),
            "config_hash": hash_obj(self.identity),
            **self.identity,
            "counts": {"records": summary["totals"]["n"], "by_status": summary["totals"]["status_counts"]},
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
                           "timeout_s": self.settings.timeout_s},
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
