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
from insideLLMs.models.base import Completion, Message
from insideLLMs.probes.base import Probe, Verdict
from insideLLMs.probes.text_match import contains_tokens, expected_answers, extract_final_answer, token_f1, tokens

ANSWER_INSTRUCTION = "Answer with just the answer, in as few words as possible."


class FactualityProbe(Probe):
    name: ClassVar[str] = "factuality"
    version: ClassVar[str] = "1"
    default_dataset: ClassVar[str | None] = "factuality.jsonl"

    def __init__(self, instruction: bool = True) -> None:
        """``instruction=False`` sends the question as it is, without asking for a short answer."""
        super().__init__(instruction=instruction)

    def build(self, example: Example) -> list[Message]:
        prompt = str(example.data["prompt"])
        if self.params["instruction"]:
            prompt = f"{prompt}\n{ANSWER_INSTRUCTION}"
        return [{"role": "user", "content": prompt}]

    def score(self, example: Example, completion: Completion) -> Verdict:
        expected = expected_answers(example)
        text = completion.text
        candidate = extract_final_answer(text) or text.strip()
        reply_tokens, candidate_tokens = tokens(text), tokens(candidate)
        match = any(contains_tokens(reply_tokens, tokens(e)) for e in expected)
        exact = any(candidate_tokens == tokens(e) for e in expected)
        f1 = max(token_f1(candidate, e) for e in expected)
        return Verdict(scores={"match": match, "exact_match": exact, "f1": round(f1, 4)}, passed=match)
