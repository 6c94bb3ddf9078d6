"""``FollowingListener``: how ``insidellms run``/``harness`` track a run, from another process.

It starts the follower (follower.py) as soon as it is built, so that process imports and gets
ready while the evaluation loads its data, and tells it only of the run's start and end. The
per-example steps are read by the follower from the run directory, so this listener asks the
runner for no per-example events (``wants_examples = False``): tracking costs the evaluation's
process a process start and a few small writes to a pipe. ``close`` waits for the follower to
finish the tracked run (the local files, then remote delivery for up to ``flush_timeout_s``).

Only for runs that write a run directory; ``start_tracking`` falls back to the in-process
``TrackingListener`` when no process can be started.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

import orjson

from insideLLMs.events import ExampleFinished, RunFinished, RunStarted
from insideLLMs.tracking.config import TrackingConfig

if TYPE_CHECKING:
    from insideLLMs.tracking.delivery_process import Pending
    from insideLLMs.tracking.listener import TrackingListener

FINISH_GRACE_S = 60.0  # beyond flush_timeout_s: the follower's local work (copying big artifacts)
_CLOSE = b'{"op":"close"}\n'


class FollowingListener:
    """A ``RunListener`` whose tracking runs in a follower process (see the module docstring)."""

    wants_examples = False

    def __init__(self, config: TrackingConfig, *, echo: Callable[[str], None] = print) -> None:
        self.config = config
        self._echo = echo
        self._broken = False
        self._closed = False
        self.pending: list[Pending] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "insideLLMs.tracking.follower"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0,
            start_new_session=True,  # Ctrl-C is for the evaluation, which then ends the tracked run
        )
        self._send({"op": "config", "config": config.as_dict(), "sys_path": [p for p in sys.path if p]})

    def on_run_started(self, event: RunStarted) -> None:
        fields = {name: getattr(event, name) for name in RunStarted.__dataclass_fields__ if name != "config"}
        self._send({"op": "start", "event": fields})

    def on_example_finished(self, event: ExampleFinished) -> None:
        """Not called (``wants_examples = False``): the follower reads examples from the run directory."""

    def on_run_ending(self, event: RunFinished) -> None:
        """The records, summary and manifest are final: the follower logs them while the report renders."""
        self._send({"op": "ending", "event": _finished_fields(event)})

    def on_run_finished(self, event: RunFinished) -> None:
        self._send({"op": "finish", "event": _finished_fields(event)})

    def _send(self, message: dict[str, Any]) -> None:
        if self._broken:
            return
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(orjson.dumps(message, default=str) + b"\n")
        except (OSError, ValueError) as exc:  # the follower is gone: close() says so
            self._broken = True
            self._echo(f"! tracking: the tracking process stopped ({exc}); the evaluation goes on")

    def close(self) -> list[Pending]:
        """Wait for the follower to end the tracked run; return what remote backends still lack."""
        if self._closed:
            return self.pending
        self._closed = True
        wait = self.config.flush_timeout_s + FINISH_GRACE_S
        try:
            out = self._answer(time.monotonic() + wait)
        except TimeoutError:
            self._echo(f"! tracking: still busy after {wait:g} s; it finishes in the background (pid {self.proc.pid})")
            return self.pending
        try:
            answer = orjson.loads(out.strip().rsplit(b"\n", 1)[-1])
        except orjson.JSONDecodeError:
            self._echo("! tracking: the tracking process ended without finishing the tracked run; "
                       "the evaluation is not affected")
            return self.pending
        if answer.get("pending"):
            from insideLLMs.tracking.delivery_process import Pending

            self.pending = [Pending(str(s), int(n), str(why)) for s, n, why in answer["pending"]]
        return self.pending


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
        chunks = []
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
    return {"run_id": event.run_id, "run_dir": event.run_dir, "status": event.status, "summary": event.summary,
            "manifest": None, "artifacts": event.artifacts, "error": event.error}


def start_tracking(config: TrackingConfig, *, echo: Callable[[str], None] = print) -> FollowingListener | TrackingListener:
    """The listener ``insidellms run`` tracks with: a follower process, or in-process if none can start."""
    try:
        return FollowingListener(config, echo=echo)
    except OSError as exc:
        from insideLLMs.tracking.listener import TrackingListener

        echo(f"! tracking: cannot start the tracking process ({exc}); tracking in the evaluation's process")
        return TrackingListener.from_config(config, echo=echo)
