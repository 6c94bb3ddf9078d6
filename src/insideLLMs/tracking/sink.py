"""The contract between the local journal and the remote backends (W&B, MLflow, TensorBoard).

Every tracked thing is first an ``Event`` appended to the run's journal with a dense sequence
number. A ``Sink`` turns events into calls on one backend. Sinks are fed in order, in batches, by
a background worker that persists after each successful ``deliver`` how far that sink got
(``delivered_seq``) and the sink's ``state`` (e.g. the remote run id), so a later
``insidellms tracking sync`` resumes where delivery stopped.

Event ``data`` by ``kind``:

- ``run_start``: ``{"name": str, "run_key": str, "tags": {str: str}, "project": str|None, "experiment": str|None}``
  (``run_key`` is the local run folder name, e.g. ``run_7f3a…``; a bare tag ``v1`` is ``{"v1": ""}``)
- ``params``:    ``{"params": {str: str|int|float|bool|None}}`` (flat, already redacted)
- ``metrics``:   ``{"metrics": {str: float}, "step": int|None}``; ``step`` None is a run-level value (a
  result of the whole run), an int a point of a series. A tracked evaluation names its per-example
  series ``example/<name>`` (``EXAMPLE_SERIES_PREFIX``): a sink keeps them out of the run's summary
- ``tags``:      ``{"tags": {str: str}}``
- ``artifact``:  ``{"name": str, "path": str, "sha256": str, "size": int}``; ``path`` is relative to
  the local run folder (``artifacts/results.json``), the file is already redacted
- ``table``:     ``{"name": str, "path": str}``: a JSONL file of flat rows (the per-example records).
  In the journal a tracked evaluation's table instead says ``"format": "records"``: ``path`` is the
  run directory's ``records.jsonl`` artifact (and ``timings`` its ``timings.jsonl``), flattened
  only when delivered; the delivery turns it into the flat-rows form above first, so a sink is
  always given flat rows (table.py)
- ``run_end``:   ``{"status": "finished"|"failed"|"interrupted"|"killed"}`` (interrupted: Ctrl-C or SIGTERM; killed: the process died)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Literal, Sequence

import msgspec
from insideLLMs.errors import InsideLLMsError

EXAMPLE_SERIES_PREFIX = "example/"  # one point per evaluated example: latency_ms, success, passed, scores

RECORDS_FORMAT = "records"  # a table event whose rows are run-directory records, flattened at delivery
EventKind = Literal["run_start", "params", "metrics", "tags", "artifact", "table", "run_end"]

# The records of this package are msgspec Structs, not dataclasses: a dataclass compiles its
# generated methods at import, and tracking is imported at the start of every tracked evaluation.


class Event(msgspec.Struct, frozen=True):
    """One journal line: what was logged (``kind``, ``data``), its place (``seq``) and time (``ts``)."""

    seq: int  # 1-based, dense, per run
    kind: EventKind
    ts: float  # unix seconds when it was logged
    data: dict[str, Any]


class Pending(msgspec.Struct, frozen=True):
    """Events a remote backend had not received when the run ended."""

    sink: str
    count: int
    reason: str


class SinkError(InsideLLMsError):
    """Delivery failed. ``retryable`` False means retrying the same events cannot help (bad config)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class SinkContext(msgspec.Struct):
    """What a sink is given: the local run folder (to read artifact files), its options, its saved state."""

    run_dir: Path
    options: dict[str, Any]
    state: dict[str, Any] = msgspec.field(default_factory=dict)  # the sink updates it in place (e.g. remote run id)


class Sink(ABC):
    """One remote backend. ``deliver`` must be idempotent: the same events delivered twice
    (after a crash between sending and the worker saving ``delivered_seq``) leave one copy."""

    name: ClassVar[str]

    def __init__(self, ctx: SinkContext) -> None:
        self.ctx = ctx

    @abstractmethod
    def deliver(self, events: Sequence[Event]) -> None:
        """Send these events (in seq order). Raise ``SinkError`` on failure; nothing is then marked delivered."""

    def close(self) -> None:
        """Flush and release the backend (called once, at the end of the worker or sync)."""

    def undelivered(self, events: Sequence[Event]) -> list[Event]:
        """The events past ``ctx.state["seq"]``, the last one this sink recorded as sent: a sink that
        keeps that mark skips what it already wrote when the same batch comes again."""
        done = int(self.ctx.state.get("seq") or 0)
        return [e for e in events if e.seq > done]
