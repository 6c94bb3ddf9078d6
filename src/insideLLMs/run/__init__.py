"""Running probes against models: ``ProbeRunner``, ``Harness``, the engine behind them, retries, time limits, the answer cache, the budget."""

from __future__ import annotations

from insideLLMs.run._assemble import build_harness, self_grading
from insideLLMs.run._engine import BudgetError, BudgetReached, RunAborted, RunOutcome, RunSettings
from insideLLMs.run._runner import Harness, ProbeRunner

__all__ = [
    "BudgetError",
    "BudgetReached",
    "Harness",
    "ProbeRunner",
    "RunAborted",
    "RunOutcome",
    "RunSettings",
    "build_harness",
    "self_grading",
]
