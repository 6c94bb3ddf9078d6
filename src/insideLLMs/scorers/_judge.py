"""The LLM judge: another model grades the answer against a rubric, on a scale you declare.

``{type: judge, rubric: "...", model: {type, args}, grades: {A: 1, B: 0.5, C: 0}, pass_at: 1}``; the
model may instead come from the config's top-level ``judge:`` block, and ``models: [...]`` makes several
judges vote (the most frequent grade wins, a tie goes to the lowest value; the agreement rate is a score).

The judge must answer with one JSON object ``{"grade": ..., "reason": ...}`` whose grade is one of the
declared ones. Anything else (prose, a grade off the scale, a failed or timed-out call) is that example's
``judge_error``: never a silent pass or fail. Calls go through ``ScoreContext.generate``, hence the
engine's retries, time limits and response cache.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any, ClassVar

from insideLLMs.config import SchemaError
from insideLLMs.errors import InsideLLMsError
from insideLLMs.models import MODELS, Model, ModelError
from insideLLMs.models.base import Completion, Message
from insideLLMs.registry import UnknownTypeError
from insideLLMs.scorers.base import Answer, Score, ScoreContext, Scorer

DEFAULT_GRADES: dict[str, float] = {"PASS": 1, "FAIL": 0}
#: the judge's generation settings unless ``generation`` says otherwise: the same verdict every time
DEFAULT_GENERATION: dict[str, Any] = {"temperature": 0, "max_tokens": 256}
#: a verdict is one JSON object, optionally in a Markdown code fence
_FENCED = re.compile(r"^```(?:json)?\s*(?P<body>.*?)\s*```$", re.DOTALL | re.IGNORECASE)


class JudgeError(InsideLLMsError):
    """One judge's verdict that cannot be used (the message says why)."""


