"""Multiple choice: which letter the answer picked, against the target's letter.

The pick is read as people write it: "B", "(B)", "B.", "B) Paris", "**B**", "Answer: B", "The answer is
(B).", "I'd go with option B"; failing a letter, the one choice whose text the answer gives. The target
is a letter ("B", "b", "(B)") or the text of one of the choices.
"""

from __future__ import annotations

import re
import string
from typing import ClassVar

from insideLLMs.scorers.base import Answer, Score, Scorer
from insideLLMs.scorers.text_match import answer_tokens, contains_tokens, extract_final_answer, tokens

LETTERS = string.ascii_uppercase
_EMPHASIS = re.compile(r"\*\*|__|`")
#: a letter standing alone: "B", "(B)", "[B]", "B.", "B)", "B:" then the end or a space (and the choice's text)
_LEADING = re.compile(r"^\s*(?:[(\[]\s*([A-Za-z])\s*[)\]]|([A-Z])(?:[.):]|(?=\s*$)))(?:\s|$)")
_NAMED = re.compile(r"(?i)\b(?:option|choice|letter|answer(?:\s+is)?)\s*[:\-]?\s*[(\[]?([A-Z])\b(?![\w'])")
_BRACKETED = re.compile(r"[(\[]([A-Z])[)\]]")


def picked_letter(text: str, n_choices: int | None = None) -> str | None:
    """The letter ``text`` picks (upper case), or None; with ``n_choices``, only letters A.. that many."""
    allowed = LETTERS[: n_choices] if n_choices else LETTERS

    def ok(letter: str | None) -> str | None:
        return letter.upper() if letter and letter.upper() in allowed else None

    plain = _EMPHASIS.sub("", text).strip()
    marked = extract_final_answer(plain)
    for candidate in ([marked] if marked else []) + [plain]:
        if (m := _LEADING.match(candidate)) and (letter := ok(m.group(1) or m.group(2))):
            return letter
        if len(candidate.strip()) == 1 and (letter := ok(candidate.strip())):  # a lone "b"
            return letter
    named = {ok(m.group(1)) for m in _NAMED.finditer(plain)} - {None}
    if len(named) == 1:
        return named.pop()
    bracketed = {ok(m.group(1)) for m in _BRACKETED.finditer(plain)} - {None}
    if len(bracketed) == 1:
        return bracketed.pop()
    return None


def target_letter(target: str, choices: tuple[str, ...]) -> str | None:
    """The letter a target names: itself ("B", "(b)"), or the letter of the choice whose text it is."""
    stripped = target.strip().strip("()[].").strip()
    if len(stripped) == 1 and stripped.upper() in LETTERS[: len(choices) or len(LETTERS)]:
        return stripped.upper()
    wanted = answer_tokens(target)
    for index, choice in enumerate(choices):
        if wanted and answer_tokens(choice) == wanted:
            return LETTERS[index]
    return None


class ChoiceScorer(Scorer):
    """The letter the answer picks is the target's letter."""

    name: ClassVar[str] = "choice"

    def __init__(self) -> None:
        super().__init__()

    def target_problem(self, targets: tuple[str, ...], choices: tuple[str, ...]) -> str | None:
        if problem := super().target_problem(targets, choices):
            return problem
        for target in targets:
            if target_letter(target, choices) is None:
                letters = "A" if len(choices) == 1 else f"A-{LETTERS[len(choices) - 1] if choices else 'Z'}"
                return f"target {target!r} is neither a letter {letters} nor the text of a choice (scorer choice)"
        return None

    def score(self, answer: Answer) -> Score:
        letter = picked_letter(answer.text, len(answer.choices) or None)
        if letter is None and answer.choices:
            said = tokens(answer.text)
            given = [i for i, c in enumerate(answer.choices) if contains_tokens(said, answer_tokens(c))]
            letter = LETTERS[given[0]] if len(given) == 1 else None
        hit = letter is not None and letter in {target_letter(t, answer.choices) for t in answer.targets}
        return Score(hit, hit)
