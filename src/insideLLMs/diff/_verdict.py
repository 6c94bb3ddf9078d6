"""How two records of the same example compare: worse, better, merely changed, or the same.

The rules: status ``success`` beats every other status; ``passed`` true beats false; a score is
higher-is-better unless its name ends in one of :data:`LOWER_IS_BETTER_SUFFIXES` (booleans too:
``timed_out: true`` is worse), and must move by more than its tolerance to count at all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson

#: score names ending in one of these are lower-is-better (booleans too: ``timed_out: true`` is worse)
LOWER_IS_BETTER_SUFFIXES = (
    "error", "errors", "loss", "latency", "latency_ms", "bias", "toxicity", "distance",
    "perplexity", "timed_out", "violations",
)


def lower_is_better(name: str, extra: frozenset[str]) -> bool:
    """Whether a smaller value of score ``name`` is the better one (its suffix, or ``--lower-is-better``)."""
    return name in extra or name.lower().endswith(LOWER_IS_BETTER_SUFFIXES)


def show(value: Any) -> str:
    return orjson.dumps(value).decode() if not isinstance(value, str) else value


class Classifier:
    """Decides the class of a pair; the verdict comparison rules live here and nowhere else."""

    def __init__(self, tolerances: Mapping[str, float], lower_is_better: frozenset[str], ignore: tuple[str, ...]):
        self.default_tol = tolerances.get("*", 0.0)
        self.tolerances = tolerances
        self.lower = lower_is_better
        self.ignore = ignore

    def classify(self, b: dict[str, Any], c: dict[str, Any]) -> tuple[str, list[str], list[str]]:
        """(class, reasons, changed fields) for two records with the same key."""
        worse: list[str] = []
        better: list[str] = []
        bs, cs = b.get("status"), c.get("status")
        if bs != cs and "success" in (bs, cs):
            (worse if bs == "success" else better).append(f"status {bs} → {cs}")
        bp, cp = b.get("passed"), c.get("passed")
        if bp is not cp and isinstance(bp, bool) and isinstance(cp, bool):
            (worse if bp else better).append(f"passed {show(bp)} → {show(cp)}")
        score_fields_equal = self._scores(b.get("scores") or {}, c.get("scores") or {}, worse, better)
        fields = sorted(  # scores by the rules above: Python's 1 == True would hide a score that changed type
            k for k in b.keys() | c.keys()
            if k not in self.ignore and (not score_fields_equal if k == "scores" else b.get(k) != c.get(k))
        )
        if worse:
            return "regression", worse + better, fields
        if better:
            return "improvement", better, fields
        if fields:
            return "changed", [f"{', '.join(fields)} changed"], fields
        return "unchanged", [], []

    def _scores(self, bsc: dict[str, Any], csc: dict[str, Any], worse: list[str], better: list[str]) -> bool:
        """Compare scores within tolerance; True when they are equal up to tolerance."""
        equal = True
        for name in sorted(bsc.keys() | csc.keys()):
            bv, cv = bsc.get(name), csc.get(name)
            if bv == cv and type(bv) is type(cv):
                continue
            numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (bv, cv))
            boolean = isinstance(bv, bool) and isinstance(cv, bool)
            if not (numeric or boolean):
                equal = False  # a score appeared, vanished or changed type: a change, not a verdict
                continue
            delta = float(cv) - float(bv)
            tol = 0.0 if boolean else self.tolerances.get(name, self.default_tol)
            if abs(delta) <= tol or math.isclose(abs(delta), tol, rel_tol=1e-9):  # 0.55 - 0.50 is 0.05000000000000004
                continue
            equal = False
            lower = lower_is_better(name, self.lower)
            got_worse = (delta > 0) if lower else (delta < 0)
            note = f"score {name} {show(bv)} → {show(cv)}" + (" (lower is better)" if lower else "")
            (worse if got_worse else better).append(note)
        return equal
