"""The ``ray`` executor: a run's examples split across Ray actors, its run directory written here.

This process (the driver) keeps what makes a run one run: the engine's single writer of the run directory, in
canonical order, and its listeners (so tracking sees one run). Each actor (``_ShareWorker``) holds the run's cells
and runs examples through the engine's own per-example code (``Engine.run_one``: probe, model call with retries,
time limit and cache, scorers including the judge) with its share of ``runner.concurrency``: the total stays what
the config says, however many workers. The driver hands out chunks of example indices and each chunk's results
stream back as they finish. A chunk whose actor dies goes back to the queue, so its unfinished examples run again
on another worker (or on the one started in its place), and the engine writes a result that arrives twice only once.

``ray`` is an optional extra, imported only here and only when a run uses this executor.
"""

from __future__ import annotations

import asyncio
import heapq
import os
import re
import socket
from typing import TYPE_CHECKING, Any, AsyncIterator

from insideLLMs.errors import UserError
from insideLLMs.run._engine import Cell, Engine, FatalModelError, RunSettings, library_version

if TYPE_CHECKING:
    from insideLLMs.rundir import Record, Timing

INSTALL_HINT = "pip install 'insidellms[ray]'"
CONNECT_TIMEOUT_S = 5.0  # reaching the cluster's address; an unreachable cluster fails within it
START_TIMEOUT_S = 120.0  # every worker started (a busy cluster may take a while to find room)
MAX_LOSSES = 3  # an example whose worker died this many times stops the run (it may be what kills it)


class RayExecutorError(UserError):
    """The Ray executor cannot run: ray is not installed, the cluster cannot be reached, workers do not start."""


