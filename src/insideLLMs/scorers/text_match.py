"""Comparing a model's free-text answer with an expected short answer.

Shared by the ``logic`` and ``factuality`` probes and the ``exact``, ``includes`` and ``f1`` scorers: normalisation (case, punctuation, articles,
numbers written as words, thousands separators), pulling the final answer out of a longer
reply ("Answer: X", "the answer is X", ``\\boxed{X}``), and SQuAD-style token F1.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

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
_DIGIT_RE = re.compile(r"\d")
_YES_NO = frozenset({"yes", "no"})

# The normalisation steps of ``tokens``, applied in this order. Each pattern starts with its
# literal character (lookbehinds after it) so that the regex engine can scan for it quickly.
_THOUSANDS_SEP_RE = re.compile(r",(?<=\d,)(?=\d{3}\b)")  # 1,000 -> 1000
_NON_DECIMAL_DOT_RE = re.compile(r"\.(?:(?<!\d\.)|(?!\d))")  # keep only decimal points
_LEADING_MINUS_RE = re.compile(r"-(?<![\w.]-)(?=\d)")  # protected as \x00 through the next step
_PUNCTUATION_RE = re.compile(r"[^\w\s.\x00]|_")
#: the same as _PUNCTUATION_RE followed by \x00 -> "-", for ASCII text (one C pass, no regex)
#: (bytes.translate: a 1:1 byte table; why bytes, in bench/README.md "Notes moved out of the code")
_ASCII_PUNCTUATION = bytes(
    ord(" ") if _PUNCTUATION_RE.match(chr(c)) else ord("-") if c == 0 else c for c in range(128)
) + bytes(range(128, 256))
#: for ASCII text without digits, where every "." is punctuation too
_ASCII_PUNCTUATION_NO_DIGITS = _ASCII_PUNCTUATION.replace(b".", b" ")


def normalize(text: str) -> str:
    """Lower-case, drop punctuation and articles, write numbers as canonical digits."""
    return " ".join(tokens(text))


def tokens(text: str) -> list[str]:
    """The normalised tokens of ``text`` (see :func:`normalize`)."""
    if text.isascii():  # NFKC and the quote table leave ASCII unchanged
        s = text.lower()
        if _DIGIT_RE.search(s) is None:  # no number: no separator, decimal point or sign to keep
            plain = s.encode("ascii").translate(_ASCII_PUNCTUATION_NO_DIGITS).decode("ascii")
            words = [w for w in plain.split() if w not in _ARTICLES]
            return words if _NUMBER_WORDS.isdisjoint(words) else _canonical_numbers(_words_to_numbers(words), True)
    else:
        s = unicodedata.normalize("NFKC", text).translate(_QUOTES).lower()
    if "," in s:
        s = _THOUSANDS_SEP_RE.sub("", s)
    if "." in s:
        s = _NON_DECIMAL_DOT_RE.sub(" ", s)
    if "-" in s:
        s = _LEADING_MINUS_RE.sub(" \x00", s)
    ascii_only = s.isascii()
    if ascii_only:
        s = s.encode("ascii").translate(_ASCII_PUNCTUATION).decode("ascii")
    else:
        s = _PUNCTUATION_RE.sub(" ", s).replace("\x00", "-")
    words = [w for w in s.split() if w not in _ARTICLES]
    if not _NUMBER_WORDS.isdisjoint(words):
        words = _words_to_numbers(words)
    return _canonical_numbers(words, ascii_only)


def _canonical_numbers(words: list[str], ascii_only: bool) -> list[str]:
    """Every number token in canonical form ("007" -> "7", "2.50" -> "2.5"); a plain integer as it is."""
    match = _NUMBER_RE.match
    if ascii_only:  # an ASCII word that is not a number starts above "9"
        return [
            w if w[0] > "9" or (w.isdigit() and (w[0] != "0" or len(w) == 1))
            else _canonical_number(w) if match(w) else w
            for w in words
        ]
    return [_canonical_number(w) if match(w) else w for w in words]


@lru_cache(maxsize=4096)
def answer_tokens(answer: str) -> tuple[str, ...]:
    """:func:`tokens` of an expected answer, cached: the same answers are scored again and again."""
    return tuple(tokens(answer))


@lru_cache(maxsize=4096)
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

_BOXED_RE = re.compile(r"\\boxed\{([^{}]*)\}")
#: the patterns after \boxed, which all need the word "answer" (ignoring case)
_ANSWER_LINE_RES = (
    re.compile(
        r"(?im)^[^\S\n]*(?:[#>\-]+[^\S\n]*)?(?:(?:the|my|final|correct)[^\S\n]+)*answer[^\S\n]*[:\uff1a][^\S\n]*(.+)$"
    ),
    re.compile(r"(?i)\b(?:final\s+)?answer\s+(?:is|would\s+be|will\s+be|=)\s*:?\s*(.+?)(?:\.(?!\d)|\n|$)"),
)
_ANSWER_PATTERNS = [_BOXED_RE, *_ANSWER_LINE_RES]
_ANSWER_WORD_RE = re.compile(r"(?i)answer")
#: what the last pattern needs, in lower-cased ASCII text
_ANSWER_IS_RE = re.compile(r"answer\s+(?:is|would\s+be|will\s+be|=)")
_EMPHASIS_RE = re.compile(r"\*\*|__|`")


def extract_final_answer(text: str) -> str | None:
    """The last explicitly marked answer in ``text``, or None when the reply marks none."""
    plain = _EMPHASIS_RE.sub("", text) if ("*" in text or "_" in text or "`" in text) else text
    patterns: list[re.Pattern[str]] = []
    if "\\boxed{" in plain:
        patterns.append(_BOXED_RE)
    # Patterns that cannot match are skipped. Unicode case-insensitive matching ("\u017f"
    # matches "s") makes lower-casing a safe pre-check for ASCII text only.
    if plain.isascii():
        lowered = plain.lower()
        if "answer" in lowered:
            patterns.append(_ANSWER_LINE_RES[0])
            if _ANSWER_IS_RE.search(lowered):
                patterns.append(_ANSWER_LINE_RES[1])
    elif _ANSWER_WORD_RE.search(plain):
        patterns.extend(_ANSWER_LINE_RES)
    best: tuple[int, str] | None = None
    for pattern in patterns:
        for match in pattern.finditer(plain):
            if best is None or match.start() > best[0]:
                best = (match.start(), match.group(1))
    if best is None:
        return None
    answer = best[1].strip().strip("\"'*").strip()
    return answer.rstrip(".!;,").strip() or None


def last_line(text: str) -> str:
    for line in reversed(text.strip().splitlines()):
        if line.strip():
            return line
    return ""


# -- comparisons ---------------------------------------------------------------------------------


def contains_tokens(haystack: list[str] | tuple[str, ...], needle: list[str] | tuple[str, ...]) -> bool:
    """Whether ``needle`` occurs as a contiguous run of whole tokens in ``haystack``."""
    if not needle:
        return False
    n = len(needle)
    if n == 1:
        return needle[0] in haystack
    needle = list(needle) if isinstance(haystack, list) else tuple(needle)
    first, stop = needle[0], len(haystack) - n + 1
    i = -1
    try:
        while True:
            i = haystack.index(first, i + 1, stop)
            if haystack[i : i + n] == needle:
                return True
    except ValueError:
        return False


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD-style F1 over normalised tokens."""
    return tokens_f1(tokens(prediction), tokens(reference))


def tokens_f1(pred: list[str] | tuple[str, ...], ref: list[str] | tuple[str, ...]) -> float:
    """:func:`token_f1` of already normalised token lists."""
    if not pred or not ref:
        return float(len(pred) == len(ref))
    # the size of the multiset intersection, counted from the side with fewer distinct tokens
    small, large = (ref, pred) if len(ref) <= len(pred) else (pred, ref)
    common = sum(min(small.count(t), large.count(t)) for t in set(small))
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
    return tokens_match(tokens(candidate), answer_tokens(expected), explicit=explicit)


def tokens_match(cand: list[str] | tuple[str, ...], exp: list[str] | tuple[str, ...], *, explicit: bool) -> bool:
    """:func:`answer_matches` of already normalised token lists."""
    if not exp:
        return False
    cand, exp = list(cand), list(exp)
    if cand == exp:
        return True
    if len(exp) == 1 and is_number(exp[0]):
        match = _NUMBER_RE.match  # normalised numbers start with a digit or "-", both <= "9"; words do not
        number = next((t for t in (cand if explicit else reversed(cand)) if t[0] <= "9" and match(t)), None)
        return number == exp[0]
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
