"""Text against the target, after normalisation (case, whitespace, punctuation, articles, number forms):
``exact`` (the whole answer is a target), ``includes`` (a target occurs in it as whole words), ``f1``
(SQuAD-style token F1 with the best target). Normalisation is ``text_match.tokens``, which the ``logic``
and ``factuality`` probes use too, so "1,000" == "1000", "3.0" == "3" and "twelve" == "12" everywhere."""

from __future__ import annotations

from typing import ClassVar

from insideLLMs.config import SchemaError
from insideLLMs.scorers.base import Answer, Score, Scorer
from insideLLMs.scorers.text_match import answer_tokens, contains_tokens, tokens, tokens_f1


class ExactScorer(Scorer):
    """Normalised exact match: the whole answer equals a target (case, punctuation, number forms aside)."""

    name: ClassVar[str] = "exact"

    def __init__(self) -> None:
        super().__init__()

    def score(self, answer: Answer) -> Score:
        said = tuple(tokens(answer.text))
        hit = bool(said) and any(said == answer_tokens(t) for t in answer.targets)
        return Score(hit, hit)


class IncludesScorer(Scorer):
    """The answer contains a target as whole words, after normalisation (every target with ``all: true``)."""

    name: ClassVar[str] = "includes"

    def __init__(self, all: bool = False) -> None:  # noqa: A002 - the config key
        if not isinstance(all, bool):
            raise SchemaError(("all",), f"expected true or false, got {all!r}")
        super().__init__(**({"all": True} if all else {}))
        self._all = all

    def score(self, answer: Answer) -> Score:
        said = tokens(answer.text)
        found = [contains_tokens(said, answer_tokens(t)) for t in answer.targets]
        hit = all(found) if self._all else any(found)
        return Score(hit, hit)


class F1Scorer(Scorer):
    """Token F1 with the best-matching target (0 to 1); passes at ``threshold`` when one is given."""

    name: ClassVar[str] = "f1"

    def __init__(self, threshold: float | None = None) -> None:
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))
                                      or not 0 <= threshold <= 1):
            raise SchemaError(("threshold",), f"expected a number from 0 to 1, got {threshold!r}")
        super().__init__(**({"threshold": threshold} if threshold is not None else {}))
        self.threshold = threshold

    @property
    def gives_pass(self) -> bool:
        return self.threshold is not None

    def score(self, answer: Answer) -> Score:
        said = tokens(answer.text)
        best = round(max((tokens_f1(said, answer_tokens(t)) for t in answer.targets), default=0.0), 4)
        return Score(best, None if self.threshold is None else best >= self.threshold)
