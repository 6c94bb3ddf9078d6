"""Your own eval in config: a Jinja2 template per example, optional system prompt, few-shot turns and
multiple choice, and a list of scorers against a target.

Args (``probe: {type: prompt, args: {...}}``):

- ``template``: the user message, a Jinja2 template over the example's fields (default ``{{ prompt }}``);
  sandboxed, and a field the example lacks is an error before any request.
- ``system``: a system message (a template too).
- ``few_shot``: ``{path, k, seed, fields, answer}``: ``k`` examples of another file, the same for every
  example (drawn by ``seed``, never the example itself), sent as prior user/assistant turns: the user
  turn is the template, the assistant turn ``answer`` (a template; default the target, or its letter).
- ``target``: what scorers compare with: a template, a list of them, or one expression giving a list.
- ``choices``: multiple choice: a list (templates, or one expression giving a list); lettered A, B, C...
  after the template's text.
- ``scorers``: a list of ``{type, name, ...}`` (see ``insideLLMs.scorers``); each writes ``scores[name]``.
- ``pass``: ``all`` (every scorer that passes or fails must pass), ``any``, or one scorer's name.
- ``name``: the probe's id in records and summaries (default ``prompt``), to tell several evals apart.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, ClassVar, Mapping

import msgspec

from insideLLMs.config import SchemaError, Settings, validate
from insideLLMs.datasets import DatasetError, Example, PromptSet
from insideLLMs.models.base import Completion, Message, Model
from insideLLMs.probes._template import RenderError, Template
from insideLLMs.probes.base import Probe, Verdict, row_has
from insideLLMs.scorers import Answer, NamedScorer, Score, ScoreValue, build_scorers
from insideLLMs.scorers._choice import LETTERS, target_letter


class FewShotArgs(Settings):
    path: str
    k: int
    seed: int = 0
    fields: dict[str, str] | None = None  # default: the dataset's
    answer: str | None = None  # the assistant turn; default: the target (its letter with choices)

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError("@k: expected at least 1 example")


class PromptArgs(Settings):
    template: str = "{{ prompt }}"
    system: str | None = None
    few_shot: FewShotArgs | None = None
    target: str | list[str] | None = None
    choices: str | list[str] | None = None
    scorers: list[Any] = msgspec.field(default_factory=list)
    pass_: str = msgspec.field(name="pass", default="all")
    name: str | None = None


def _templates(value: str | list[str] | None, key: str) -> list[Template]:
    if value is None:
        return []
    if isinstance(value, str):
        return [Template(value, (key,))]
    return [Template(v, (key, i)) for i, v in enumerate(value)]


class PromptProbe(Probe):
    """Your template, your scorers: a generic probe driven by config (template, few-shot, choices, scorers)."""

    name: ClassVar[str] = "prompt"
    version: ClassVar[str] = "1"
    required_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **args: Any) -> None:
        super().__init__(**args)
        parsed = validate(args, PromptArgs)
        self.args = parsed
        if parsed.name is not None:
            if not parsed.name.strip():
                raise SchemaError(("name",), "expected a non-empty name")
            self.name = parsed.name  # type: ignore[misc]
        self._template = Template(parsed.template, ("template",))
        self._system = Template(parsed.system, ("system",)) if parsed.system is not None else None
        self._targets = _templates(parsed.target, "target")
        self._choices = _templates(parsed.choices, "choices")
        self._scorers: list[NamedScorer] = build_scorers(parsed.scorers)
        self._few_shot_answer = (
            Template(parsed.few_shot.answer, ("few_shot", "answer")) if parsed.few_shot and parsed.few_shot.answer
            else None)
        for index, named in enumerate(self._scorers):
            if named.scorer.needs_target and not self._targets:
                raise SchemaError(("scorers", index), f"scorer {named.name!r} compares with a target: give 'target'")
        self._pass = parsed.pass_
        if self._pass not in ("all", "any"):
            chosen = next((s for s in self._scorers if s.name == self._pass), None)
            if chosen is None:
                names = ", ".join(repr(s.name) for s in self._scorers) or "none"
                raise SchemaError(("pass",), f"expected all, any or a scorer's name (scorers: {names}), "
                                             f"got {self._pass!r}")
            if not chosen.scorer.gives_pass:
                raise SchemaError(("pass",), f"scorer {self._pass!r} gives a grade with no pass mark "
                                             "(give it a threshold), so it cannot decide 'pass'")
        self._shots: list[tuple[Mapping[str, Any], list[Message]]] | None = None if parsed.few_shot else []
        self._shots_hash: str | None = None

    @property
    def spec(self) -> dict[str, Any]:
        spec = {**super().spec, "scorers": {s.name: s.scorer.spec["version"] for s in self._scorers}}
        if self.judge_models:  # a judge's model config (keys, hosts) is shown as the model's spec
            entries = [s.scorer.spec_entry(e) for s, e in zip(self._scorers, self.args.scorers)]
            spec["params"] = {**spec["params"], "scorers": entries}
        if self.args.few_shot is not None:
            self._ensure_shots()
            spec["few_shot"] = self._shots_hash
        return spec

    # -- before any request --------------------------------------------------------------------

    def prepare(self, folder: Path, fields: Mapping[str, str]) -> None:
        few = self.args.few_shot
        if few is None:
            return
        fields = few.fields if few.fields is not None else fields
        load = PromptSet.from_csv if few.path.lower().endswith(".csv") else PromptSet.from_jsonl
        shots = load(few.path, base_dir=folder, fields=fields)
        if len(shots) < few.k:
            raise DatasetError(f"{folder / few.path}: holds {len(shots)} example(s); few_shot.k is {few.k}")
        ranked = sorted(range(len(shots)), key=lambda i: _draw(few.seed, shots.examples[i].id))
        chosen = []
        for index in ranked[: few.k + 1]:  # one spare, for an example that is itself one of the shots
            example = shots.examples[index]
            where = f"{folder / few.path}:{shots.lines[index]}" if shots.lines is not None else str(folder / few.path)
            try:
                chosen.append((example.data, self._shot_turns(example.data)))
            except RenderError as exc:
                raise DatasetError(f"{where}: {self._problem(exc, example.data)} (a few-shot example)") from None
        self._shots = chosen
        self._shots_hash = shots.hash

    def _ensure_shots(self) -> None:
        if self._shots is None:  # built through the API: relative paths are relative to the working folder
            self.prepare(Path(), {})

    def _shot_turns(self, data: Mapping[str, Any]) -> list[Message]:
        if self._few_shot_answer is not None:
            answer = self._few_shot_answer.render(data)
        else:
            targets = self._target_values(data)
            if not targets:
                raise RenderError("few_shot needs 'answer' (a template) or the probe's 'target'")
            answer = targets[0]
            choices = self._choice_values(data)
            if choices:
                answer = target_letter(answer, tuple(choices)) or answer
        return [{"role": "user", "content": self._user_text(data)}, {"role": "assistant", "content": answer}]

    def row_problem(self, row: Mapping[str, Any]) -> str | None:
        try:
            if self._system is not None:
                self._system.render(row)
            self._user_text(row)
            targets = tuple(self._target_values(row))
            choices = tuple(self._choice_values(row))
        except RenderError as exc:
            return self._problem(exc, row)
        for named in self._scorers:
            if problem := named.scorer.target_problem(targets, choices):
                source = self.args.target if isinstance(self.args.target, str) else "target"
                return f"{problem} for probe {self.name} (target: {source!r}; {row_has(row)})"
        return None

    def _problem(self, exc: RenderError, row: Mapping[str, Any]) -> str:
        if exc.field is not None:
            return f"field {exc.field!r} missing for probe {self.name} ({exc.what} uses it; {row_has(row)})"
        return f"{exc} (probe {self.name})"

    # -- one example -------------------------------------------------------------------------

    def _target_values(self, data: Mapping[str, Any]) -> list[str]:
        return [v for t in self._targets for v in t.values(data)]

    def _choice_values(self, data: Mapping[str, Any]) -> list[str]:
        choices = [v for t in self._choices for v in t.values(data)]
        if self._choices and not choices:
            raise RenderError("choices is empty")
        if len(choices) > len(LETTERS):
            raise RenderError(f"{len(choices)} choices; at most {len(LETTERS)} can be lettered")
        return choices

    def _user_text(self, data: Mapping[str, Any]) -> str:
        text = self._template.render(data)
        choices = self._choice_values(data)
        if choices:
            lettered = "\n".join(f"{LETTERS[i]}. {choice}" for i, choice in enumerate(choices))
            text = f"{text}\n\n{lettered}" if text else lettered
        return text

    def build(self, example: Example) -> list[Message]:
        self._ensure_shots()
        data = example.data
        messages: list[Message] = []
        if self._system is not None:
            messages.append({"role": "system", "content": self._system.render(data)})
        k = self.args.few_shot.k if self.args.few_shot else 0
        shots = [turns for shot, turns in self._shots or () if shot != data][:k]
        for turns in shots:
            messages.extend(turns)
        messages.append({"role": "user", "content": self._user_text(data)})
        return messages

    @property
    def judge_models(self) -> tuple[Model, ...]:
        return tuple(m for s in self._scorers for m in s.scorer.models)

    def _answer(self, example: Example, completion: Completion) -> Answer:
        data = example.data
        sent = tuple(self.build(example)) if self.judge_models else ()  # what a judge shows as the question
        return Answer(completion.text, tuple(self._target_values(data)), tuple(self._choice_values(data)), example, sent)

    def score(self, example: Example, completion: Completion) -> Verdict:
        answer = self._answer(example, completion)
        return self._verdict([(named, named.scorer.score(answer)) for named in self._scorers])

    async def ascore_all(self, example: Example, completions: list[Completion], context: Any) -> Verdict:
        answer = self._answer(example, completions[0])
        return self._verdict([(named, await named.scorer.ascore(answer, context)) for named in self._scorers])

    def _verdict(self, results: list[tuple[NamedScorer, Score]]) -> Verdict:
        """The record's scores, judge section and ``passed``. A judge error leaves ``passed`` None: the
        example is neither a pass nor a fail, and its status (``judge_error``) says why."""
        scores: dict[str, ScoreValue] = {}
        passes: dict[str, bool | None] = {}
        judge: dict[str, Any] = {}
        errors: list[str] = []
        for named, result in results:
            if result.value is not None:
                scores[named.name] = result.value
            for key, value in result.extra.items():
                scores[f"{named.name}.{key}"] = value
            passes[named.name] = result.passed
            if result.detail is not None:
                judge[named.name] = result.detail
            if result.error is not None:
                errors.append(f"{named.name}: {result.error}")
        if errors:
            return Verdict(scores, None, judge or None, "; ".join(errors))
        return Verdict(scores, self._passed(passes), judge or None)

    def _passed(self, passes: dict[str, bool | None]) -> bool | None:
        if self._pass not in ("all", "any"):
            return passes[self._pass]
        decided = [p for p in passes.values() if p is not None]
        if not decided:
            return None
        return all(decided) if self._pass == "all" else any(decided)


def _draw(seed: int, example_id: str) -> str:
    """A few-shot example's place in the draw: the same on every machine and Python version."""
    return hashlib.sha256(f"{seed}\0{example_id}".encode()).hexdigest()
