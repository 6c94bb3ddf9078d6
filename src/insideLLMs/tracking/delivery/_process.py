"""Remote delivery in a child process, so a backend never costs the evaluation CPU, GIL or time.

A run with remote backends starts one child, ``python -m insideLLMs.tracking.delivery._process
<run folder>``. The sink options (which may hold credentials) reach it on its stdin, never on the
command line or on disk. It tails the run's journal from each sink's delivered mark with the same
batching, retries and marks as ``insidellms tracking sync``, and exits once ``run_end`` is delivered.

The child is started only when a backend may be reachable: if every configured server refuses
connections, the evaluation notes why in the marks and looks again with backoff (and once more at
the end), so a stopped server costs it no process start.

When the run ends the evaluation writes ``finish`` to the child's stdin: each sink drains what is
left, but stops at its first failure (an unreachable server costs one failed attempt, not the whole
flush timeout). The evaluation waits at most ``flush_timeout_s`` for the child, then stops it
(SIGTERM, then SIGKILL); marks are saved after every batch, so stopping it loses nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import msgspec

from insideLLMs.backoff import backoff_s
from insideLLMs.secrets import redact
from insideLLMs.tracking.sink import SinkError
from insideLLMs.tracking.delivery._worker import DeliveryMark, DeliveryWorker, preflight, sink_name

FINISH = b"finish\n"
STOP_GRACE_S = 3.0  # after SIGTERM, how long the child has before SIGKILL
ORPHAN_LIMIT_S = 60.0  # a child whose evaluation died stops this long after it noticed
PREFLIGHT_TIMEOUT_S = 0.5  # the evaluation's own "is anyone listening" check; slower means "maybe": start
RETRY_FIRST_S, RETRY_MAX_S = 1.0, 30.0  # while every server refuses, how often to look again


class SinkSpec(msgspec.Struct, frozen=True):
    """One remote backend of a run: its name, the name its mark is filed under, its options."""

    backend: str
    sink: str
    options: dict[str, Any]


class DeliveryProcess:
    """The evaluation's handle on its run's delivery child.

    The child is started from a background thread, and only when it can do something: a backend
    whose server refuses connections (``preflight``) costs the evaluation one refused connect, not
    a process start; the thread tries again with backoff, and once more when the run ends.
    """

    def __init__(self, run_dir: Path, sinks: list[SinkSpec]) -> None:
        self.run_dir = run_dir
        self.sinks = sinks
        self.error: str | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._finishing = threading.Event()
        self._abandoned = False
        self._starter: threading.Thread | None = None

    @classmethod
    def start(cls, run_dir: Path, options: dict[str, dict[str, Any]]) -> "DeliveryProcess":
        """Save each sink's initial mark (options redacted) and start the child in the background."""
        sinks = []
        for backend, opts in options.items():
            spec = SinkSpec(backend, sink_name(backend), opts)
            DeliveryMark(sink=spec.sink, backend=backend, options=opts).save(run_dir)
            sinks.append(spec)
        self = cls(run_dir, sinks)
        self._starter = threading.Thread(target=self._start_when_reachable, name="insidellms-delivery-start",
                                         daemon=True)
        self._starter.start()
        return self

    def _start_when_reachable(self) -> None:
        failures = 0
        while True:
            finishing = self._finishing.is_set()
            if self._reachable():
                self._spawn()
                return
            failures += 1
            if finishing or self._finishing.wait(backoff_s(failures, RETRY_FIRST_S, RETRY_MAX_S)):
                if not finishing:
                    continue  # the run ended while waiting: one last try
                return

    def _reachable(self) -> bool:
        """False when every sink's server is known to refuse connections right now (noted in its mark)."""
        refused = 0
        for spec in self.sinks:
            try:
                preflight(spec.backend, spec.options, timeout_s=PREFLIGHT_TIMEOUT_S)
            except SinkError as exc:
                refused += 1
                mark = DeliveryMark.load(self.run_dir, spec.sink) or DeliveryMark(sink=spec.sink, backend=spec.backend)
                mark.options = spec.options
                mark.failures += 1
                mark.last_error = redact(str(exc))
                mark.save(self.run_dir)
            except Exception:
                pass  # not sure: let the child find out
        return refused < len(self.sinks)

    def _spawn(self) -> None:
        config = {"sinks": [msgspec.structs.asdict(s) for s in self.sinks], "sys_path": [p for p in sys.path if p]}
        with self._lock:
            if self._abandoned:
                return
            try:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", __name__, str(self.run_dir)],
                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    start_new_session=True,  # Ctrl-C in the terminal is for the evaluation; it stops us
                )
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps(config).encode() + b"\n")
                self.proc.stdin.flush()
            except (OSError, ValueError) as exc:
                self.error = f"cannot start the delivery process: {exc}"

    def run_ended(self) -> None:
        """The run's last event is in the journal: a backend not reached yet is tried once more now,
        while the run writes its last files, rather than when ``finish`` waits for it."""
        self._finishing.set()

    def finish(self, timeout_s: float) -> None:
        """Tell the child the run has ended; wait for it at most ``timeout_s``, then stop it."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        self._finishing.set()
        if self._starter is not None:
            self._starter.join(timeout=max(0.0, timeout_s))
        with self._lock:
            self._abandoned = True  # a start still under way is not wanted any more
            proc = self.proc
        if proc is None:
            return
        try:
            assert proc.stdin is not None
            proc.stdin.write(FINISH)
            proc.stdin.close()
        except (OSError, ValueError):
            pass  # it has exited already
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            return
        except subprocess.TimeoutExpired:
            pass
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def marks(self) -> list[DeliveryMark]:
        """Each sink's mark as the child left it on disk."""
        return [DeliveryMark.load(self.run_dir, s.sink) or DeliveryMark(sink=s.sink, backend=s.backend)
                for s in self.sinks]


