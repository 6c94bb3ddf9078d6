"""Time limits for many concurrent model calls, with one timer per event loop instead of one per call.

``asyncio.timeout`` puts a TimerHandle on the loop's heap for every call (~8 µs each, measured
here); at thousands of requests per second that is a visible part of a run's CPU. Here a call
registers its task and deadline in a dict, and one watchdog callback per loop wakes a few times
per time limit, cancels the tasks past their deadline, and the call turns that cancellation into
``TimeoutError`` — the same contract as ``asyncio.timeout``, including cancellations from outside
(those propagate untouched). A limit is enforced within about an eighth of itself, at most 1 s late.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass

_MAX_TICK_S = 1.0


@dataclass(slots=True, eq=False)
class _Entry:
    task: asyncio.Task[object]
    deadline: float
    cancelling: int  # the task's cancel requests when the call started
    expired: bool = False


class _Watchdog:
    """The deadlines of one loop's calls in flight, checked by one recurring callback."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop_ref = weakref.ref(loop)  # not the loop itself: it is this watchdog's key in _watchdogs
        self._entries: dict[int, _Entry] = {}
        self._tick: float = _MAX_TICK_S
        self._timer: asyncio.TimerHandle | None = None

    def add(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[object], limit_s: float) -> _Entry:
        entry = _Entry(task, loop.time() + limit_s, task.cancelling())
        self._entries[id(entry)] = entry
        tick = min(_MAX_TICK_S, max(limit_s / 8, 0.001))
        if self._timer is None or tick < self._tick:
            if self._timer is not None:
                self._timer.cancel()
            self._tick = tick
            self._timer = loop.call_later(tick, self._check)
        return entry

    def remove(self, entry: _Entry) -> None:
        self._entries.pop(id(entry), None)
        if not self._entries and self._timer is not None:  # idle: drop the timer (it holds the loop)
            self._timer.cancel()
            self._timer = None
            self._tick = _MAX_TICK_S

    def _check(self) -> None:
        loop = self._loop_ref()
        if loop is None or loop.is_closed():
            return
        now = loop.time()
        for entry in list(self._entries.values()):
            if entry.deadline <= now and not entry.expired:
                entry.expired = True
                entry.task.cancel()
        if self._entries:
            self._timer = loop.call_later(self._tick, self._check)
        else:
            self._timer = None
            self._tick = _MAX_TICK_S


_watchdogs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watchdog] = weakref.WeakKeyDictionary()


class time_limit:  # noqa: N801 - used like asyncio.timeout
    """``async with time_limit(s):`` like ``async with asyncio.timeout(s):``: ``TimeoutError`` if the
    body runs longer (outside a task, it is asyncio's own)."""

    __slots__ = ("_limit_s", "_entry", "_watchdog", "_fallback")

    def __init__(self, limit_s: float) -> None:
        self._limit_s = limit_s
        self._entry: _Entry | None = None
        self._watchdog: _Watchdog | None = None
        self._fallback: asyncio.Timeout | None = None

    async def __aenter__(self) -> None:
        task = asyncio.current_task()
        if task is None:
            self._fallback = asyncio.timeout(self._limit_s)
            await self._fallback.__aenter__()
            return
        loop = asyncio.get_running_loop()
        watchdog = _watchdogs.get(loop)
        if watchdog is None:
            watchdog = _watchdogs[loop] = _Watchdog(loop)
        self._watchdog = watchdog
        self._entry = watchdog.add(loop, task, self._limit_s)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if self._fallback is not None:
            await self._fallback.__aexit__(exc_type, exc, tb)  # type: ignore[arg-type]
            return
        entry, watchdog = self._entry, self._watchdog
        assert entry is not None and watchdog is not None
        watchdog.remove(entry)
        if entry.expired and entry.task.uncancel() <= entry.cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError from None
