"""``insidellms run``'s tracking, done by a process of its own that follows the run directory.

The evaluation starts ``python -m insideLLMs.tracking._follower`` when it starts (follow_listener.py)
and only tells it, on its stdin, of the run's start and end: a few small JSON lines. The per-example
steps are read here, from the records.jsonl and timings.jsonl the evaluation writes anyway
(run_tail.py), and both files are copied into the tracking run as they grow. So tracking takes no
CPU, GIL or memory from the evaluation's process, and what is tracked is what the run directory
holds, line for line. On this side it is the same ``TrackingListener`` as in-process tracking:
the same journal, views, artifacts, redaction and remote delivery.

Messages, one JSON object per line: ``config`` (the tracking block, the evaluation's sys.path),
``start`` (``RunStarted``'s fields), ``ending`` and ``finish`` (``RunFinished``'s: before and after
report.html is written), then ``close``. On the stdout the evaluation reads this process writes
``ready`` once it can take a run, and at the end one JSON line ``{"pending": [[sink, count,
reason], …]}``; anything else it or its children print goes to stderr. If stdin ends without ``close``
(the evaluation was killed), the run is ended ``killed`` with everything its files hold.
"""

from __future__ import annotations

import os
import selectors
import signal
import sys
from pathlib import Path
from typing import Any, Callable, Literal

import msgspec
import orjson

from insideLLMs.rundir import RECORDS, TIMINGS
from insideLLMs.events import RunFinished, RunStarted
from insideLLMs.config import TrackingConfig
from insideLLMs.tracking._evaluation import example_metrics
from insideLLMs.tracking._follow_listener import READY
from insideLLMs.tracking._listener import TrackingListener
from insideLLMs.tracking._run import ArtifactStream
from insideLLMs.tracking._run_tail import RunDirTail

POLL_S = 0.02  # how often the run directory is looked at while the run goes
IDLE_S = 0.5  # before the run starts: how often to check that the evaluation is still there


