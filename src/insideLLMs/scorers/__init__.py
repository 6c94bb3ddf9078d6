"""Scorers: how the ``prompt`` probe grades an answer, each a named score in the record.

Built in: ``exact``, ``includes``, ``f1``, ``regex``, ``numeric``, ``choice``, ``json``. A custom scorer
subclasses ``Scorer`` and is named in a config as ``pkg.mod:Class`` or through the ``insidellms.scorers``
entry-point group, as probes and models are.
"""

from __future__ import annotations

from insideLLMs.scorers._registry import SCORERS, NamedScorer, build_scorer, build_scorers, get_scorer
from insideLLMs.scorers.base import Answer, Score, ScoreContext, Scorer, ScoreValue

__all__ = [
    "Answer",
    "NamedScorer",
    "SCORERS",
    "Score",
    "ScoreContext",
    "ScoreValue",
    "Scorer",
    "build_scorer",
    "build_scorers",
    "get_scorer",
]
