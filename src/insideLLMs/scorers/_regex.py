"""A regular expression over the answer: matched or not, or another scorer applied to what it captured
(``{type: regex, pattern: "Answer:\\s*(\\w+)", then: exact}`` scores the captured word against the target)."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from insideLLMs.config import SchemaError
from insideLLMs.scorers.base import Answer, Score, Scorer


class RegexScorer(Scorer):
    """A regular expression found in the answer, or another scorer on what it captured.

    ``pattern`` is searched in the answer; with ``then``, that scorer is applied to the captured group
    (``group``: default the first group, or the whole match when the pattern has none)."""

    name: ClassVar[str] = "regex"

    def __init__(self, pattern: str, then: Any = None, group: int | str | None = None,
                 ignore_case: bool = False) -> None:
        if not isinstance(pattern, str) or not pattern:
            raise SchemaError(("pattern",), f"expected a regular expression, got {pattern!r}")
        try:
            compiled = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
        except re.error as exc:
            raise SchemaError(("pattern",), f"bad regular expression {pattern!r}: {exc}") from None
        if group is None:
            group = 1 if compiled.groups else 0
        if isinstance(group, bool) or not isinstance(group, (int, str)):
            raise SchemaError(("group",), f"expected a group number or name, got {group!r}")
        if (isinstance(group, int) and not 0 <= group <= compiled.groups) or (
                isinstance(group, str) and group not in compiled.groupindex):
            raise SchemaError(("group",), f"the pattern has no group {group!r}")
        inner = None
        if then is not None:
            from insideLLMs.scorers._registry import build_scorer  # the registry lists this module

            inner = build_scorer(then, ("then",)).scorer
        params: dict[str, Any] = {"pattern": pattern}
        if then is not None:
            params["then"] = then
        if group != (1 if compiled.groups else 0):
            params["group"] = group
        if ignore_case:
            params["ignore_case"] = True
        super().__init__(**params)
        self._pattern, self._group, self._then = compiled, group, inner
        self.needs_target = inner is not None and inner.needs_target  # type: ignore[misc]

    @property
    def spec(self) -> dict[str, Any]:
        spec = super().spec
        return spec if self._then is None else {**spec, "then": self._then.spec}

    @property
    def gives_pass(self) -> bool:
        return self._then is None or self._then.gives_pass

    def target_problem(self, targets: tuple[str, ...], choices: tuple[str, ...]) -> str | None:
        return self._then.target_problem(targets, choices) if self._then is not None else None

    def score(self, answer: Answer) -> Score:
        match = self._pattern.search(answer.text)
        if self._then is None:
            return Score(match is not None, match is not None)
        captured = match.group(self._group) if match is not None else None
        if captured is None:  # no match, or an optional group that took no part
            inner = self._then.score(Answer("", answer.targets, answer.choices, answer.example))
            return Score(type(inner.value)(0), False if inner.passed is not None else None, {"matched": False})
        inner = self._then.score(Answer(captured, answer.targets, answer.choices, answer.example))
        return Score(inner.value, inner.passed, {"matched": True})