def _echo(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Follower:
    """Turns the evaluation's messages and its run directory's growth into ``TrackingListener`` calls."""

    def __init__(self, say: Callable[[bytes], Any] = lambda _data: None) -> None:
        self.say = say  # writes to the evaluation (READY, then the answer)
        self.config: TrackingConfig | None = None
        self.listener: TrackingListener | None = None
        self.tail: RunDirTail | None = None
        self.streams: dict[str, ArtifactStream] = {}
        self.started: RunStarted | None = None
        self.finished = False

    def handle(self, message: dict[str, Any]) -> bool:
        """Act on one message; True once the evaluation has closed tracking."""
        op = message.get("op")
        if op == "config":
            sys.path[:0] = [p for p in message.get("sys_path", []) if p not in sys.path]  # custom sinks
            self.config = TrackingConfig.from_options(message["config"])
            _warm_up()
            self.say(READY)
        elif op == "start" and self.config is not None:
            # built only now: a run that never starts (bad input) leaves no tracked run and no warning
            self.listener = TrackingListener.from_config(self.config, echo=_echo)
            event = msgspec.convert(message["event"], RunStarted, dec_hook=_as_path)
            self.started = event
            self.listener.on_run_started(event)
            self._follow(event)
        elif op in ("ending", "finish") and self.listener is not None:
            finished = msgspec.convert(message["event"], RunFinished, dec_hook=_as_path)
            if op == "ending":
                self._outcome(finished)
            else:
                self._finish(finished)
        elif op == "close":
            self.end("failed")
            return True
        return False

    def _follow(self, event: RunStarted) -> None:
        run = self.listener.run if self.listener else None
        if run is None or event.run_dir is None:
            return
        try:
            self.streams = {name: run.open_artifact_stream(name) for name in (RECORDS, TIMINGS)}
            self.tail = RunDirTail(event.run_dir, event.resumed, {n: s.write for n, s in self.streams.items()})
        except Exception as exc:
            self._give_up_following(exc)

    def poll(self) -> None:
        """Log every example the run directory has gained since the last look."""
        if self.tail is None or self.listener is None:
            return
        try:
            examples = self.tail.poll()
        except Exception as exc:  # e.g. a full disk for the copies: the files are copied whole at the end
            self._give_up_following(exc)
            return
        log = self.listener.log_example
        for ex in examples:
            record, latency = ex.record, ex.timing.latency_ms
            log(ex.step, example_metrics(record.status, record.passed, record.scores, latency), latency)

    def _give_up_following(self, exc: Exception) -> None:
        if self.listener is not None:
            self.listener.warn(exc)
        for stream in self.streams.values():
            stream.discard()
        self.streams = {}
        if self.tail is not None:
            self.tail.close()
        self.tail = None

    def _outcome(self, event: RunFinished) -> None:
        """The run's data is final (report.html still to come): read the rest of its examples, then log
        the final metrics and the files (records and timings from the copies made as they grew)."""
        if self.finished or self.listener is None:
            return
        self.poll()  # the evaluation closed its files before it said so: this reads the rest
        if self.tail is not None:
            self.tail.close()
            self.tail = None
        streams, self.streams = self.streams, {}
        self.listener.log_outcome(event, streams)

    def _finish(self, event: RunFinished) -> None:
        if self.finished or self.listener is None:
            return
        self._outcome(event)
        self.finished = True
        self.listener.finish_run(event)

    def end(self, status: Literal["failed", "killed"]) -> None:
        """The evaluation is done with tracking (``failed`` if it never said how the run ended) or gone
        (``killed``): end the run with what the run directory holds."""
        if not self.finished and self.started is not None:
            s = self.started
            self._finish(RunFinished(s.run_id, s.run_dir, "interrupted" if status == "killed" else "failed",  # type: ignore[arg-type]
                                     {}, None, {}, None if status == "failed" else "the evaluation process ended"))

    def pending(self) -> list[list[Any]]:
        if self.listener is None:
            return []
        return [[p.sink, p.count, p.reason] for p in self.listener.close()]


def _as_path(kind: type, value: Any) -> Any:
    """Paths arrive as strings (JSON): the events' ``Path`` fields get them back as paths."""
    if kind is Path:
        return Path(value)
    raise NotImplementedError


def _warm_up() -> None:
    """Load now, while the evaluation starts, what the end of the run needs: the file redaction."""
    try:
        from insideLLMs.tracking.store import _artifact_copy  # noqa: F401  (the scanner, compiled once)
    except Exception:  # nothing is lost: the same work is done when the run ends
        pass


def serve(fd: int, follower: Follower) -> None:
    """Read messages from ``fd`` until ``close`` or its end, following the run directory meanwhile."""
    parent = os.getppid()
    selector = selectors.DefaultSelector()
    selector.register(fd, selectors.EVENT_READ)
    buffer = b""
    while True:
        if selector.select(POLL_S if follower.tail is not None else IDLE_S):
            data = os.read(fd, 1 << 16)
            if not data:
                follower.end("killed")
                return
            *lines, buffer = (buffer + data).split(b"\n")
            for line in lines:
                if line.strip() and follower.handle(orjson.loads(line)):
                    return
        elif os.getppid() != parent:  # orphaned without an end of input: the evaluation is gone
            follower.end("killed")
            return
        follower.poll()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the evaluation, which then tells us
    answer = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # whatever is printed here (or by a delivery child) goes to stderr, not the answer

    def say(data: bytes) -> None:
        try:
            answer.write(data)
        except OSError:  # the evaluation is gone: its end of input says so
            pass

    follower = Follower(say=say)
    pending: list[list[Any]] = []
    try:
        serve(0, follower)
        pending = follower.pending()
    except Exception as exc:  # tracking never breaks the evaluation: one line, not a traceback
        _echo(f"! tracking: {type(exc).__name__}: {exc}; the evaluation is not affected")
    say(orjson.dumps({"pending": pending}) + b"\n")
    answer.close()
    sys.stderr.flush()
    os._exit(0)  # everything is on disk: no interpreter teardown for the evaluation to wait through


if __name__ == "__main__":
    main()
