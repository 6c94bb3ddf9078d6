"""Running probes against models: ``ProbeRunner`` (one model × one probe) and ``Harness`` (a grid).

Both hand their cells to ``insideLLMs.run._engine.Engine``; this module is the public face.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Sequence

from insideLLMs.datasets import PromptSet
from insideLLMs.run._engine import Cell, Engine, RunAborted, RunOutcome, RunSettings
from insideLLMs.events import RunListener
from insideLLMs.models import PriceTable
from insideLLMs.models.base import Model
from insideLLMs.probes.base import Probe
from insideLLMs.rundir import Record

__all__ = ["Harness", "ProbeRunner", "RunAborted", "RunOutcome", "RunSettings"]


class _RunnerBase:
    """Shared results API: ``success_rate`` / ``error_count`` after a run."""

    _outcome: RunOutcome | None = None

    def _totals(self) -> dict[str, Any]:
        if self._outcome is None:
            raise RuntimeError("no run yet: call run() or arun() first")
        return self._outcome.summary["totals"]

    @property
    def success_rate(self) -> float:
        return self._totals()["success_rate"] or 0.0

    @property
    def error_count(self) -> int:
        return self._totals()["error_count"]

    @property
    def pass_rate(self) -> float | None:
        return self._totals()["pass_rate"]

    @property
    def summary(self) -> dict[str, Any]:
        self._totals()
        assert self._outcome is not None
        return self._outcome.summary

    @property
    def run_id(self) -> str:
        self._totals()
        assert self._outcome is not None
        return self._outcome.run_id


class ProbeRunner(_RunnerBase):
    """Run one probe against one model over a prompt set.

    ``epochs=k`` asks each example k times (one record per epoch); ``reducer`` says how summary figures reduce
    an example's epochs to one value: a name (``mean``, ``majority``, ``max``, ``min``, ``all``, ``pass_at_K``)
    or a mapping of metric (``pass_rate`` or a score's name) to name.

    >>> runner = ProbeRunner(get_model("dummy"), get_probe("logic"))  # doctest: +SKIP
    >>> results = runner.run(prompt_set)                               # doctest: +SKIP
    """

    def __init__(
        self,
        model: Model,
        probe: Probe,
        *,
        concurrency: int = 16,
        max_retries: int = 4,
        timeout_s: float = 60.0,
        generation: dict[str, Any] | None = None,
        run_dir: str | Path | None = None,
        resume: bool = False,
        overwrite: bool = False,
        listeners: Sequence[RunListener] = (),
        progress: bool | None = False,
        prices: PriceTable | None = None,
        max_cost_usd: float | None = None,
        epochs: int = 1,
        reducer: str | dict[str, str] | None = None,
    ) -> None:
        """``prices``: the shipped table when None; ``max_cost_usd``: stop once the records cost this much."""
        self.model = model
        self.probe = probe
        self.settings = RunSettings(
            concurrency=concurrency, max_retries=max_retries, timeout_s=timeout_s,
            generation=dict(generation or {}), run_dir=Path(run_dir) if run_dir else None,
            resume=resume, overwrite=overwrite, listeners=listeners, progress=progress,
            prices=prices, max_cost_usd=max_cost_usd,
            epochs=epochs, reducer=reducer,
        )

    async def arun(self, prompt_set: PromptSet | None = None) -> list[Record]:
        """Run every example (every epoch); return the records in canonical order (also written to ``run_dir``)."""
        prompt_set = prompt_set if prompt_set is not None else self.probe.load_default_dataset()
        engine = Engine([Cell(self.model, self.probe, prompt_set)], self.settings, collect=True)
        self._outcome = await engine.run()
        assert self._outcome.records is not None
        return self._outcome.records

    def run(self, prompt_set: PromptSet | None = None) -> list[Record]:
        return asyncio.run(self.arun(prompt_set))


class Harness(_RunnerBase):
    """Run every model against every probe (each probe with its own prompt set) into one run."""

    def __init__(
        self,
        models: Sequence[Model],
        probes: Sequence[tuple[Probe, PromptSet]],
        *,
        settings: RunSettings | None = None,
        collect: bool = False,
    ) -> None:
        self.cells = [Cell(model, probe, prompt_set) for model in models for probe, prompt_set in probes]
        self.settings = settings or RunSettings()
        self.collect = collect

    @property
    def run_id(self) -> str:
        return Engine(self.cells, self.settings, collect=False).run_id

    async def arun(self) -> RunOutcome:
        self._outcome = await Engine(self.cells, self.settings, collect=self.collect).run()
        return self._outcome

    def run(self) -> RunOutcome:
        return asyncio.run(self.arun())
