"""Retries: transient failures are retried with backoff and Retry-After is honoured; time limits cancel."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from insideLLMs.backoff import backoff_s
from insideLLMs.models.base import Completion, Message, Model, ModelError, ModelTimeout, RateLimitError, TransientError
from insideLLMs.run._retry import RetryPolicy, call_model, retry_delay


class Flaky(Model):
    """Fails the first ``failures`` calls with ``error`` (or hangs in them), then answers."""

    provider = "test"

    def __init__(self, failures: int, error: ModelError, hang: bool = False) -> None:
        super().__init__("flaky")
        self.failures, self.error, self.hang = failures, error, hang
        self.calls = 0
        self.cancelled = 0

    async def agenerate(self, messages: list[Message], **generation: Any) -> Completion:
        self.calls += 1
        if self.calls <= self.failures:
            if self.hang:
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    self.cancelled += 1
                    raise
            raise self.error
        return Completion(text="ok")


FAST = RetryPolicy(max_retries=3, timeout_s=5, backoff_initial_s=0.01, backoff_max_s=0.05)


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The delays ``call_model`` asks to wait between attempts (not actually waited)."""
    asked: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float, result: Any = None) -> Any:
        asked.append(delay)
        return await real_sleep(0, result)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    return asked


def test_transient_errors_are_retried_until_success() -> None:
    model = Flaky(2, TransientError("502"))
    completion, attempts = asyncio.run(call_model(model, [], {}, FAST))
    assert (completion.text, attempts, model.calls) == ("ok", 3, 3)


def test_retries_are_bounded_and_the_last_error_carries_the_attempts() -> None:
    model = Flaky(10, TransientError("503"))
    with pytest.raises(TransientError) as info:
        asyncio.run(call_model(model, [], {}, FAST))
    assert model.calls == 4 and info.value.attempts == 4  # 1 + max_retries


def test_non_retryable_errors_are_not_retried() -> None:
    model = Flaky(1, ModelError("400 bad request"))
    with pytest.raises(ModelError) as info:
        asyncio.run(call_model(model, [], {}, FAST))
    assert model.calls == 1 and info.value.attempts == 1


def test_retry_after_is_honoured(waits: list[float]) -> None:
    model = Flaky(1, RateLimitError("429", retry_after=0.4))
    completion, attempts = asyncio.run(call_model(model, [], {}, FAST))
    assert attempts == 2 and len(waits) == 1
    assert 0.4 <= waits[0] <= 0.5  # the server's time, plus at most 0.1 s of jitter


def test_waits_between_attempts_follow_the_backoff(waits: list[float]) -> None:
    policy = RetryPolicy(max_retries=4, timeout_s=5, backoff_initial_s=1, backoff_max_s=4)
    with pytest.raises(TransientError):
        asyncio.run(call_model(Flaky(10, TransientError("503")), [], {}, policy))
    assert len(waits) == 4
    for wait, (low, high) in zip(waits, [(0.5, 1), (1, 2), (2, 4), (2, 4)]):
        assert low <= wait <= high


def test_timeout_cancels_the_hanging_request_and_is_retried() -> None:
    model = Flaky(1, TransientError("never raised"), hang=True)
    policy = RetryPolicy(max_retries=2, timeout_s=0.2, backoff_initial_s=0.01, backoff_max_s=0.01)
    completion, attempts = asyncio.run(call_model(model, [], {}, policy))
    assert (completion.text, attempts, model.cancelled) == ("ok", 2, 1)


def test_a_time_limit_that_fires_is_a_model_timeout_naming_the_limit() -> None:
    model = Flaky(5, TransientError("never raised"), hang=True)
    policy = RetryPolicy(max_retries=1, timeout_s=0.1, backoff_initial_s=0.01, backoff_max_s=0.01)
    with pytest.raises(ModelTimeout, match="no answer within 0.1 s") as info:
        asyncio.run(call_model(model, [], {}, policy))
    assert (info.value.attempts, model.calls, model.cancelled) == (2, 2, 2)


def test_time_limits_of_concurrent_calls_are_kept_apart() -> None:
    """Each call times out on its own limit; the others finish untouched."""

    async def call(limit_s: float, hangs: bool) -> str:
        policy = RetryPolicy(max_retries=0, timeout_s=limit_s)
        try:
            await call_model(Flaky(1, TransientError("x"), hang=True) if hangs else Flaky(0, TransientError("x")),
                             [], {}, policy)
            return "ok"
        except ModelTimeout:
            return "timeout"

    async def main() -> list[str]:
        return await asyncio.gather(call(0.2, True), call(5, False), call(0.3, True), call(5, False))

    assert asyncio.run(main()) == ["timeout", "ok", "timeout", "ok"]


def test_a_cancel_from_outside_is_not_turned_into_a_timeout_or_retried() -> None:
    model = Flaky(1, TransientError("never raised"), hang=True)

    async def main() -> tuple[bool, int]:
        task = asyncio.create_task(call_model(model, [], {}, RetryPolicy(max_retries=3, timeout_s=10)))
        while model.calls == 0:
            await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        current = asyncio.current_task()
        assert current is not None
        return task.cancelled(), current.cancelling()

    assert asyncio.run(main()) == (True, 0)
    assert (model.calls, model.cancelled) == (1, 1)


def test_retry_delay_without_retry_after_is_the_backoff() -> None:
    policy = RetryPolicy(backoff_initial_s=1, backoff_max_s=8)
    delays = [retry_delay(policy, 3, TransientError("503")) for _ in range(50)]
    assert all(2 <= d <= 4 for d in delays)
    # an error from outside the model layer (no retry_after attribute at all) waits the backoff too
    assert all(2 <= retry_delay(policy, 3, ConnectionResetError("reset")) <= 4 for _ in range(20))


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    for failures, (low, high) in {1: (0.5, 1), 2: (1, 2), 3: (2, 4), 6: (4, 8), 5000: (4, 8)}.items():
        delays = [backoff_s(failures, 1, 8) for _ in range(50)]
        assert all(low <= d <= high for d in delays)
        assert len(set(delays)) > 1
