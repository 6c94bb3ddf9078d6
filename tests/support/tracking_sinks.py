"""A test double for OUR sink interface (not for any real backend): ``JsonlSink`` "delivers" events by
appending them to ``<log_dir>/<run folder name>.jsonl``, and can be told to fail or hang.

Control files in ``log_dir`` steer it, so a subprocess obeys them too:
``FAIL`` (retryable SinkError "server unreachable"), ``FATAL`` (non-retryable), ``HANG`` (block while present),
``SLOW`` (sleep 0.2 s per batch), ``LINGER`` (leave a non-daemon thread that never ends, as a backend
library stuck on a dead server might). Like a real idempotent backend, it skips events it already holds.
Use it as ``backend="support.tracking_sinks:JsonlSink"`` with ``log_dir=...``.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Sequence

import pytest

from insideLLMs.tracking.sink import Event, Sink, SinkContext, SinkError

BACKEND = "support.tracking_sinks:JsonlSink"


class JsonlSink(Sink):
    name = "jsonl"

    def __init__(self, ctx: SinkContext) -> None:
        super().__init__(ctx)
        self.dir = Path(ctx.options["log_dir"])
        if (self.dir / "FATAL_INIT").exists():
            raise SinkError("bad configuration", retryable=False)
        self.dir.mkdir(parents=True, exist_ok=True)
        if (self.dir / "LINGER").exists():
            threading.Thread(target=threading.Event().wait, name="stuck-library-thread", daemon=False).start()
        self.out = self.dir / f"{ctx.run_dir.name}.jsonl"
        ctx.state.setdefault("opened", 0)
        ctx.state["opened"] += 1

    def _held(self) -> set[int]:
        if not self.out.exists():
            return set()
        return {json.loads(line)["seq"] for line in self.out.read_text().splitlines() if line.strip()}

    def deliver(self, events: Sequence[Event]) -> None:
        while (self.dir / "HANG").exists():
            time.sleep(0.02)
        if (self.dir / "FATAL").exists():
            raise SinkError("rejected by server", retryable=False)
        if (self.dir / "FAIL").exists():
            raise SinkError("server unreachable")
        if (self.dir / "SLOW").exists():
            time.sleep(0.2)
        with open(self.out.with_suffix(".receipts"), "a") as fh:  # every event received, duplicates too
            fh.write(" ".join(str(e.seq) for e in events) + "\n")
        held = self._held()
        with open(self.out, "a") as fh:
            for e in events:
                if e.seq not in held:
                    fh.write(json.dumps({"seq": e.seq, "kind": e.kind, "data": e.data}) + "\n")
        self.ctx.state["remote_run"] = self.ctx.run_dir.name
        self.ctx.state["url"] = f"file://{self.out}"

    def close(self) -> None:
        self.ctx.state["closed"] = True


def receipts(log_dir: Path, run_dir: Path) -> list[list[int]]:
    """The seqs of every deliver() call the test sink got, batch by batch."""
    return [[int(s) for s in line.split()] for line in _complete_lines(log_dir / f"{run_dir.name}.receipts")]


def delivered(log_dir: Path, run_dir: Path) -> list[dict]:
    """What the test sink holds for a run, in arrival order."""
    return [json.loads(line) for line in _complete_lines(log_dir / f"{run_dir.name}.jsonl") if line.strip()]


def _complete_lines(path: Path) -> list[str]:
    """The lines written whole: a test polls these files while a sync process is still appending to them."""
    if not path.exists():
        return []
    text = path.read_text()
    return text[: text.rfind("\n") + 1].splitlines()


@pytest.fixture
def sink_dir(tmp_path: Path) -> Path:
    d = tmp_path / "remote"
    d.mkdir()
    return d
