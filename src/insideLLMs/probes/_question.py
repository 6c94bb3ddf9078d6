"""A probe that asks an example's ``prompt`` as it is, optionally followed by how to answer."""

from __future__ import annotations

from typing import ClassVar

from insideLLMs.datasets import Example
from insideLLMs.models.base import Message
from insideLLMs.probes.base import Probe


class QuestionProbe(Probe):
    """Sends ``prompt`` plus ``answer_instruction`` (unless ``instruction=False``); scored against ``answer``."""

    required_fields: ClassVar[tuple[str, ...]] = ("prompt", "answer")
    answer_instruction: ClassVar[str] = ""
    instruction_separator: ClassVar[str] = "\n"

    def __init__(self, instruction: bool = True) -> None:
        """``instruction=False`` sends the prompt as it is, without saying how to answer."""
        super().__init__(instruction=instruction)

    def build(self, example: Example) -> list[Message]:
        prompt = str(example.data["prompt"])
        if self.params["instruction"]:
            prompt = f"{prompt}{self.instruction_separator}{self.answer_instruction}"
        return [{"role": "user", "content": prompt}]