def _scale(grades: Any) -> dict[str, float]:
    if not isinstance(grades, dict) or not grades:
        raise SchemaError(("grades",), f"expected a mapping of grade -> number, like {{A: 1, B: 0.5, C: 0}}, "
                                       f"got {grades!r}")
    for grade, value in grades.items():
        if not isinstance(grade, str) or not grade.strip():
            raise SchemaError(("grades",), f"a grade must be a non-empty name, got {grade!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SchemaError(("grades", grade), f"grade {grade!r} must map to a number, got {value!r}")
    return dict(grades)


def _build_model(config: Any, loc: tuple[str | int, ...]) -> Model:
    if not isinstance(config, dict) or not isinstance(config.get("type"), str):
        raise SchemaError(loc, f"expected a model like {{type: openai, args: {{model_name: ...}}}}, got {config!r}")
    unknown = set(config) - {"type", "args"}
    if unknown:
        raise SchemaError(loc, f"unknown key(s) {', '.join(sorted(map(str, unknown)))}: a model has 'type' and 'args'")
    args = config.get("args") or {}
    if not isinstance(args, dict):
        raise SchemaError((*loc, "args"), f"expected a mapping of model args, got {args!r}")
    try:
        cls = MODELS.resolve(config["type"])
    except UnknownTypeError as exc:
        raise SchemaError((*loc, "type"), str(exc)) from None
    try:
        return cls(**args)
    except (TypeError, ValueError) as exc:
        raise SchemaError((*loc, "args"), f"bad args for model type {config['type']!r}: {exc}") from None


def judge_prompt(answer: Answer, rubric: str, grades: dict[str, float]) -> list[Message]:
    """The judge's conversation: the question sent, the answer, the reference (if any), the rubric and the scale."""
    question = next((m["content"] for m in reversed(answer.messages) if m.get("role") == "user"), "")
    scale = ", ".join(f"{grade} ({value:g})" for grade, value in grades.items())
    parts = [
        "You are grading a model's answer. Apply the rubric strictly and grade only what is written.",
        f"[Question]\n{question}",
        f"[Answer]\n{answer.text}",
    ]
    if answer.targets:
        parts.append("[Reference answer]\n" + "\n".join(answer.targets))
    parts += [
        f"[Rubric]\n{rubric}",
        f"[Grades]\nOne of: {scale} (the number is what the grade is worth).",
        'Reply with only a JSON object: {"grade": "<one of the grades>", "reason": "<one short sentence>"}',
    ]
    return [{"role": "user", "content": "\n\n".join(parts)}]


def parse_verdict(text: str, grades: dict[str, float]) -> tuple[str, str]:
    """The (grade, reason) of a judge's answer; ``JudgeError`` unless it is one JSON object with a declared grade."""
    body = text.strip()
    fenced = _FENCED.match(body)
    if fenced:
        body = fenced["body"]
    try:
        verdict = json.loads(body)
    except ValueError:
        raise JudgeError(f"verdict is not JSON: {_clip(text)}") from None
    if not isinstance(verdict, dict) or "grade" not in verdict:
        raise JudgeError(f'verdict has no "grade": {_clip(text)}')
    grade, reason = verdict["grade"], verdict.get("reason", "")
    if not isinstance(grade, str) or grade.strip() not in grades:
        raise JudgeError(f"grade {grade!r} is not one of {', '.join(grades)}")
    if not isinstance(reason, str):
        raise JudgeError(f'"reason" is not text: {reason!r}')
    return grade.strip(), reason.strip()


def _clip(text: str, size: int = 120) -> str:
    one_line = " ".join(text.split())
    return repr(one_line if len(one_line) <= size else one_line[: size - 1] + "…")


def _usage(completion: Completion | None) -> dict[str, int] | None:
    return completion.usage.to_dict() if completion is not None and completion.usage else None


class JudgeScorer(Scorer):
    """Another model grades the answer against a rubric, on a scale you declare (an LLM judge)."""

    name: ClassVar[str] = "judge"
    version: ClassVar[str] = "1"
    needs_target: ClassVar[bool] = False

    def __init__(
        self,
        rubric: str,
        model: dict[str, Any] | None = None,
        models: list[dict[str, Any]] | None = None,
        grades: dict[str, float] | None = None,
        pass_at: float | None = None,
        generation: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(rubric=rubric, grades=grades, pass_at=pass_at, generation=generation)
        if not isinstance(rubric, str) or not rubric.strip():
            raise SchemaError(("rubric",), "a judge needs a 'rubric': what a good answer is, in words")
        if model is not None and models is not None:
            raise SchemaError(("models",), "give 'model' (one judge) or 'models' (judges that vote), not both")
        if models is not None and (not isinstance(models, list) or not models):
            raise SchemaError(("models",), f"expected a list of judge models, got {models!r}")
        if model is None and models is None:
            raise SchemaError((), "a judge needs a model: give it 'model: {type: ..., args: ...}' "
                                  "or set one for every judge in a top-level 'judge:' block")
        configs = [model] if model is not None else list(models or [])
        where: list[tuple[str | int, ...]] = [("model",)] if model is not None else [("models", i) for i in range(len(configs))]
        self._models = tuple(_build_model(c, loc) for c, loc in zip(configs, where))
        self.grades = _scale(DEFAULT_GRADES if grades is None else grades)
        if pass_at is not None and (isinstance(pass_at, bool) or not isinstance(pass_at, (int, float))):
            raise SchemaError(("pass_at",), f"expected a number (the lowest grade value that passes), got {pass_at!r}")
        self.pass_at = max(self.grades.values()) if pass_at is None else pass_at
        if self.pass_at > max(self.grades.values()):
            raise SchemaError(("pass_at",), f"no grade reaches pass_at {self.pass_at:g} (the best is "
                                            f"{max(self.grades.values()):g})")
        if generation is not None and not isinstance(generation, dict):
            raise SchemaError(("generation",), f"expected a mapping like {{temperature: 0}}, got {generation!r}")
        self.generation = DEFAULT_GENERATION | (generation or {})
        self.rubric = rubric

    @property
    def models(self) -> tuple[Model, ...]:
        return self._models

    @property
    def spec(self) -> dict[str, Any]:
        return {**super().spec, "models": [m.spec for m in self._models]}

    def spec_entry(self, entry: Any) -> Any:
        public = {k: v for k, v in entry.items() if k not in ("model", "models")}
        return public | {"models": [m.spec for m in self._models]}

    def score(self, answer: Answer) -> Score:
        raise TypeError("the judge scorer calls a model: it scores within a run (ascore), not on its own")

    async def ascore(self, answer: Answer, context: ScoreContext) -> Score:
        if context.generate is None:
            raise TypeError("the judge scorer calls a model: it scores within a run")
        messages = judge_prompt(answer, self.rubric, self.grades)
        votes = [await self._vote(model, messages, context) for model in self._models]
        if len(votes) == 1:
            vote = votes[0]
            if "error" in vote:
                return Score(None, detail=vote, error=vote["error"])
            value = self.grades[vote["grade"]]
            return Score(value, value >= self.pass_at, detail=vote | {"passed": value >= self.pass_at})
        return self._majority(votes)

    async def _vote(self, model: Model, messages: list[Message], context: ScoreContext) -> dict[str, Any]:
        assert context.generate is not None
        completion: Completion | None = None
        try:
            completion = await context.generate(model, messages, self.generation)
            grade, reason = parse_verdict(completion.text, self.grades)
        except ModelError as exc:
            if exc.fatal:
                raise
            return {"model": model.model_id, "error": f"the judge call failed ({exc.status}): {exc}", "usage": None}
        except JudgeError as exc:
            return {"model": model.model_id, "error": str(exc), "output": completion.text if completion else None,
                    "usage": _usage(completion)}
        return {"model": model.model_id, "grade": grade, "reason": reason, "usage": _usage(completion)}

    def _majority(self, votes: list[dict[str, Any]]) -> Score:
        counted = Counter(v["grade"] for v in votes if "grade" in v)
        if not counted:
            return Score(None, detail={"votes": votes}, error=f"no judge gave a usable verdict ({votes[0]['error']})")
        top = max(counted.values())
        grade = min((g for g, n in counted.items() if n == top), key=lambda g: self.grades[g])  # a tie: the lowest
        agreement = round(counted[grade] / len(votes), 6)
        value = self.grades[grade]
        passed = value >= self.pass_at
        detail = {"grade": grade, "agreement": agreement, "passed": passed, "votes": votes}
        return Score(value, passed, extra={"agreement": agreement}, detail=detail)


#: a pairwise verdict names a position; these are what each is worth to the answer under test
_POSITIONS = {"1": 1.0, "2": 0.0, "tie": 0.5}
_OUTCOMES = {1.0: "answer", 0.0: "reference", 0.5: "tie"}


def pairwise_prompt(question: str, first: str, second: str, rubric: str) -> list[Message]:
    """The judge's conversation for comparing two answers to one question."""
    parts = [
        "You are comparing two answers to the same question. Apply the rubric strictly; the order of the "
        "answers means nothing.",
        f"[Question]\n{question}",
        f"[Answer 1]\n{first}",
        f"[Answer 2]\n{second}",
        f"[Rubric]\n{rubric}",
        '[Grades]\nOne of: 1 (answer 1 is better), 2 (answer 2 is better), tie.',
        'Reply with only a JSON object: {"grade": "<1, 2 or tie>", "reason": "<one short sentence>"}',
    ]
    return [{"role": "user", "content": "\n\n".join(parts)}]


class PairwiseScorer(JudgeScorer):
    """A judge says whether the answer beats the target, asked in both orders (pairwise, with swap).

    The target is a reference answer, or another model's. The score is 1 when the answer wins, 0.5 a tie,
    0 a loss; it passes at ``pass_at`` (default 0.5: at least a tie). With ``swap`` (the default) it judges
    both orders and counts only a verdict both orders agree on: a judge that prefers a position gives a
    tie (``pairwise.consistent`` false) that never passes, since no verdict survived the swap."""

    name: ClassVar[str] = "pairwise"
    version: ClassVar[str] = "1"
    needs_target: ClassVar[bool] = True

    def __init__(
        self,
        rubric: str = "Which answer is more correct, complete and helpful?",
        model: dict[str, Any] | None = None,
        pass_at: float = 0.5,
        swap: bool = True,
        generation: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(rubric, model=model, grades=dict(_POSITIONS), pass_at=pass_at, generation=generation)
        if not isinstance(swap, bool):
            raise SchemaError(("swap",), f"expected true or false, got {swap!r}")
        self.params["swap"] = swap
        self.swap = swap

    async def ascore(self, answer: Answer, context: ScoreContext) -> Score:
        if context.generate is None:
            raise TypeError("the pairwise scorer calls a model: it scores within a run")
        question = next((m["content"] for m in reversed(answer.messages) if m.get("role") == "user"), "")
        reference = answer.targets[0] if answer.targets else ""
        model = self._models[0]
        orders = [await self._vote(model, pairwise_prompt(question, answer.text, reference, self.rubric), context)]
        if self.swap:
            swapped = await self._vote(model, pairwise_prompt(question, reference, answer.text, self.rubric), context)
            orders.append(swapped)
        detail: dict[str, Any] = {"model": model.model_id, "orders": orders}
        failed = next((o["error"] for o in orders if "error" in o), None)
        if failed is not None:
            return Score(None, detail=detail, error=failed)
        values = [_POSITIONS[orders[0]["grade"]]]
        if self.swap:
            values.append(1.0 - _POSITIONS[orders[1]["grade"]])  # position 1 is the reference there
        consistent = len(set(values)) == 1
        value = values[0] if consistent else 0.5
        passed = consistent and value >= self.pass_at
        detail = {"grade": _OUTCOMES[value], "consistent": consistent, "passed": passed} | detail
        extra = {"consistent": consistent} if self.swap else {}
        return Score(value, passed, extra=extra, detail=detail)


__all__ = ["DEFAULT_GRADES", "JudgeError", "JudgeScorer", "PairwiseScorer", "judge_prompt", "pairwise_prompt",
           "parse_verdict"]
