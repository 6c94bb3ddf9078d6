"""Comparing a model's free-text answer with an expected short answer.

Shared by the ``logic`` and ``factuality`` probes: normalisation (case, punctuation, articles,
numbers written as words, thousands separators), pulling the final answer out of a longer
reply ("Answer: X", "the answer is X", ``\\boxed{X}``), and SQuAD-style token F1.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

from insideLLMs.datasets import Example

_ARTICLES = frozenset({"a", "an", "the"})
_UNITS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen".split()
    )
}
_TENS = {w: 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), start=2)}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_NUMBER_WORDS = frozenset(_UNITS) | frozenset(_TENS) | frozenset(_SCALES)

_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2212": "-"})
_NUMBER_RE = re.compile(r"^-?\d+(?:\.\d+)?$")
_YES_NO = frozenset({"yes", "no"})


def normalize(text: str) -> str:
    """Lower-case, drop punctuation and articles, write numbers as canonical digits."""
    return " ".join(tokens(text))


def tokens(text: str) -> list[str]:
    """The normalised tokens of ``text`` (see :func:`normalize`)."""
    s = unicodedata.normalize("NFKC", text).translate(_QUOTES).lower()
    s = re.sub(r"(?<=\d),(?=\d{3}\b)", "", s)  # 1,000 -> 1000
    s = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", s)  # keep only decimal points
    s = re.sub(r"(?<![\w.])-(?=\d)", " \x00", s)  # protect a leading minus sign
    s = re.sub(r"[^\w\s.\x00]|_", " ", s).replace("\x00", "-")
    words = [w for w in s.split() if w not in _ARTICLES]
    return [_canonical_number(w) for w in _words_to_numbers(words)]


def _canonical_number(word: str) -> str:
    if not _NUMBER_RE.match(word):
        return word
    value = float(word)
    return str(int(value)) if value.is_integer() else repr(value)


def _words_to_numbers(words: list[str]) -> list[str]:
    """Replace runs like ``twenty one`` or ``three hundred and five`` with ``21`` / ``305``."""
    out: list[str] = []
    i = 0
    while i < len(words):
        if words[i] not in _NUMBER_WORDS or words[i] in _SCALES:
            out.append(words[i])
            i += 1
            continue
        total = current = 0
        last = ""  # kind of the previous word: unit, teen, tens, scale
        j = i
        while j < len(words):
            w = words[j]
            if w in _UNITS:
                kind = "unit" if _UNITS[w] < 10 else "teen"
                if last in ("unit", "teen") or (last == "tens" and kind == "teen"):
                    break
                current += _UNITS[w]
            elif w in _TENS:
                if last in ("unit", "teen", "tens"):
                    break
                kind = "tens"
                current += _TENS[w]
            elif w in _SCALES:
                kind = "scale"
                if _SCALES[w] == 100:
                    current *= 100
                else:
                    total += current * _SCALES[w]
                    current = 0
            elif w == "and" and last == "scale" and j + 1 < len(words) and words[j + 1] in _NUMBER_WORDS:
                j += 1
                continue
            else:
                break
            last = kind
            j += 1
        out.append(str(total + current))
        i = j
    return out


def is_number(token: str) -> bool:
    return bool(_NUMBER_RE.match(token))


# -- final-answer extraction -------------------------------------------------------------------

_ANSWER_PATTERNS = [
    re.compile(r"\\boxed\{([^{}]*)\}"),
    re.compile(
        r"(?im)^[^\S\n]*(?:[#>\-]+[^\S\n]*)?(?:(?:the|my|final|correct)[^\S\n]+)*answer[^\S\n]*[:\uff1a][^\S\n]*(.+)$"
    ),
    re.compile(
        r"(?i)\b(?:final\s+)?answer\s+(?:is|would\s+be|will\s+be|=)\s*:?\s*(.+?)(?:\.(?!\d)|\n|$)"
    ),
]


def extract_final_answer(text: str) -> str | None:
    """The last explicitly marked answer in ``text``, or None when the reply marks none."""
    plain = re.sub(r"\*\*|__|`", "", text)
    best: tuple[int, str] | None = None
    for pattern in _ANSWER_PATTERNS:
        for match in pattern.finditer(plain):
            if best is None or match.start() > best[0]:
                best = (match.start(), match.group(1))
    if best is None:
        return None
    answer = best[1].strip().strip("\"'*").strip()
    return answer.rstrip(".!;,").strip() or None


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


# -- comparisons ---------------------------------------------------------------------------------


def contains_tokens(haystack: list[str], needle: list[str]) -> bool:
    """Whether ``needle`` occurs as a contiguous run of whole tokens in ``haystack``."""
    if not needle:
        return False
    n = len(needle)
    return any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD-style F1 over normalised tokens."""
    pred, ref = tokens(prediction), tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def answer_matches(candidate: str, expected: str, *, explicit: bool) -> bool:
    """Whether a short ``candidate`` answer says ``expected``.

    Numbers compare as numbers (the first one in an explicit answer, the last one otherwise);
    yes/no compares the first yes/no word; anything else must equal the expected answer or
    start with it ("Tuesday, because ..." matches "Tuesday").
    """
    cand, exp = tokens(candidate), tokens(expected)
    if not exp:
        return False
    if cand == exp:
        return True
    if len(exp) == 1 and is_number(exp[0]):
        numbers = [t for t in cand if is_number(t)]
        if not numbers:
            return False
        return (numbers[0] if explicit else numbers[-1]) == exp[0]
    if len(exp) == 1 and exp[0] in _YES_NO:
        first = next((t for t in cand if t in _YES_NO), None)
        return first == exp[0]
    return cand[: len(exp)] == exp


def expected_answers(example: Example) -> list[str]:
    """The example's ``answer`` plus its ``aliases``, as strings."""
    data = example.data
    if "answer" not in data:
        raise ValueError(f"example {example.id!r} has no 'answer' field")
    aliases = data.get("aliases") or []
    if isinstance(aliases, str):
        aliases = [aliases]
    return [str(data["answer"]), *(str(a) for a in aliases)]
