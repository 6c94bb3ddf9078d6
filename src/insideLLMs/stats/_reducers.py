"""Per-example reducers: one value per example from the values of its epochs (``runner.epochs``).

An example asked k times has k values of each score; a reducer turns them into the one value the summary
counts. ``mean`` (the default), ``majority`` (the most common value; a tie goes to the smaller), ``max``,
``min``, ``all`` (1 when every epoch has the value 1, else 0) and ``pass_at_K`` (the unbiased pass@K of
Chen et al. 2021 over the epochs, counting an epoch correct when its value is 1; K a whole number from 1 to
the number of epochs).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from insideLLMs.stats._intervals import pass_at_k

#: the reducers' names; ``pass_at_K`` stands for pass_at_1, pass_at_2, ...
REDUCERS = ("mean", "majority", "max", "min", "all", "pass_at_K")
DEFAULT_REDUCER = "mean"
_PASS_AT = re.compile(r"pass_at_([1-9][0-9]*)")


@dataclass(frozen=True, slots=True)
class Reducer:
    """A reducer by name; ``k`` is pass@K's K (None for the others)."""

    name: str
    k: int | None = None

    @classmethod
    def parse(cls, name: str, epochs: int | None = None) -> "Reducer":
        """The reducer called ``name``, or ValueError saying what names exist (and, with ``epochs``, that pass@K
        needs K ≤ epochs)."""
        if not isinstance(name, str):
            raise ValueError(f"a reducer is a name ({', '.join(REDUCERS)}), not {name!r}")
        if name in REDUCERS and name != "pass_at_K":
            return cls(name)
        match = _PASS_AT.fullmatch(name)
        if match is None:
            raise ValueError(f"unknown reducer {name!r} (reducers: {', '.join(REDUCERS)}, e.g. pass_at_1)")
        k = int(match.group(1))
        if epochs is not None and k > epochs:
            raise ValueError(f"reducer {name!r} needs at least {k} epochs, the run has {epochs}")
        return cls(name, k)

    def reduce(self, values: Sequence[float]) -> float | None:
        """The one value of an example whose epochs gave ``values`` (those with a value; None when there are
        none, or fewer than pass@K's K)."""
        if not values:
            return None
        name = self.name
        if name == "mean":
            return math.fsum(values) / len(values)
        if name == "max":
            return max(values)
        if name == "min":
            return min(values)
        if name == "all":
            return 1.0 if all(v == 1 for v in values) else 0.0
        if name == "majority":
            counts = Counter(values)
            return min(counts, key=lambda v: (-counts[v], v))
        assert self.k is not None
        if len(values) < self.k:
            return None
        return pass_at_k(len(values), sum(1 for v in values if v == 1), self.k)


def within_variance(values: Sequence[float]) -> float | None:
    """The sample variance (n − 1) of one example's values across its epochs; None with fewer than two."""
    n = len(values)
    if n < 2:
        return None
    mean = math.fsum(values) / n
    return math.fsum((v - mean) ** 2 for v in values) / (n - 1)
