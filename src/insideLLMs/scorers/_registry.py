"""Scorer types by name, and building the named scorers a config lists.

A config entry is a type name (``exact``) or a mapping ``{type: ..., name: ..., **params}``; ``name`` is the
score's key in the record (default: the type's name) and must be unique within one probe.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from insideLLMs.config import SchemaError
from insideLLMs.registry import Registry, UnknownTypeError
from insideLLMs.scorers.base import Scorer

SCORERS = Registry(
    kind="scorer",
    base=Scorer,
    builtins={
        "exact": "insideLLMs.scorers._match:ExactScorer",
        "includes": "insideLLMs.scorers._match:IncludesScorer",
        "f1": "insideLLMs.scorers._match:F1Scorer",
        "regex": "insideLLMs.scorers._regex:RegexScorer",
        "numeric": "insideLLMs.scorers._numeric:NumericScorer",
        "choice": "insideLLMs.scorers._choice:ChoiceScorer",
        "json": "insideLLMs.scorers._json:JsonScorer",
        "judge": "insideLLMs.scorers._judge:JudgeScorer",
        "pairwise": "insideLLMs.scorers._judge:PairwiseScorer",
    },
    entry_point_group="insidellms.scorers",
)


@dataclass(frozen=True, slots=True)
class NamedScorer:
    """A scorer and the name its score has in the record."""

    name: str
    scorer: Scorer


def get_scorer(type: str, **params: Any) -> Scorer:
    """Build a scorer by type name (a built-in, a plugin entry point, or ``pkg.mod:Class``)."""
    return SCORERS.resolve(type)(**params)


def build_scorer(entry: Any, loc: tuple[str | int, ...] = ()) -> NamedScorer:
    """One config entry as a named scorer; a mistake is a ``SchemaError`` at ``loc`` (and the key in the entry)."""
    if isinstance(entry, str):
        entry = {"type": entry}
    if not isinstance(entry, dict):
        raise SchemaError(loc, f"expected a scorer type name or a mapping with 'type', got {entry!r}")
    if "type" not in entry:
        raise SchemaError(loc, "a scorer needs 'type' (exact, includes, regex, numeric, choice, json, f1, ...)")
    params = {k: v for k, v in entry.items() if k not in ("type", "name")}
    type_name, name = entry["type"], entry.get("name")
    if not isinstance(type_name, str):
        raise SchemaError((*loc, "type"), f"expected a scorer type name, got {type_name!r}")
    try:
        cls = SCORERS.resolve(type_name)
    except UnknownTypeError as exc:
        raise SchemaError((*loc, "type"), str(exc)) from None
    try:
        inspect.signature(cls).bind(**params)
    except TypeError as exc:
        raise SchemaError(loc, f"bad args for scorer type {type_name!r}: {exc}") from None
    try:
        scorer = cls(**params)
    except SchemaError as exc:
        raise SchemaError((*loc, *exc.loc), exc.message) from None
    except (TypeError, ValueError) as exc:
        raise SchemaError(loc, f"bad args for scorer type {type_name!r}: {exc}") from None
    if name is None:
        name = cls.name
    if not isinstance(name, str) or not name.strip():
        raise SchemaError((*loc, "name"), f"a scorer's name must be a non-empty string, got {name!r}")
    return NamedScorer(name, scorer)


def build_scorers(entries: Any, loc: tuple[str | int, ...] = ("scorers",)) -> list[NamedScorer]:
    """Every entry of a ``scorers:`` list, built and checked; two scorers with one name is a mistake."""
    if not isinstance(entries, list):
        raise SchemaError(loc, f"expected a list of scorers, got {entries!r}")
    named: list[NamedScorer] = []
    for index, entry in enumerate(entries):
        built = build_scorer(entry, (*loc, index))
        if any(other.name == built.name for other in named):
            raise SchemaError((*loc, index), f"two scorers are named {built.name!r}; give this one a distinct 'name'")
        named.append(built)
    return named


__all__ = ["NamedScorer", "SCORERS", "build_scorer", "build_scorers", "get_scorer"]
