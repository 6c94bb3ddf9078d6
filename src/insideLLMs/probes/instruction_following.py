"""Instructions with checkable constraints: word limits, JSON with required keys, bullet counts.

Each example declares its constraints next to the prompt, e.g.
``{"prompt": "...", "constraints": {"max_words": 50, "lowercase": true}}``. Every constraint
becomes one boolean score of the same name, plus ``fraction_satisfied``; the example passes
when all are met. The prompt itself states the constraints in words; the probe sends it as is.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, ClassVar

from insideLLMs.datasets import Example
from insideLLMs.models.base import Completion
from insideLLMs.probes.base import Probe, Verdict

_WORD_RE = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")
_BULLET_RE = re.compile(r"^\s*[-*\u2022+]\s+\S", re.MULTILINE)
_NUMBERED_RE = re.compile(r"^\s*\d+[.)]\s+\S", re.MULTILINE)
_FENCE_RE = re.compile(r"^```[\w-]*\s*\n(.*?)\n?```$", re.DOTALL)
_SENTENCE_END_RE = re.compile(r"[.!?]+(?=\s|$)")


def word_count(text: str) -> int:
    return len(_WORD_RE.findall(text))


def sentence_count(text: str) -> int:
    stripped = text.strip()
    if not stripped:
        return 0
    ends = len(_SENTENCE_END_RE.findall(stripped))
    return ends + (0 if _SENTENCE_END_RE.search(stripped[-1:] + " ") else 1)


def paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]


def parse_json_reply(text: str) -> Any:
    """The JSON value the reply consists of (a surrounding ``` fence is tolerated); raises ValueError."""
    body = text.strip()
    fenced = _FENCE_RE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    return json.loads(body)


def _json_ok(text: str) -> bool:
    try:
        parse_json_reply(text)
    except ValueError:
        return False
    return True


def _has_keys(text: str, keys: list[str]) -> bool:
    try:
        value = parse_json_reply(text)
    except ValueError:
        return False
    return isinstance(value, dict) and all(k in value for k in keys)


def _format(text: str, kind: str) -> bool:
    if kind == "json":
        return _json_ok(text)
    if kind == "bullets":
        lines = [line for line in text.strip().splitlines() if line.strip()]
        return bool(lines) and all(_BULLET_RE.match(line) for line in lines)
    raise ValueError(f"unknown format {kind!r}; known formats: json, bullets")


def _letters(text: str) -> str:
    return "".join(ch for ch in text if ch.isalpha())


def _all_letters(text: str, case: Callable[[str], str], wanted: Any) -> bool:
    """Whether the reply has letters and all are in ``case`` (str.lower/str.upper), compared with ``wanted``."""
    letters = _letters(text)
    return (letters == case(letters) and bool(letters)) == bool(wanted)


def _ci(text: str) -> str:
    return text.strip().casefold()


#: constraint name -> check(reply, declared value)
CHECKS: dict[str, Callable[[str, Any], bool]] = {
    "max_words": lambda t, n: word_count(t) <= n,
    "min_words": lambda t, n: word_count(t) >= n,
    "max_chars": lambda t, n: len(t.strip()) <= n,
    "max_sentences": lambda t, n: sentence_count(t) <= n,
    "paragraph_count": lambda t, n: len(paragraphs(t)) == n,
    "bullet_count": lambda t, n: len(_BULLET_RE.findall(t)) == n,
    "numbered_count": lambda t, n: len(_NUMBERED_RE.findall(t)) == n,
    "format": _format,
    "required_keys": _has_keys,
    "lowercase": lambda t, v: _all_letters(t, str.lower, v),
    "uppercase": lambda t, v: _all_letters(t, str.upper, v),
    "must_include": lambda t, words: all(_ci(w) in t.casefold() for w in words),
    "must_not_include": lambda t, words: not any(_ci(w) in t.casefold() for w in words),
    "starts_with": lambda t, s: _ci(t).startswith(_ci(s)),
    "ends_with": lambda t, s: _ci(t).endswith(_ci(s)),
    "no_commas": lambda t, v: ("," not in t) == bool(v),
    "quoted": lambda t, v: (len(t.strip()) >= 2 and t.strip()[0] == t.strip()[-1] == '"') == bool(v),
}


def check_constraints(text: str, constraints: dict[str, Any]) -> dict[str, bool]:
    """One bool per declared constraint; an unknown constraint name is a ValueError."""
    unknown = sorted(set(constraints) - set(CHECKS))
    if unknown:
        raise ValueError(f"unknown constraint(s) {', '.join(unknown)}; known: {', '.join(sorted(CHECKS))}")
    return {name: bool(CHECKS[name](text, value)) for name, value in sorted(constraints.items())}


class InstructionFollowingProbe(Probe):
    name: ClassVar[str] = "instruction_following"
    version: ClassVar[str] = "1"
    default_dataset: ClassVar[str | None] = "instruction_following.jsonl"
    required_fields: ClassVar[tuple[str, ...]] = ("prompt", "constraints")

    def __init__(self) -> None:
        super().__init__()

    def score(self, example: Example, completion: Completion) -> Verdict:
        constraints = example.data.get("constraints")
        if not isinstance(constraints, dict) or not constraints:
            raise ValueError(f"example {example.id!r} declares no 'constraints' object")
        try:
            results = check_constraints(completion.text, constraints)
        except ValueError as exc:
            raise ValueError(f"example {example.id!r}: {exc}") from None
        fraction = sum(results.values()) / len(results)
        scores: dict[str, bool | float] = {**results, "fraction_satisfied": round(fraction, 4)}
        return Verdict(scores=scores, passed=all(results.values()))
