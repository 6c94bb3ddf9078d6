"""Student's t (the quantile behind every interval of a mean), checked against scipy.stats.t."""

from __future__ import annotations

import math

import pytest
from scipy import stats as sps

from insideLLMs.stats._student_t import t_cdf, t_quantile

DEGREES = [1, 2, 3, 4, 7, 9.5, 29, 30, 99, 1_000, 12_345.6, 1e5, 1e6]


@pytest.mark.parametrize("df", DEGREES)
def test_the_cdf_matches_scipy(df: float) -> None:
    for x in (-40.0, -6.0, -2.5, -1.96, -1.0, -0.1, -1e-3, 0.0, 1e-3, 0.3, 1.5, 2.0, 4.0, 40.0):
        assert t_cdf(x, df) == pytest.approx(sps.t.cdf(x, df), abs=1e-9 if df >= 1e4 else 1e-12)


@pytest.mark.parametrize("df", DEGREES[:10])
def test_small_p_values_keep_their_relative_accuracy(df: float) -> None:
    """A p-value of 5e-7 must not come out as 5.00006e-7: far tails are checked relative to their size."""
    for x in (-1_000.0, -100.0, -15.0, -6.0):
        assert t_cdf(x, df) == pytest.approx(sps.t.cdf(x, df), rel=1e-9)


def test_an_infinite_statistic_is_certain() -> None:
    for df in (1, 29, 1e6):
        assert t_cdf(math.inf, df) == 1.0 and t_cdf(-math.inf, df) == 0.0


@pytest.mark.parametrize("df", DEGREES)
def test_quantiles_match_scipy(df: float) -> None:
    for p in (0.001, 0.025, 0.2, 0.5, 0.8, 0.9, 0.975, 0.995):
        assert t_quantile(p, df) == pytest.approx(sps.t.ppf(p, df), rel=1e-8, abs=1e-12)


def test_familiar_values_and_the_normal_limit() -> None:
    assert t_quantile(0.975, 1) == pytest.approx(12.706204736, rel=1e-9)  # every t table's first row
    assert t_quantile(0.975, 2) == pytest.approx(4.302652730, rel=1e-9)
    assert t_quantile(0.975, 29) == pytest.approx(2.045229642, rel=1e-9)
    assert t_quantile(0.975, 1e6) == pytest.approx(1.959966, abs=1e-6)  # z = 1.959964 in the limit


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="0 < p < 1"):
        t_quantile(1.0, 3)
    with pytest.raises(ValueError, match="positive"):
        t_cdf(1.0, 0)
