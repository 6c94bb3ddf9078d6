"""Retries: transient failures are retried with backoff and Retry-After is honoured; timeouts cancel."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from insideLLMs.models.base import Completion, Message, Model, ModelError, RateLimitError, TransientError
from insideLLMs.run._retry import RetryPolicy, backoff_delay, call_model


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


def test_time_limits_of_concurrent_calls_are_kept_apart() -> None:
    """One watchdog per loop serves every call in flight: each call times out on its own limit,
    within an eighth of it, and the others finish untouched."""
    from insideLLMs.run._deadlines import time_limit

    async def call(limit_s: float, takes_s: float) -> tuple[str, float]:
        started = time.perf_counter()
        try:
            async with time_limit(limit_s):
                await asyncio.sleep(takes_s)
            return "ok", time.perf_counter() - started
        except TimeoutError:
            return "timeout", time.perf_counter() - started

    async def main() -> list[tuple[str, float]]:
        return await asyncio.gather(call(0.4, 2), call(2, 0.1), call(0.8, 0.5), call(0.2, 2), call(5, 0.3))

    outcomes = asyncio.run(main())
    assert [kind for kind, _ in outcomes] == ["timeout", "ok", "ok", "timeout", "ok"]
    for (kind, took), limit in zip(outcomes, (0.4, 2, 0.8, 0.2, 5)):
        if kind == "timeout":
            assert limit <= took < limit * 1.125 + 0.5, (limit, took)


def test_a_cancel_from_outside_is_not_turned_into_a_timeout() -> None:
    from insideLLMs.run._deadlines import time_limit

    async def main() -> tuple[bool, int]:
        async def body() -> None:
            async with time_limit(10):
                await asyncio.sleep(5)

        task = asyncio.create_task(body())
        await asyncio.sleep(0.05)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        current = asyncio.current_task()
        assert current is not None
        return task.cancelled(), current.cancelling()

    assert asyncio.run(main()) == (True, 0)


def test_time_limits_leave_nothing_behind_their_event_loop() -> None:
    """Each ``runner.run()`` has its own loop; the watchdog of a finished loop must not keep it alive."""
    import gc

    from insideLLMs.run import _deadlines as deadlines

    async def call() -> None:
        async with deadlines.time_limit(5):
            await asyncio.sleep(0)

    for _ in range(3):
        asyncio.run(call())
    gc.collect()
    assert len(deadlines._watchdogs) == 0
