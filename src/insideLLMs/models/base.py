"""The model contract: one async ``agenerate`` per provider, one ``Completion`` type, typed errors.

The runner classifies failures only through these error types, so every provider maps its
SDK's exceptions onto them: retryable ones (rate limits, 5xx, timeouts, dropped connections)
are retried with backoff; fatal ones (bad credentials, an endpoint that never answers) stop the
run early with one clear message instead of recording thousands of identical errors.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal
from insideLLMs.errors import InsideLLMsError

Message = dict[str, str]
Status = Literal["success", "error", "timeout", "rate_limited", "skipped", "judge_error"]


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    def to_dict(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}


@dataclass(frozen=True, slots=True)
class Completion:
    """One model answer. ``served_model``/``system_fingerprint`` only when the provider returns them."""

    text: str
    usage: Usage | None = None
    finish_reason: str | None = None
    served_model: str | None = None
    system_fingerprint: str | None = None


class ModelError(InsideLLMsError):
    """A failed generation. ``status`` is what the record will say; ``retryable`` drives the runner."""

    status: Status = "error"
    retryable: bool = False
    fatal: bool = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TransientError(ModelError):
    """A 5xx, a dropped connection or a malformed body: worth another attempt."""

    retryable = True


class RateLimitError(ModelError):
    """HTTP 429; ``retry_after`` carries the server's Retry-After in seconds when given."""

    status: Status = "rate_limited"
    retryable = True


class ModelTimeout(ModelError):
    status: Status = "timeout"
    retryable = True


class ConnectionFailed(ModelError):
    """The endpoint could not be reached. Retried; if it persists the run stops (fatal after retries)."""

    retryable = True
    fatal = True


class AuthenticationFailed(ModelError):
    """Bad or missing credentials: no retry, the run stops at once."""

    fatal = True


class ModelNotAvailable(ModelError):
    """A provider whose optional library is missing, or a model file that is not there."""

    fatal = True


class Model(ABC):
    """Base of every model. Subclasses set ``provider``, call ``super().__init__`` and implement ``agenerate``.

    ``model_id`` names the model in records; ``params`` are the constructor arguments that
    change behaviour (never secrets, never credentials or hosts).
    """

    provider: ClassVar[str] = "base"

    def __init__(self, model_id: str, params: dict[str, Any] | None = None) -> None:
        self.model_id = model_id
        self.params = dict(params or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_id={self.model_id!r})"

    @property
    def spec(self) -> dict[str, Any]:
        """What the record and run_id say about this model."""
        return {"id": self.model_id, "provider": self.provider, "params": self.params}

    @abstractmethod
    async def agenerate(self, messages: list[Message], **generation: Any) -> Completion:
        """Answer a chat. ``generation`` holds temperature, max_tokens, seed, stop, top_p."""

    def generate(self, prompt: str | list[Message], **generation: Any) -> Completion:
        """Synchronous convenience wrapper (not for use inside a running event loop)."""
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        return asyncio.run(self._generate_and_close(messages, generation))

    async def _generate_and_close(self, messages: list[Message], generation: dict[str, Any]) -> Completion:
        try:
            return await self.agenerate(messages, **generation)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Release connections; called by the runner when a run ends."""
