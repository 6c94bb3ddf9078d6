"""``Tracker``: the tracking API users call. It holds its own open runs (no process-global "active
run"): a run is current in the thread that started it, and for the tracker's other threads while
it is the tracker's latest open run.
"""

from __future__ import annotations

import atexit
import sys
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from insideLLMs.config import TrackingConfig
from insideLLMs.tracking._run import EndStatus, TableWriter, TrackingRun, _stderr
from insideLLMs.tracking._loggable import Tags

if TYPE_CHECKING:  # the delivery machinery is imported only by runs with a remote backend
    from insideLLMs.tracking.sink import Pending

__all__ = ["EndStatus", "TableWriter", "Tracker", "TrackingRun"]


class Tracker:
    """Tracks runs to one or more backends (``get_tracker`` builds one).

    ``start_run`` opens a run (a context manager); ``log_metrics``/``log_params``/``log_artifact``/
    ``set_tags`` act on the current run, starting one if none is open (ended by ``end_run`` or at exit).
    """

    def __init__(self, config: TrackingConfig, *, echo: Callable[[str], None] = _stderr) -> None:
        self.config = config
        self._echo = echo
        self._lock = threading.RLock()
        self._thread_runs = threading.local()
        self._open: list[TrackingRun] = []
        self._atexit = False

    @property
    def backends(self) -> list[str]:
        return self.config.backends

    @property
    def active_run(self) -> TrackingRun | None:
        """The run ``log_*`` calls go to from this thread, if one is open."""
        stack: list[TrackingRun] = getattr(self._thread_runs, "stack", [])
        for run in reversed(stack):
            if not run.ended:
                return run
        with self._lock:
            return self._open[-1] if self._open else None

    def start_run(self, name: str | None = None, tags: Tags = None, params: Mapping[str, Any] | None = None) -> TrackingRun:
        """Open a run; use it in a ``with`` block, or end it with ``end_run(status)``."""
        if not self.config.enabled:
            raise RuntimeError("tracking is disabled (enabled: false); nothing would be recorded")
        run = TrackingRun(self.config, name=name or self.config.run_name, tags=tags, echo=self._echo, on_end=self._forget)
        with self._lock:
            self._open.append(run)
            self._register_atexit()
        stack = getattr(self._thread_runs, "stack", None)
        if stack is None:
            stack = self._thread_runs.stack = []
        stack.append(run)
        if params:
            run.log_params(params)
        return run

    def end_run(self, status: EndStatus = "finished") -> list[Pending]:
        """End the current run (no-op if none is open). Returns what remote backends still lack."""
        run = self.active_run
        return run.end(status) if run is not None else []

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        self._current().log_metrics(metrics, step=step)

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._current().log_params(params)

    def set_tags(self, tags: Tags = None, **more: Any) -> None:
        self._current().set_tags(tags, **more)

    def log_artifact(self, name: str, obj: Any) -> Path:
        return self._current().log_artifact(name, obj)

    def log_table(self, name: str, rows: Iterable[Mapping[str, Any]]) -> Path:
        return self._current().log_table(name, rows)

    def _current(self) -> TrackingRun:
        run = self.active_run
        return run if run is not None else self.start_run()

    def _forget(self, run: TrackingRun) -> None:
        with self._lock:
            if run in self._open:
                self._open.remove(run)
        stack = getattr(self._thread_runs, "stack", None)
        if stack and run in stack:
            stack.remove(run)

    def _register_atexit(self) -> None:
        if not self._atexit:
            self._atexit = True
            ref = weakref.ref(self)
            atexit.register(_end_open_runs, ref)

    def __repr__(self) -> str:
        return f"Tracker(backends={self.backends!r}, output_dir={self.config.output_dir!r})"


def _end_open_runs(ref: "weakref.ref[Tracker]") -> None:
    """At interpreter exit: end runs still open, ``failed`` if the program died of an exception."""
    tracker = ref()
    if tracker is None:
        return
    status: EndStatus = "failed" if getattr(sys, "last_value", None) is not None else "finished"
    for run in list(tracker._open):
        try:
            run.end(status)
        except Exception:
            pass
