"""The scorer contract: one named score (and whether it passes) for one model answer.

A scorer is built from its config entry (``{type: exact, name: ..., **params}``), checked before any
request (``target_problem`` on every example), and called once per answer. ``score`` is synchronous;
``ascore`` is what the prompt probe awaits within a run: a scorer that calls a model of its own (the LLM
judge) gets a ``ScoreContext`` through which the engine makes that call, and by default it calls ``score``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, ClassVar

from insideLLMs.datasets import Example
from insideLLMs.models.base import Completion, Message, Model

ScoreValue = float | int | bool


@dataclass(frozen=True, slots=True)
class Answer:
    """What a scorer sees: the model's text, the rendered targets and choices, and the example itself."""

    text: str
    targets: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    example: Example | None = None
    #: the conversation sent to the model (what a judge shows as the question)
    messages: tuple[Message, ...] = ()


@dataclass(frozen=True, slots=True)
class Score:
    """A scorer's result: ``value`` goes into the record as ``scores[name]``, each ``extra`` item as
    ``scores["name.key"]``; ``passed`` is None for a graded score with no pass mark.

    A judge also gives ``detail`` (its grade, reason and usage: the record's ``judge[name]``) and, when its
    verdict is unusable, ``error`` (the example's status becomes ``judge_error``; ``value`` is then None)."""

    value: ScoreValue | None
    passed: bool | None = None
    extra: dict[str, ScoreValue] = field(default_factory=dict)
    detail: dict[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ScoreContext:
    """What the engine lends a scorer that calls a model: ``generate(model, messages, generation)`` goes
    through the engine's retries, time limits and response cache (keyed by the model's spec, the messages
    and ``generation``). None outside a run (a scorer must then say so)."""

    generate: Callable[[Model, list[Message], dict[str, Any]], Awaitable[Completion]] | None = None


class Scorer(ABC):
    """Base of every scorer. ``name`` is its type id (and the default name of its score); bump ``version``
    when what it computes changes (it is part of the run id)."""

    name: ClassVar[str] = "base"
    version: ClassVar[str] = "1"
    #: whether it compares the answer with the probe's ``target`` (a probe without one is a config error)
    needs_target: ClassVar[bool] = True

    @property
    def models(self) -> tuple[Model, ...]:
        """The models this scorer calls (a judge's); none for a scorer that only reads the answer."""
        return ()

    def spec_entry(self, entry: Any) -> Any:
        """The scorer's config entry as the run's probe spec shows it (records, run id). A scorer that
        builds a model replaces its model config with the model's spec, which holds no secret or host."""
        return entry

    def __init__(self, **params: Any) -> None:
        self.params = params

    @property
    def spec(self) -> dict[str, Any]:
        return {"type": self.name, "version": self.version, "params": self.params}

    def target_problem(self, targets: tuple[str, ...], choices: tuple[str, ...]) -> str | None:
        """Why one example's targets cannot be scored (``"target 'abc' is not a number"``), or None.
        Called on every example before any request, so a bad row stops the run before it costs anything."""
        if self.needs_target and not any(t.strip() for t in targets):
            return "the target is empty"
        return None

    @property
    def gives_pass(self) -> bool:
        """Whether ``score`` says passed or failed (False for a graded score with no pass mark)."""
        return True

    @abstractmethod
    def score(self, answer: Answer) -> Score:
        """Score one answer."""

    async def ascore(self, answer: Answer, context: ScoreContext) -> Score:
        """The awaitable form of ``score``, for scorers that call a model; by default ``score``."""
        return self.score(answer)


__all__ = ["Answer", "Score", "ScoreContext", "ScoreValue", "Scorer"]
