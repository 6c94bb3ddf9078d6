"""Where a tracked run lives on disk: the append-only journal, the readable views derived from it, and artifact copies."""

from __future__ import annotations

from insideLLMs.tracking.store._artifact_copy import copy_redacted, redacted_bytes
from insideLLMs.tracking.store._journal import FORMAT_VERSION, JOURNAL_FILE, JournalError, JournalTail, JournalWriter, read_journal
from insideLLMs.tracking.store._views import (
    ARTIFACTS_DIR,
    RUN_FILE,
    SINKS_DIR,
    RunNotFound,
    RunState,
    RunView,
    find_runs,
    load_run,
    read_json,
    resolve_run,
    write_views,
)

__all__ = [
    "ARTIFACTS_DIR",
    "FORMAT_VERSION",
    "JOURNAL_FILE",
    "JournalError",
    "JournalTail",
    "JournalWriter",
    "RUN_FILE",
    "RunNotFound",
    "RunState",
    "RunView",
    "SINKS_DIR",
    "copy_redacted",
    "find_runs",
    "load_run",
    "read_journal",
    "read_json",
    "redacted_bytes",
    "resolve_run",
    "write_views",
]
