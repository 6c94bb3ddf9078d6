"""The deterministic offline model: echoes the last user message, or a canned answer.

Scripted failures make it useful for tests and demos of retries and error records:
``fail_every=N`` fails the prompts whose hash is divisible by N (order-independent),
``fail_with`` picks the error kind, ``latency_ms`` adds an async sleep. ``samples`` maps a prompt to answers
picked by the request's ``seed`` (``seed % len``; the first without a seed): a model whose answers vary between
samples, reproducibly (what ``runner.epochs`` shows on an offline model).
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any, ClassVar

from insideLLMs.models.base import (
    AuthenticationFailed,
    Completion,
    Message,
    Model,
    ModelError,
    ModelTimeout,
    RateLimitError,
    TransientError,
    Usage,
)

_FAILURES: dict[str, type[ModelError]] = {
    "error": ModelError,
    "transient": TransientError,
    "rate_limited": RateLimitError,
    "timeout": ModelTimeout,
    "auth": AuthenticationFailed,
}


class DummyModel(Model):
    provider: ClassVar[str] = "dummy"

    def __init__(
        self,
        model_name: str = "dummy",
        canned_response: str | None = None,
        responses: dict[str, str] | None = None,
        samples: dict[str, list[str]] | None = None,
        fail_every: int = 0,
        fail_with: str = "error",
        latency_ms: float = 0.0,
    ) -> None:
        if fail_with not in _FAILURES:
            raise ValueError(f"fail_with must be one of {sorted(_FAILURES)}, not {fail_with!r}")
        params: dict[str, Any] = {}
        if canned_response is not None:
            params["canned_response"] = canned_response
        if responses:
            params["responses"] = dict(responses)
        if samples:
            params["samples"] = {prompt: list(answers) for prompt, answers in samples.items()}
        if fail_every:
            params["fail_every"] = int(fail_every)
            params["fail_with"] = fail_with
        super().__init__(model_name, params)
        self._latency_s = latency_ms / 1000.0

    async def agenerate(self, messages: list[Message], **generation: Any) -> Completion:
        if self._latency_s:
            await asyncio.sleep(self._latency_s)
        prompt = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
        fail_every = self.params.get("fail_every", 0)
        if fail_every:
            digest = int(hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:8], 16)
            if digest % fail_every == 0:
                raise _FAILURES[self.params["fail_with"]](f"scripted failure for prompt {prompt[:40]!r}")
        responses = self.params.get("responses") or {}
        sampled = (self.params.get("samples") or {}).get(prompt)
        if sampled:
            seed = generation.get("seed")
            text = sampled[seed % len(sampled) if isinstance(seed, int) else 0]
        elif prompt in responses:
            text = responses[prompt]
        else:
            text = self.params.get("canned_response", prompt)
        finish = "stop"
        max_tokens = generation.get("max_tokens")
        words = text.split(" ")
        if max_tokens is not None and len(words) > max_tokens:
            text, finish = " ".join(words[:max_tokens]), "length"
        prompt_tokens = sum(len(m.get("content", "").split()) for m in messages)
        usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=len(text.split()))
        return Completion(text=text, usage=usage, finish_reason=finish, served_model=self.model_id)
