"""An in-process judge model (type ``support.counting_judge:CountingJudge``) that grades PASS and counts, per
class, the calls and the closes the engine makes on it."""

from __future__ import annotations

from typing import Any

from insideLLMs.models.base import Completion, Model, Usage


class CountingJudge(Model):
    provider = "test"
    calls = 0
    closed = 0

    def __init__(self, model_name: str = "judge") -> None:
        super().__init__(model_name)

    @classmethod
    def reset(cls) -> None:
        cls.calls = cls.closed = 0

    async def agenerate(self, messages: list[Any], **generation: Any) -> Completion:
        type(self).calls += 1
        return Completion(text='{"grade": "PASS", "reason": "fine"}', usage=Usage(3, 2))

    async def aclose(self) -> None:
        type(self).closed += 1
