"""The run directory: its files, ``RunWriter``/``RunReader``, the per-example ``Record`` and ``Timing``, and summary.json."""

from __future__ import annotations

from insideLLMs.rundir._agreement import Agreement, LabelsError, judge_agreement
from insideLLMs.rundir._directory import (
    CONFIG,
    INCOMPLETE,
    MANIFEST,
    RECORDS,
    REPORT,
    RUN_FILES,
    SUMMARY,
    TIMINGS,
    RunDirError,
    RunReader,
    RunWriter,
    atomic_path,
    read_jsonl,
    write_atomic,
)
from insideLLMs.rundir._records import RECORD_FIELDS, Record, Timing, record_key
from insideLLMs.rundir._summary import SummaryBuilder, judge_votes, record_cost, summarize, summary_settings

__all__ = [
    "Agreement",
    "CONFIG",
    "INCOMPLETE",
    "LabelsError",
    "MANIFEST",
    "RECORDS",
    "RECORD_FIELDS",
    "REPORT",
    "RUN_FILES",
    "Record",
    "RunDirError",
    "RunReader",
    "RunWriter",
    "SUMMARY",
    "SummaryBuilder",
    "TIMINGS",
    "Timing",
    "atomic_path",
    "judge_votes",
    "judge_agreement",
    "read_jsonl",
    "record_cost",
    "record_key",
    "summarize",
    "summary_settings",
    "write_atomic",
]
