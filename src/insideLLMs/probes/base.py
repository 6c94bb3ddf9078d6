"""The probe contract: turn an example into prompt(s), and score the model's answer(s).

Most probes send one conversation per example (``build``/``score``). A probe that compares
several answers, like ``bias`` with its paired prompts, overrides ``build_all``/``score_all``.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

from insideLLMs.datasets import Example, PromptSet
from insideLLMs.models.base import Completion, Message

ScoreValue = float | int | bool


@dataclass(frozen=True, slots=True)
class Verdict:
    """Named scores (numbers or booleans) and whether the example passed (None: not applicable).

    ``judge`` holds each judge scorer's grade, reason and usage (the record's ``judge`` section);
    ``judge_error`` says why a judge gave no usable verdict (the record's status is then ``judge_error``)."""

    scores: dict[str, ScoreValue] = field(default_factory=dict)
    passed: bool | None = None
    judge: dict[str, Any] | None = None
    judge_error: str | None = None


class Probe(ABC):
    """Base of every probe. ``name`` is its type id; bump ``version`` when scoring changes."""

    name: ClassVar[str] = "base"
    version: ClassVar[str] = "1"
    #: file name under ``insideLLMs/data`` of the bundled prompt set, if any
    default_dataset: ClassVar[str | None] = None
    #: True when ``score`` blocks (subprocesses, I/O): the runner then scores in a worker thread
    blocking_score: ClassVar[bool] = False
    #: fields every example must have, checked on every row before any model is called. The default
    #: ``build`` reads ``prompt``; a probe with its own ``build`` declares what it reads (none if it does not)
    required_fields: ClassVar[tuple[str, ...]] = ("prompt",)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "required_fields" not in cls.__dict__ and {"build", "build_all"} & cls.__dict__.keys():
            cls.required_fields = ()  # its own build may not read ``prompt``: nothing is assumed

    def __init__(self, **params: Any) -> None:
        self.params = params

    def missing_fields(self, row: Mapping[str, Any]) -> str | None:
        """What ``row`` lacks for this probe (``"field 'prompt'"``), or None when it has what the probe needs."""
        missing = [name for name in self.required_fields if name not in row]
        return _fields_phrase(missing) if missing else None

    def row_problem(self, row: Mapping[str, Any]) -> str | None:
        """Why this probe cannot use ``row``, said after the row's location; None when it can. Checked on
        every row before any model is called. Default: the fields it lacks (``missing_fields``)."""
        missing = self.missing_fields(row)
        if missing is None:
            return None
        return f"{missing} missing for probe {self.name} ({row_has(row)})"

    def prepare(self, folder: Path, fields: Mapping[str, str]) -> None:
        """Read what the probe's args name, before any row is checked: files relative to ``folder`` (the
        config's folder), their fields renamed by ``fields`` (the dataset's) unless the args say otherwise.
        Default: nothing to read."""

    @property
    def spec(self) -> dict[str, Any]:
        return {"id": self.name, "version": self.version, "params": self.params}

    def build(self, example: Example) -> list[Message]:
        """One conversation for this example. Default: the row's ``system`` (if any) as a system
        message, then its ``prompt`` as a user message."""
        messages: list[Message] = []
        if example.data.get("system"):
            messages.append({"role": "system", "content": str(example.data["system"])})
        messages.append({"role": "user", "content": str(example.data["prompt"])})
        return messages

    def build_all(self, example: Example) -> list[list[Message]]:
        """Every conversation this example needs; one unless the probe compares answers."""
        return [self.build(example)]

    @abstractmethod
    def score(self, example: Example, completion: Completion) -> Verdict:
        """Score one answer."""

    def score_all(self, example: Example, completions: list[Completion]) -> Verdict:
        return self.score(example, completions[0])

    async def ascore_all(self, example: Example, completions: list[Completion], context: Any) -> Verdict:
        """What the engine awaits: ``score_all`` (in a worker thread when ``blocking_score``). A probe whose
        scoring calls a model (a judge) overrides it and calls through ``context`` (a ``ScoreContext``)."""
        if self.blocking_score:
            return await asyncio.to_thread(self.score_all, example, completions)
        return self.score_all(example, completions)

    @property
    def judge_models(self) -> tuple[Any, ...]:
        """The models this probe's scoring calls (its judges), for the self-grading check."""
        return ()

    def load_default_dataset(self) -> PromptSet:
        if not self.default_dataset:
            raise LookupError(f"probe {self.name!r} has no bundled prompt set; give a dataset in the config")
        resource = files("insideLLMs") / "data" / self.default_dataset
        with as_file(resource) as path:
            bundled = PromptSet.from_jsonl(path, name=f"{self.name}-bundled")
        # named by package resource, not by where the package is installed
        return replace(bundled, source=f"insideLLMs:data/{self.default_dataset}")


def row_has(row: Mapping[str, Any]) -> str:
    """``the row has: a, b`` (or ``no fields``), for messages about a row that lacks something."""
    return f"the row has: {', '.join(map(str, row)) or 'no fields'}"


def _fields_phrase(names: Sequence[str]) -> str:
    """``field 'a'`` or ``fields 'a', 'b' and 'c'``, for messages about missing fields."""
    quoted = [repr(name) for name in names]
    if len(quoted) == 1:
        return f"field {quoted[0]}"
    return f"fields {', '.join(quoted[:-1])} and {quoted[-1]}"
