"""What the runner tells its listeners: a run started, an example finished, the run finished.

This is the only coupling between evaluation and tracking: the runner calls a ``RunListener``
and knows nothing of what listens. A listener must not raise; the runner shields itself anyway.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import msgspec

if TYPE_CHECKING:  # types only: importing the run directory's records here would be circular
    from insideLLMs.rundir import Record, Timing

RunStatus = Literal["finished", "failed", "interrupted"]


class RunStarted(msgspec.Struct, frozen=True):
    run_id: str
    run_dir: Path | None
    name: str | None
    models: list[dict[str, Any]]
    probes: list[dict[str, Any]]
    datasets: list[dict[str, Any]]  # PromptSet.info per probe, in probe order
    generation: dict[str, Any]
    runner: dict[str, Any]  # concurrency, max_retries, timeout_s
    total: int  # examples × models (records this run will hold)
    library_version: str
    config: dict[str, Any] | None = None  # the resolved, redacted config when run from a file
    resumed: int = 0  # records already present from an interrupted run
    shard: str | None = None  # "I/N" when this is shard I of N of a run (``--shard``): ``total`` counts its records


class ExampleFinished(msgspec.Struct):  # not frozen (a little cheaper to build, once per example): treat as read-only
    step: int  # 0-based position of the record in records.jsonl
    record: Record
    timing: Timing


class RunFinished(msgspec.Struct, frozen=True):
    run_id: str
    run_dir: Path | None
    status: RunStatus
    summary: dict[str, Any]  # summary.json content (with its "volatile" section)
    manifest: dict[str, Any] | None
    artifacts: dict[str, Path] = msgspec.field(default_factory=dict)  # file name -> path in the run dir
    error: str | None = None


class RunListener(Protocol):
    """Told of a run's start, of each example in record order, and of the run's end (once every
    file of the run directory, report.html included, is written)."""

    def on_run_started(self, event: RunStarted) -> None: ...

    def on_example_finished(self, event: ExampleFinished) -> None: ...

    def on_run_finished(self, event: RunFinished) -> None: ...


__all__ = ["ExampleFinished", "RunFinished", "RunListener", "RunStarted", "RunStatus"]
