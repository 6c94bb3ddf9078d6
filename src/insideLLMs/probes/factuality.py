"""Factual questions with an expected answer and accepted aliases.

Example fields: ``prompt`` (the question), ``answer``, optional ``aliases``. An answer
matches when, after normalisation (case, punctuation, articles, numbers as words), the
expected answer or an alias appears as whole words in the reply; ``exact_match`` is the
stricter "the (marked) answer is exactly that", and ``f1`` is the best token F1 against any
accepted answer, a graded signal for partly right replies.
"""

from __future__ import annotations

from typing import ClassVar

from insideLLMs.datasets import Example
from insideLLMs.models.base import Completion
from insideLLMs.probes._question import QuestionProbe
from insideLLMs.probes.base import Verdict
from insideLLMs.scorers.text_match import (
    answer_tokens,
    contains_tokens,
    expected_answers,
    extract_final_answer,
    tokens,
    tokens_f1,
)

ANSWER_INSTRUCTION = "Answer with just the answer, in as few words as possible."


class FactualityProbe(QuestionProbe):
    name: ClassVar[str] = "factuality"
    version: ClassVar[str] = "1"
    default_dataset: ClassVar[str | None] = "factuality.jsonl"
    answer_instruction: ClassVar[str] = ANSWER_INSTRUCTION

    def score(self, example: Example, completion: Completion) -> Verdict:
        expected = [list(answer_tokens(e)) for e in expected_answers(example)]
        text = completion.text
        marked = extract_final_answer(text)
        reply_tokens = tokens(text)
        # without a marked answer the candidate is the whole reply: surrounding whitespace
        # never changes the tokens, so the reply's tokens are reused
        candidate_tokens = tokens(marked) if marked else reply_tokens
        match = any(contains_tokens(reply_tokens, e) for e in expected)
        exact = any(candidate_tokens == e for e in expected)
        f1 = max(tokens_f1(candidate_tokens, e) for e in expected)
        return Verdict(scores={"match": match, "exact_match": exact, "f1": round(f1, 4)}, passed=match)
