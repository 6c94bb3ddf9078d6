"""Holm's adjustment worked by hand (statsmodels agrees on random sets in test_intervals.py, a slow test)."""

from __future__ import annotations

import pytest

from insideLLMs.stats import holm_adjust


def test_holm_multiplies_ranks_caps_at_one_and_never_decreases() -> None:
    # sorted: 0.01 × 3 = 0.03, 0.03 × 2 = 0.06, 0.04 × 1 = 0.04 → raised to 0.06; given back in input order
    assert holm_adjust([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06], abs=1e-15)
    assert holm_adjust([0.6, 0.7]) == [1.0, 1.0]
    assert holm_adjust([0.2]) == [0.2] and holm_adjust([]) == []