def import_ray() -> Any:
    """The ``ray`` module, or one line naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise RayExecutorError(f"runner.executor 'ray' needs the ray package: {INSTALL_HINT}") from None
    return ray


def concurrency_shares(total: int, workers: int) -> list[int]:
    """``total`` requests in flight split between at most ``workers`` workers, as evenly as it goes."""
    workers = max(1, min(workers, total))
    return [total // workers + (1 if i < total % workers else 0) for i in range(workers)]


class RayExecutor:
    """Runs a run's examples on a Ray cluster (``runner.executor: {type: ray, address: auto, workers: 4}``).

    ``address``: ``auto`` (the cluster ``ray start`` started on this machine, or ``RAY_ADDRESS``), ``host:port``
    of a cluster's head, or ``local`` (a throwaway cluster in this process's machine). ``workers``: how many
    actors (default: one per CPU of the cluster), never more than the run's concurrency.
    """

    name = "ray"

    def __init__(self, address: str = "auto", workers: int | None = None) -> None:
        self.address = address
        self.workers = workers
        self.actors: list[Any] = []
        self.shares: list[int] = []  # each worker's part of runner.concurrency
        self.pids: list[int] = []  # each worker's process (a worker started in a lost one's place has another)
        self._ray: Any = None
        self._cells: Any = None  # the run's cells in Ray's object store, kept for workers started in a lost one's place
        self._connected_here = False

    # -- start and stop ---------------------------------------------------------------------------

    def open(self, engine: Engine) -> None:
        if self.address not in ("auto", "local"):
            _check_reachable(self.address)  # before importing ray: a wrong address is told at once
        ray = self._ray = import_ray()
        self._connect(ray)
        cpus = _cluster_cpus(ray)
        shares = self.shares = concurrency_shares(engine.settings.concurrency, self.workers or max(1, int(cpus)))
        # Ray neither restarts a worker nor replays its calls: the driver hands a lost chunk out again and starts
        # a new worker in the lost one's place (``_replace``).
        self._worker_class = ray.remote(_ShareWorker).options(
            num_cpus=min(1.0, cpus / len(shares)) if cpus else 0,
            max_restarts=0,
            max_task_retries=0,
            scheduling_strategy="SPREAD",
            max_concurrency=1000,
        )
        self._cells = ray.put(engine.cells)  # pickled once for every worker
        self._settings = _worker_settings(engine.settings)
        self.actors = [self._start_worker(share) for share in shares]
        try:
            ready = ray.get([actor.ready.remote() for actor in self.actors], timeout=START_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            raise RayExecutorError(
                f"{len(shares)} Ray workers did not start within {START_TIMEOUT_S:.0f} s (the cluster has "
                f"{cpus:g} CPUs): lower runner.executor.workers or free the cluster"
            ) from None
        except ray.exceptions.RayError as exc:
            raise RayExecutorError(f"Ray workers could not start: {_cause_line(exc)}") from None
        self.pids = [pid for pid, _ in ready]
        versions = {version for _, version in ready}
        if versions != {library_version()}:
            raise RayExecutorError(
                f"the Ray workers run insideLLMs {', '.join(sorted(versions))}, this process {library_version()}: "
                "install the same version on every node"
            )

    def _start_worker(self, share: int) -> Any:
        return self._worker_class.remote(self._cells, self._settings, share)

    async def _replace(self, slot: int, lost: Any) -> Any | None:
        """The worker in ``slot`` after ``lost`` died: a new one (started once, whichever feeder asks first), or None
        when none starts (the other workers then take the rest)."""
        async with self._replacing[slot]:
            if self.actors[slot] is lost:
                self.actors[slot] = self._start_worker(self.shares[slot])
            actor = self.actors[slot]
            try:
                pid, _ = await asyncio.wait_for(actor.ready.remote(), START_TIMEOUT_S)
            except (self._ray.exceptions.RayError, TimeoutError):
                return None
            self.pids[slot] = pid
            return actor

    def _connect(self, ray: Any) -> None:
        if ray.is_initialized():  # an application that connected itself
            return
        address = None if self.address == "local" else self.address
        if address == "auto":
            _check_reachable(address)
        try:
            ray.init(
                address=address,
                namespace="insidellms",
                log_to_driver=False,
                logging_level="ERROR",
                configure_logging=True,
                include_dashboard=False if address is None else None,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise RayExecutorError(f"cannot connect to the Ray cluster at {self.address}: {_first_line(exc)}") from None
        self._connected_here = True

    def close(self) -> None:
        ray = self._ray
        if ray is None:
            return
        try:  # let each worker close its connections; a dead one is simply gone
            ray.get([actor.close.remote() for actor in self.actors], timeout=5)
        except Exception:
            pass
        for actor in self.actors:
            try:
                ray.kill(actor)
            except Exception:  # already gone with its node
                pass
        self.actors = []
        self._cells = None
        if self._connected_here:
            ray.shutdown()
            self._connected_here = False

    # -- running ----------------------------------------------------------------------------------

    async def execute(self, engine: Engine, start: int) -> None:
        work = _Work(start, len(engine.items))
        changed = asyncio.Condition()
        self._replacing = [asyncio.Lock() for _ in self.actors]
        feeders = [
            self._feed(engine, slot, work, changed)
            for slot in range(len(self.actors))
            for _ in range(2)  # two chunks per worker: the next is queued there while the last finishes
        ]
        async with asyncio.TaskGroup() as group:
            for feeder in feeders:
                group.create_task(feeder)
        if work.left() and engine.stop_reason is None:  # a run over budget stops here with examples left
            raise FatalModelError(f"every Ray worker was lost with {work.left()} examples still to run")

    async def _feed(self, engine: Engine, slot: int, work: _Work, changed: asyncio.Condition) -> None:
        """Hand chunks to one worker until no example is left, keeping results within the engine's write window."""
        ray = self._ray
        size = self.shares[slot]
        while True:
            async with changed:
                await changed.wait_for(lambda: work.done() or engine.stop_reason is not None
                                       or work.ready(engine.next_write, engine.window))
                if work.done() or engine.stop_reason is not None:  # over budget: nothing new goes out
                    return
                chunk = work.take(size)
            actor = self.actors[slot]
            unfinished = set(chunk)
            worker_lost = False
            try:
                await self._run_chunk(engine, actor, chunk, unfinished)
            except (ray.exceptions.RayActorError, ray.exceptions.ObjectLostError):
                worker_lost = True  # its unreturned examples go to whichever worker asks next
                work.give_back(sorted(unfinished), engine.next_write)
                lost = [engine.items[i][1].id for i in sorted(unfinished) if work.losses[i] >= MAX_LOSSES]
                if lost:
                    raise FatalModelError(
                        f"example {lost[0]} was lost with its Ray worker {MAX_LOSSES} times"
                    ) from None
            finally:
                work.finish()
                async with changed:
                    changed.notify_all()
            if worker_lost and await self._replace(slot, actor) is None:
                return  # no worker starts in its place: the others take the rest

    async def _run_chunk(self, engine: Engine, actor: Any, chunk: list[int], unfinished: set[int]) -> None:
        ray = self._ray
        try:
            async for ref in actor.run.remote(chunk):
                for index, record, timing in await ref:
                    unfinished.discard(index)
                    engine.deliver(index, record, timing)
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause
            if isinstance(cause, FatalModelError):
                raise FatalModelError(str(cause)) from None
            raise FatalModelError(f"a Ray worker failed: {type(cause).__name__}: {cause}") from None


