"""Numbers compared as numbers: the answer's number (its marked final answer's, else its last) against
the target's, within a tolerance. Thousands separators, signs, decimals, exponents, currency signs and
units around the number ("$1,200.50", "12 kg", "45%", "−3") are read as people write them."""

from __future__ import annotations

import math
import re
import unicodedata
from typing import ClassVar

from insideLLMs.config import SchemaError
from insideLLMs.scorers.base import Answer, Score, Scorer
from insideLLMs.scorers.text_match import extract_final_answer, is_number, tokens

#: a number as written in text: 1,000,000 / 1000 / -3.5 / .5 / 2e-3; not the middle of a word or version
_NUMBER_RE = re.compile(r"(?<![\w.,])([-+]?)(\d{1,3}(?:,\d{3})+(?!\d)|\d+)?(\.\d+)?(?:[eE]([-+]?\d+))?")
_MINUS = str.maketrans({"\u2212": "-", "\u2013": "-"})


def numbers_in(text: str) -> list[float]:
    """Every number written in ``text``, in order; number words ("twelve") when it has no digits."""
    plain = unicodedata.normalize("NFKC", text).translate(_MINUS)
    found: list[float] = []
    for match in _NUMBER_RE.finditer(plain):
        sign, whole, fraction, exponent = match.groups()
        if whole is None and fraction is None:
            continue
        literal = f"{sign}{(whole or '0').replace(',', '')}{fraction or ''}"
        if exponent is not None:
            literal += f"e{exponent}"
        found.append(float(literal))
    if not found:
        found = [float(t) for t in tokens(plain) if is_number(t)]
    return found


class NumericScorer(Scorer):
    """The answer's number equals the target's, within a tolerance; units and separators aside.

    ``tolerance`` is absolute, ``relative`` a fraction of the target; both 0 by default, i.e. equal as
    numbers ("3.0" == "3", "1,000" == "1000")."""

    name: ClassVar[str] = "numeric"

    def __init__(self, tolerance: float = 0.0, relative: float = 0.0) -> None:
        for key, value in (("tolerance", tolerance), ("relative", relative)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or math.isnan(value):
                raise SchemaError((key,), f"expected a number >= 0, got {value!r}")
        params = {k: v for k, v in (("tolerance", tolerance), ("relative", relative)) if v}
        super().__init__(**params)
        self._abs, self._rel = float(tolerance), float(relative)

    def target_problem(self, targets: tuple[str, ...], choices: tuple[str, ...]) -> str | None:
        if problem := super().target_problem(targets, choices):
            return problem
        for target in targets:
            if not numbers_in(target):
                return f"target {target!r} is not a number (scorer numeric)"
        return None

    def score(self, answer: Answer) -> Score:
        marked = extract_final_answer(answer.text)
        said = numbers_in(marked) if marked is not None else []
        if said:
            value = said[0]
        else:
            everything = numbers_in(answer.text)
            if not everything:
                return Score(False, False)
            value = everything[-1]
        hit = any(self._close(value, numbers_in(t)[0]) for t in answer.targets)
        return Score(hit, hit)

    def _close(self, value: float, target: float) -> bool:
        return math.isclose(value, target, rel_tol=self._rel, abs_tol=max(self._abs, 1e-9))
