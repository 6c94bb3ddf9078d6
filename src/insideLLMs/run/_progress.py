"""A terminal progress bar (done/total, rate, errors, ETA) that is silent when not on a terminal."""

from __future__ import annotations

import sys
from typing import Any


class Progress:
    def __init__(self, total: int, *, done: int = 0, enabled: bool | None = None, label: str = "running") -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.errors = 0
        self._bar: Any = None
        if not self.enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress as RichProgress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}/s"),
            TextColumn("[red]{task.fields[errors]} errors"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._task = self._bar.add_task(label, total=total, completed=done, rate="-", errors=0)
        self._bar.start()

    def advance(self, error: bool) -> None:
        self.errors += error
        if self._bar is None:
            return
        task = self._bar.tasks[0]
        speed = task.speed
        self._bar.update(
            self._task, advance=1, errors=self.errors, rate=f"{speed:,.1f}" if speed else "-"
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
