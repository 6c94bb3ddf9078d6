"""``FollowingListener``: how ``insidellms run``/``harness`` track a run, from another process.

It starts the follower (follower.py) as soon as it is built, so that process imports and gets
ready while the evaluation loads its data, and tells it only of the run's start and end. The
per-example steps are read by the follower from the run directory, so the runner builds no
per-example events for this listener: tracking costs the evaluation's process a process start and
a few small writes to a pipe. ``close`` waits for the follower to finish the tracked run (the
local files, then remote delivery for up to ``flush_timeout_s``).

The follower takes ~0.15 s to start. A run that is small and starts before the follower is ready
(fewer than ``FOLLOW_FROM`` examples to run) would end up waiting for it, so such a run is tracked
in this process instead (``TrackingListener``, the same records), and the follower is stopped.

Only for runs that write a run directory; ``start_tracking`` falls back to the in-process
``TrackingListener`` when no process can be started.
"""

from __future__ import annotations

import os
import selectors
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

import msgspec
import orjson

from insideLLMs.events import ExampleFinished, RunFinished, RunStarted
from insideLLMs.config import TrackingConfig

if TYPE_CHECKING:
    import subprocess

    from insideLLMs.tracking.sink import Pending
    from insideLLMs.tracking._listener import TrackingListener

FOLLOW_FROM = 1_000  # examples to run: from this many the follower tracks the run even if not ready yet
FINISH_GRACE_S = 30.0  # beyond flush_timeout_s: the follower's local work (copying big artifacts)
READY = b"ready\n"  # what the follower says once it can take a run
_CLOSE = b'{"op":"close"}\n'


class FollowingListener:
    """A ``RunListener`` whose tracking runs in a follower process (see the module docstring)."""

    def __init__(self, config: TrackingConfig, *, echo: Callable[[str], None] = print) -> None:
        self.config = config
        self._echo = echo
        self._broken = False
        self._closed = False
        self._output = b""  # what the follower wrote so far (READY, then its answer)
        self.local: TrackingListener | None = None  # set when the run is tracked in this process
        self.pending: list[Pending] = []
        import subprocess  # here, not at the top: the follower imports this module for READY

        self.proc: subprocess.Popen[bytes] = subprocess.Popen(
            [sys.executable, "-m", "insideLLMs.tracking._follower"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0,
            start_new_session=True,  # Ctrl-C is for the evaluation, which then ends the tracked run
        )
        self._send({"op": "config", "config": config.as_dict(), "sys_path": [p for p in sys.path if p]})

    @property
    def wants_examples(self) -> bool:
        """Per-example events only when tracking in this process (the runner asks after the start)."""
        return self.local is not None

    def on_run_started(self, event: RunStarted) -> None:
        if self._ready() or event.total - event.resumed >= FOLLOW_FROM:
            self._send({"op": "start", "event": msgspec.structs.asdict(event) | {"config": None}})
            return
        from insideLLMs.tracking._listener import TrackingListener

        self._dismiss()
        self.local = TrackingListener.from_config(self.config, echo=self._echo)
        self.local.on_run_started(event)

    def on_example_finished(self, event: ExampleFinished) -> None:
        if self.local is not None:
            self.local.on_example_finished(event)

    def on_run_ending(self, event: RunFinished) -> None:
        """The records, summary and manifest are final: the follower logs them while the report renders."""
        if self.local is None:
            self._send({"op": "ending", "event": _finished_fields(event)})

    def on_run_finished(self, event: RunFinished) -> None:
        if self.local is not None:
            self.local.on_run_finished(event)
        else:
            self._send({"op": "finish", "event": _finished_fields(event)})

    def close(self) -> list[Pending]:
        """Wait for the follower to end the tracked run; return what remote backends still lack."""
        if self._closed:
            return self.pending
        self._closed = True
        if self.local is not None:
            self.pending = self.local.close()
            return self.pending
        wait = self.config.flush_timeout_s + FINISH_GRACE_S
        try:
            out = self._answer(time.monotonic() + wait)
        except TimeoutError:
            self._echo(f"! tracking: still busy after {wait:g} s; it finishes in the background (pid {self.proc.pid})")
            return self.pending
        try:
            answer = orjson.loads(out.strip().rsplit(b"\n", 1)[-1])
        except orjson.JSONDecodeError:
            if not self._broken:  # else already said
                self._echo("! tracking: the tracking process ended without finishing the tracked run; "
                           "the evaluation is not affected")
            return self.pending
        if answer.get("pending"):
            from insideLLMs.tracking.sink import Pending

            self.pending = [Pending(str(s), int(n), str(why)) for s, n, why in answer["pending"]]
        return self.pending

    # -- the pipe to the follower --------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        if self._broken:
            return
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(orjson.dumps(message, default=str) + b"\n")
        except (OSError, ValueError) as exc:  # the follower is gone: close() says so
            self._broken = True
            self._echo(f"! tracking: the tracking process stopped ({type(exc).__name__}); the evaluation goes on")

    def _ready(self) -> bool:
        """Has the follower said it is ready? (Reads what it wrote so far, without waiting.)"""
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            while READY not in self._output and selector.select(0):
                data = os.read(self.proc.stdout.fileno(), 1 << 16)
                if not data:
                    break
                self._output += data
        return READY in self._output

    def _dismiss(self) -> None:
        """Stop the follower, which was never told of a run (so has written nothing): at once, so that
        it does not hold the evaluation's stderr open while it finishes starting."""
        try:
            self.proc.kill()
        except OSError:
            pass
        threading.Thread(target=self.proc.communicate, name="insidellms-follower-reaper", daemon=True).start()

    def _answer(self, deadline: float) -> bytes:
        """Send ``close`` and read the follower's answer (all it writes to stdout) until it ends.

        Not ``Popen.communicate``: its wait for the exit polls with growing sleeps (up to 50 ms). The
        follower exits as soon as it has answered; a thread reaps it, so the evaluation need not wait
        for its teardown."""
        proc = self.proc
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(_CLOSE)
        except OSError:
            pass  # already gone: its answer (if any) is still in the pipe
        proc.stdin.close()
        chunks = [self._output]
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    raise TimeoutError
                data = os.read(proc.stdout.fileno(), 1 << 16)
                if not data:
                    break
                chunks.append(data)
        proc.stdout.close()
        threading.Thread(target=proc.wait, name="insidellms-follower-reaper", daemon=True).start()
        return b"".join(chunks)


def _finished_fields(event: RunFinished) -> dict[str, Any]:
    """What the follower needs of a ``RunFinished`` (not the manifest: it reads the file if logged)."""
    return msgspec.structs.asdict(event) | {"manifest": None}


def start_tracking(config: TrackingConfig, *, echo: Callable[[str], None] = print) -> FollowingListener | TrackingListener:
    """The listener ``insidellms run`` tracks with: a follower process, or in-process if none can start
    (or on Windows, whose pipes cannot be waited on with ``selectors``)."""
    if os.name != "nt":
        try:
            return FollowingListener(config, echo=echo)
        except OSError as exc:
            echo(f"! tracking: cannot start the tracking process ({exc}); tracking in the evaluation's process")
    from insideLLMs.tracking._listener import TrackingListener  # not before: it is the bigger import

    return TrackingListener.from_config(config, echo=echo)
