"""Running probes against models: ``ProbeRunner``, ``Harness``, the engine behind them, retries, time limits, the answer
cache, and the executors that run examples elsewhere (``RayExecutor``)."""

from __future__ import annotations

from insideLLMs.run._assemble import build_harness, self_grading
from insideLLMs.run._engine import Executor, RunAborted, RunOutcome, RunSettings
from insideLLMs.run._ray import RayExecutor, RayExecutorError
from insideLLMs.run._runner import Harness, ProbeRunner

__all__ = [
    "Executor",
    "Harness",
    "ProbeRunner",
    "RayExecutor",
    "RayExecutorError",
    "RunAborted",
    "RunOutcome",
    "RunSettings",
    "build_harness",
    "self_grading",
]
