"""Retries: transient failures are retried with backoff and Retry-After is honoured; timeouts cancel."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from insideLLMs.models.base import Completion, Message, Model, ModelError, RateLimitError, TransientError
from insideLLMs.retry import RetryPolicy, backoff_delay, call_model


class Flaky(Model):
    """Fails the first ``failures`` calls with ``error``, then answers; records when each call came."""

    provider = "test"

    def __init__(self, failures: int, error: ModelError, hang: bool = False) -> None:
        super().__init__("flaky")
        self.failures, self.error, self.hang = failures, error, hang
        self.calls: list[float] = []
        self.cancelled = 0

    async def agenerate(self, messages: list[Message], **generation: Any) -> Completion:
        self.calls.append(time.monotonic())
        if len(self.calls) <= self.failures:
            if self.hang:
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    self.cancelled += 1
                    raise
            raise self.error
        return Completion(text="ok")


FAST = RetryPolicy(max_retries=3, timeout_s=5, backoff_initial_s=0.01, backoff_max_s=0.05)


def test_transient_errors_are_retried_until_success() -> None:
    model = Flaky(2, TransientError("502"))
    completion, attempts = asyncio.run(call_model(model, [], {}, FAST))
    assert (completion.text, attempts, len(model.calls)) == ("ok", 3, 3)


def test_retries_are_bounded_and_the_last_error_carries_the_attempts() -> None:
    model = Flaky(10, TransientError("503"))
    with pytest.raises(TransientError) as info:
        asyncio.run(call_model(model, [], {}, FAST))
    assert len(model.calls) == 4 and info.value.attempts == 4  # 1 + max_retries


def test_non_retryable_errors_are_not_retried() -> None:
    model = Flaky(1, ModelError("400 bad request"))
    with pytest.raises(ModelError):
        asyncio.run(call_model(model, [], {}, FAST))
    assert len(model.calls) == 1


def test_retry_after_is_honoured() -> None:
    model = Flaky(1, RateLimitError("429", retry_after=0.4))
    completion, attempts = asyncio.run(call_model(model, [], {}, FAST))
    assert attempts == 2
    assert model.calls[1] - model.calls[0] >= 0.4


def test_timeout_cancels_the_hanging_request_and_is_retried() -> None:
    model = Flaky(1, TransientError("never raised"), hang=True)
    policy = RetryPolicy(max_retries=2, timeout_s=0.2, backoff_initial_s=0.01, backoff_max_s=0.01)
    started = time.monotonic()
    completion, attempts = asyncio.run(call_model(model, [], {}, policy))
    assert (completion.text, attempts, model.cancelled) == ("ok", 2, 1)
    assert time.monotonic() - started < 2


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(backoff_initial_s=1, backoff_max_s=8)
    for failures, (low, high) in {1: (0.5, 1), 2: (1, 2), 3: (2, 4), 6: (4, 8)}.items():
        delays = [backoff_delay(policy, failures, None) for _ in range(50)]
        assert all(low <= d <= high for d in delays)
        assert len(set(delays)) > 1
