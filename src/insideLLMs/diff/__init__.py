"""Comparing two run directories example by example, and the CI gate on top: pairing, verdicts, statistics, rendering, accept."""

from __future__ import annotations

from insideLLMs.diff._accept import accept_candidate
from insideLLMs.diff._compare import (
    CLASSES,
    Change,
    Coverage,
    DiffResult,
    PASS_RATE,
    GroupStats,
    diff_runs,
    run_records_path,
)
from insideLLMs.diff._gate import PAIRED_CI_TEST, GateResult, GroupVerdict, evaluate_gate
from insideLLMs.diff._html import render_diff_report, write_diff_report
from insideLLMs.diff._pairing import DiffInputError
from insideLLMs.diff._render import render_json, render_text
from insideLLMs.diff._stats import McNemarResult, binomial_upper_tail, mcnemar_drop

__all__ = [
    "CLASSES",
    "Change",
    "Coverage",
    "DiffInputError",
    "DiffResult",
    "GateResult",
    "GroupStats",
    "GroupVerdict",
    "McNemarResult",
    "PAIRED_CI_TEST",
    "PASS_RATE",
    "accept_candidate",
    "binomial_upper_tail",
    "diff_runs",
    "evaluate_gate",
    "mcnemar_drop",
    "render_diff_report",
    "render_json",
    "render_text",
    "run_records_path",
    "write_diff_report",
]