# -- the child -------------------------------------------------------------------------------------

def _watch_parent(workers: list[DeliveryWorker], finished: threading.Event) -> None:
    """``finish`` on stdin, or stdin closed (the evaluation exited or died): the run is over."""
    parent = os.getppid()
    reader = threading.Thread(target=lambda: (sys.stdin.buffer.readline(), finished.set()), daemon=True)
    reader.start()
    while not finished.wait(0.5):
        if os.getppid() != parent:  # orphaned without EOF (the pipe leaked into another process)
            finished.set()
    for worker in workers:
        worker.finish()


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    run_dir = Path(argv[0])
    config = json.loads(sys.stdin.buffer.readline() or b"{}")
    sys.path[:0] = [p for p in config.get("sys_path", []) if p not in sys.path]  # custom sinks import alike

    workers = []
    for spec in config.get("sinks", []):
        mark = DeliveryMark.load(run_dir, spec["sink"]) or DeliveryMark(sink=spec["sink"], backend=spec["backend"])
        mark.options = spec["options"]  # in clear, from stdin; on disk they are redacted
        workers.append(DeliveryWorker(run_dir, mark))

    stopping = threading.Event()

    def on_term(_signo: int, _frame: Any) -> None:
        stopping.set()
        for worker in workers:
            worker.abandon()

    signal.signal(signal.SIGTERM, on_term)
    for worker in workers:
        worker.start()
    finished = threading.Event()
    threading.Thread(target=_watch_parent, args=(workers, finished), daemon=True).start()
    finished_at: float | None = None
    while any(w.is_alive() for w in workers):
        if stopping.is_set():
            for worker in workers:
                worker.join(timeout=0.5)
            break
        if finished.is_set():
            finished_at = finished_at or time.monotonic()
            if time.monotonic() - finished_at > ORPHAN_LIMIT_S:
                break
        for worker in workers:
            worker.join(timeout=0.1)
    sys.stdout.flush()
    # no interpreter teardown: a backend library's thread or exit hook stuck on a dead server must not
    # keep us alive, and the end of the run waits for this exit (bench/tracking_overhead.py section 5)
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
