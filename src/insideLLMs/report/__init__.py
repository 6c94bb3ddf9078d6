"""report.html: a run in one self-contained page. ``insideLLMs.report.page`` holds the building blocks diff.html shares."""

from __future__ import annotations

from insideLLMs.report._run_report import ReportData, rebuild_summary, render_report, write_report

__all__ = [
    "ReportData",
    "rebuild_summary",
    "render_report",
    "write_report",
]
