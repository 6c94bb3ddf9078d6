"""Running probes against models: ``ProbeRunner``, ``Harness``, the engine behind them, retries, time limits, the answer
cache, the budget, shards (``Shard``: the stable split of a run's examples; ``merge_shards``: the partial runs joined
into one) and the executors that run examples elsewhere (``RayExecutor``)."""

from __future__ import annotations

from insideLLMs.run._assemble import build_harness, self_grading
from insideLLMs.run._engine import (
    BudgetError, BudgetReached, Executor, FatalModelError, RunAborted, RunOutcome, RunSettings,
)
from insideLLMs.run._merge import merge_shards
from insideLLMs.run._ray import RayExecutor, RayExecutorError
from insideLLMs.run._runner import Harness, ProbeRunner
from insideLLMs.run._shards import Shard, ShardError, shard_key, shard_of

__all__ = [
    "BudgetError",
    "BudgetReached",
    "Executor",
    "FatalModelError",
    "Harness",
    "ProbeRunner",
    "RayExecutor",
    "RayExecutorError",
    "RunAborted",
    "RunOutcome",
    "RunSettings",
    "Shard",
    "ShardError",
    "build_harness",
    "merge_shards",
    "self_grading",
    "shard_key",
    "shard_of",
]
