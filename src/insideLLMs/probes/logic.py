"""Reasoning puzzles with one short right answer (a number, yes/no, a name or a word).

Example fields: ``prompt``, ``answer`` and optional ``aliases`` (other accepted spellings).
The prompt asks for a final ``Answer: ...`` line; scoring takes that line (or "the answer is
X", or the reply's last line when nothing is marked) and compares it with the expected answer
after normalisation. ``exact_match`` is the verdict; ``contains_answer`` says whether the right
answer appears anywhere in the reply, which tells "reasoned wrongly" from "formatted badly".
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
    last_line,
    tokens,
    tokens_match,
)

ANSWER_INSTRUCTION = "Think it through briefly, then give your final answer on the last line as 'Answer: <answer>'."


class LogicProbe(QuestionProbe):
    name: ClassVar[str] = "logic"
    version: ClassVar[str] = "1"
    default_dataset: ClassVar[str | None] = "logic.jsonl"
    answer_instruction: ClassVar[str] = ANSWER_INSTRUCTION
    instruction_separator: ClassVar[str] = "\n\n"

    def score(self, example: Example, completion: Completion) -> Verdict:
        expected = [answer_tokens(e) for e in expected_answers(example)]
        text = completion.text
        marked = extract_final_answer(text)
        candidate = tokens(marked if marked is not None else last_line(text))
        exact = any(tokens_match(candidate, e, explicit=marked is not None) for e in expected)
        reply_tokens = tokens(text)
        contains = any(contains_tokens(reply_tokens, e) for e in expected)
        return Verdict(
            scores={"exact_match": exact, "contains_answer": contains, "answer_marked": marked is not None},
            passed=exact,
        )