class _Work:
    """Example indices still to hand out: fresh ones in order, and those whose worker died (first, lowest first)."""

    def __init__(self, start: int, end: int) -> None:
        self.next_fresh = start
        self.end = end
        self.returned: list[int] = []  # a heap
        self.in_flight = 0
        self.losses: dict[int, int] = {}

    def left(self) -> int:
        return len(self.returned) + self.end - self.next_fresh

    def done(self) -> bool:
        return not self.left() and not self.in_flight

    def ready(self, next_write: int, window: int) -> bool:
        """A chunk can go out: there is one, and its first example is within the write window."""
        if self.returned:
            return True
        return self.next_fresh < self.end and self.next_fresh - next_write < window

    def take(self, size: int) -> list[int]:
        chunk = [heapq.heappop(self.returned) for _ in range(min(size, len(self.returned)))]
        fresh = min(size - len(chunk), self.end - self.next_fresh)
        chunk += range(self.next_fresh, self.next_fresh + fresh)
        self.next_fresh += fresh
        self.in_flight += 1
        return chunk

    def give_back(self, chunk: list[int], next_write: int) -> None:
        """A dead worker's chunk: what was not written yet is handed out again."""
        for index in chunk:
            self.losses[index] = self.losses.get(index, 0) + 1
            if index >= next_write:
                heapq.heappush(self.returned, index)

    def finish(self) -> None:
        self.in_flight -= 1


class _ShareWorker:
    """A Ray actor: the run's cells and an engine with this worker's share of the concurrency."""

    def __init__(self, cells: list[Cell], settings: dict[str, Any], concurrency: int) -> None:
        self.engine = Engine(cells, RunSettings(concurrency=concurrency, **settings), collect=False)
        self.concurrency = concurrency
        self.slots: asyncio.Semaphore | None = None

    async def ready(self) -> tuple[int, str]:
        return os.getpid(), library_version()

    async def run(self, indices: list[int]) -> AsyncIterator[list[tuple[int, Record, Timing]]]:
        """Run these examples; yield what has finished each time something does (a batch, to save round trips)."""
        if self.slots is None:  # created in the actor's own event loop
            self.slots = asyncio.Semaphore(self.concurrency)
        finished: asyncio.Queue[tuple[int, Any, BaseException | None]] = asyncio.Queue()

        async def one(index: int) -> None:
            assert self.slots is not None
            async with self.slots:
                try:
                    finished.put_nowait((index, await self.engine.run_one(index), None))
                except Exception as exc:
                    finished.put_nowait((index, None, exc))

        tasks = [asyncio.create_task(one(index)) for index in indices]
        received = 0
        try:
            while received < len(indices):
                batch = [await finished.get()]
                while not finished.empty():
                    batch.append(finished.get_nowait())
                received += len(batch)
                for _, _, error in batch:
                    if error is not None:
                        raise error
                yield [(index, result[0], result[1]) for index, result, _ in batch]
        finally:
            for task in tasks:
                task.cancel()

    async def close(self) -> None:
        """Close the models' connections (the driver then ends this actor)."""
        await self.engine.close_models()


def _worker_settings(settings: RunSettings) -> dict[str, Any]:
    """What a worker's engine needs of the run's settings: how to call models, never where to write."""
    return {
        "max_retries": settings.max_retries,
        "timeout_s": settings.timeout_s,
        "generation": dict(settings.generation),
        "cache_dir": settings.cache_dir.resolve()
        if settings.cache_dir
        else None,  # the driver's folder, not the actor's
        "report": False,
        "epochs": settings.epochs,  # the worker's items must be the driver's, index for index
        "shard": settings.shard,
    }


def _cluster_cpus(ray: Any) -> float:
    return float(ray.cluster_resources().get("CPU", 0.0))


def _check_reachable(address: str) -> None:
    """Fail in seconds, with one line, when nothing answers at the cluster's address (Ray itself retries for long)."""
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS") or _current_cluster_address() or ""
        if not address:
            raise RayExecutorError(
                "no Ray cluster is running on this machine (runner.executor.address: auto): start one with "
                "`ray start --head`, or give its address with --ray-address HOST:PORT"
            )
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except ValueError:
        raise RayExecutorError(f"Ray cluster address {address!r}: expected HOST:PORT, auto or local") from None
    except OSError as exc:
        raise RayExecutorError(
            f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}; start it (`ray start --head`) "
            "or fix runner.executor.address / --ray-address"
        ) from None


def _current_cluster_address() -> str | None:
    """The address ``ray start`` on this machine recorded for ``auto`` (Ray's own lookup, when it has one)."""
    try:
        from ray._private.services import get_ray_address_from_environment

        return get_ray_address_from_environment("auto", None)
    except Exception:
        return None


def _cause_line(exc: BaseException) -> str:
    """The last ``SomeError: ...`` line of a Ray error (its root cause), else its first line."""
    causes = [line.strip() for line in str(exc).splitlines() if re.match(r"\s*[\w.]*(Error|Exception): ", line)]
    return causes[-1] if causes else _first_line(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
