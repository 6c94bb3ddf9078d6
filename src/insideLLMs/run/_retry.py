"""One model call with a per-attempt timeout and retries (exponential backoff, jitter, Retry-After).

The timeout really cancels the request (``deadlines.time_limit``, a cheaper ``asyncio.timeout``,
cancels the awaiting task, which closes the HTTP request). Only errors marked ``retryable`` are retried; the last one is raised
with ``attempts`` set, so the record and timings can say how hard we tried.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

from insideLLMs.run._deadlines import time_limit
from insideLLMs.models.base import Completion, Message, Model, ModelError, ModelTimeout


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 4
    timeout_s: float = 60.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, ModelError) and exc.retryable


def backoff_delay(policy: RetryPolicy, failures: int, exc: BaseException | None) -> float:
    """Seconds to wait after the ``failures``-th failed attempt: the server's Retry-After when it gave
    one, else exponential backoff with jitter (so that many clients do not retry in lockstep)."""
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        return max(float(retry_after), 0.0) + random.uniform(0, 0.1)
    backoff = min(policy.backoff_max_s, policy.backoff_initial_s * 2 ** (failures - 1))
    return random.uniform(backoff / 2, backoff)


async def _attempt(model: Model, messages: list[Message], generation: dict[str, Any], timeout_s: float) -> Completion:
    try:
        async with time_limit(timeout_s):
            return await model.agenerate(messages, **generation)
    except TimeoutError:
        raise ModelTimeout(f"no answer within {timeout_s:g} s") from None


async def call_model(
    model: Model, messages: list[Message], generation: dict[str, Any], policy: RetryPolicy
) -> tuple[Completion, int]:
    """Return the completion and the number of attempts it took; raise the last ``ModelError``."""
    try:  # the common case, without the retry machinery's per-call cost
        return await _attempt(model, messages, generation, policy.timeout_s), 1
    except ModelError as exc:
        if not exc.retryable or policy.max_retries <= 0:
            exc.attempts = 1  # type: ignore[attr-defined]
            raise
        await asyncio.sleep(backoff_delay(policy, 1, exc))
    from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt  # only on the retry path

    attempts = 1
    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.max_retries),
        wait=lambda state: backoff_delay(policy, state.attempt_number + 1, state.outcome.exception() if state.outcome else None),
        retry=retry_if_exception(_is_retryable),
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                attempts += 1
                return await _attempt(model, messages, generation, policy.timeout_s), attempts
    except ModelError as exc:
        exc.attempts = attempts  # type: ignore[attr-defined]
        raise
    raise AssertionError("unreachable")  # pragma: no cover
