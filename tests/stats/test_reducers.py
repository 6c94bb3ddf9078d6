"""Per-example reducers of epochs: each checked by hand, pass@K against a direct count over every K-subset, and a
seeded simulation that clustering epochs by example keeps the paired interval's 95 % coverage."""

from __future__ import annotations

import itertools
import random

import pytest

from insideLLMs.stats import REDUCERS, ClusterSums, PairedSums, Reducer, pass_at_k, within_variance


@pytest.mark.parametrize(
    ("name", "values", "expected"),
    [
        ("mean", [1.0, 0.0, 1.0], 2 / 3),
        ("mean", [0.25, 0.5], 0.375),
        ("majority", [1.0, 0.0, 1.0], 1.0),
        ("majority", [0.0, 1.0], 0.0),  # a tie goes to the smaller value
        ("majority", [0.5, 0.2, 0.2, 0.5, 0.9], 0.2),  # two of 0.2 and of 0.5: the smaller
        ("majority", [0.7, 0.7, 0.1], 0.7),
        ("max", [0.2, 0.9, 0.4], 0.9),
        ("min", [0.2, 0.9, 0.4], 0.2),
        ("all", [1.0, 1.0, 1.0], 1.0),
        ("all", [1.0, 0.0, 1.0], 0.0),
        ("all", [0.9, 1.0], 0.0),  # "passed in every epoch": a value short of 1 is not a pass
        ("pass_at_1", [1.0, 0.0, 0.0, 1.0], 0.5),  # pass@1 is the fraction correct
        ("pass_at_2", [1.0, 0.0, 0.0, 0.0], 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
        ("pass_at_2", [0.0, 0.0, 0.0], 0.0),
        ("pass_at_3", [1.0, 0.0, 0.0], 1.0),
    ],
)
def test_each_reducer_by_hand(name: str, values: list[float], expected: float) -> None:
    assert Reducer.parse(name, epochs=len(values)).reduce(values) == pytest.approx(expected, abs=1e-12)


def test_no_values_and_too_few_for_pass_at_k_reduce_to_nothing() -> None:
    assert Reducer.parse("mean").reduce([]) is None
    assert Reducer.parse("pass_at_3").reduce([1.0, 1.0]) is None  # pass@3 of 2 samples is undefined


@pytest.mark.parametrize("n", range(1, 8))
def test_pass_at_k_is_the_share_of_k_subsets_with_a_correct_sample(n: int) -> None:
    """Chen et al.'s unbiased estimator equals, for every c and k, the fraction of the C(n, k) ways to draw k of
    the n samples that hold at least one correct one: counted here subset by subset."""
    for c in range(n + 1):
        samples = [1.0] * c + [0.0] * (n - c)
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(range(n), k))
            direct = sum(1 for s in subsets if any(samples[i] == 1.0 for i in s)) / len(subsets)
            assert pass_at_k(n, c, k) == pytest.approx(direct, abs=1e-12)
            assert Reducer.parse(f"pass_at_{k}", n).reduce(samples) == pytest.approx(direct, abs=1e-12)


_NAMES = " (reducers: mean, majority, max, min, all, pass_at_K, e.g. pass_at_1)"


@pytest.mark.parametrize(
    ("name", "epochs", "message"),
    [
        ("median", None, "unknown reducer 'median'" + _NAMES),
        ("pass_at_0", None, "unknown reducer 'pass_at_0'" + _NAMES),
        ("pass_at_k", None, "unknown reducer 'pass_at_k'" + _NAMES),
        ("pass_at_K", None, "unknown reducer 'pass_at_K'" + _NAMES),
        ("pass_at_2x", None, "unknown reducer 'pass_at_2x'" + _NAMES),
        ("pass_at_5", 3, "reducer 'pass_at_5' needs at least 5 epochs, the run has 3"),
        (3, None, "a reducer is a name (mean, majority, max, min, all, pass_at_K), not 3"),
    ],
)
def test_unknown_reducers_say_which_exist(name: object, epochs: int | None, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        Reducer.parse(name, epochs)  # type: ignore[arg-type]
    assert str(refused.value) == message


def test_a_parsed_reducer_is_its_name_and_k() -> None:
    assert Reducer.parse("majority") == Reducer("majority", None)
    assert Reducer.parse("pass_at_10", epochs=10) == Reducer("pass_at_10", 10)  # K may equal the epochs
    assert Reducer.parse("pass_at_12") == Reducer("pass_at_12", 12)  # epochs not known yet: any K


def test_the_names_listed_are_the_names_parsed() -> None:
    for name in REDUCERS:
        Reducer.parse(name.replace("_K", "_2"), epochs=2)


def test_within_variance_is_the_sample_variance() -> None:
    assert within_variance([1.0, 0.0, 1.0, 0.0]) == pytest.approx(1 / 3)  # Σ(x−½)² = 1, over n−1 = 3
    assert within_variance([0.4]) is None


def _coverage(clustered: bool, sims: int, n: int, k: int, seed: int) -> float:
    """Share of simulated pairs of runs whose 95 % paired interval covers the true difference. Each example has its
    own chance of a pass on each side (baseline Beta(2, 2), mean 0.5; candidate Beta(3, 2), mean 0.6: the true
    difference is 0.1), shared by its k epochs: epochs of one example are correlated."""
    rng = random.Random(seed)
    covered = 0
    for _ in range(sims):
        sums, clusters = PairedSums(), ClusterSums()
        for example in range(n):
            p_a, p_b = rng.betavariate(2, 2), rng.betavariate(3, 2)
            for _ in range(k):
                a = 1.0 if rng.random() < p_a else 0.0
                b = 1.0 if rng.random() < p_b else 0.0
                sums.add(a, b)
                if clustered:
                    clusters.add(example, b - a)
        interval = sums.difference(clusters=clusters if clustered else None).paired
        covered += interval.low <= 0.1 <= interval.high
    return covered / sims


@pytest.mark.slow
def test_clustering_epochs_by_example_keeps_95_percent_coverage() -> None:
    """2,000 simulated pairs of runs (30 examples × 6 epochs each): the interval clustered by example covers the
    true difference 93–97 % of the time; treating the 180 epoch pairs as independent covers too rarely."""
    clustered = _coverage(True, sims=2000, n=30, k=6, seed=1)
    naive = _coverage(False, sims=2000, n=30, k=6, seed=1)
    assert 0.93 <= clustered <= 0.97, clustered
    assert naive < 0.88, naive  # 0.854 with this seed
