"""Statistics over run results: pure functions of numbers, no I/O."""

from __future__ import annotations

from insideLLMs.stats._percentile import percentile

__all__ = ["percentile"]
