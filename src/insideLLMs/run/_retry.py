"""One model call with a per-attempt time limit and retries (exponential backoff, jitter, Retry-After).

The time limit really cancels the request (``asyncio.timeout`` cancels the awaiting task, which
closes the HTTP request). Only errors marked ``retryable`` are retried; the last one is raised
with ``attempts`` set, so the record and timings can say how hard we tried.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

from insideLLMs.backoff import backoff_s
from insideLLMs.models.base import Completion, Message, Model, ModelError, ModelTimeout


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 4
    timeout_s: float = 60.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0


def retry_delay(policy: RetryPolicy, failures: int, exc: BaseException) -> float:
    """Seconds to wait after the ``failures``-th failed attempt: the server's Retry-After when it
    gave one (plus a little jitter, so clients told the same time do not return together), else
    the backoff."""
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        return max(float(retry_after), 0.0) + random.uniform(0, 0.1)
    return backoff_s(failures, policy.backoff_initial_s, policy.backoff_max_s)


async def _attempt(model: Model, messages: list[Message], generation: dict[str, Any], timeout_s: float) -> Completion:
    try:
        async with asyncio.timeout(timeout_s):
            return await model.agenerate(messages, **generation)
    except TimeoutError:
        raise ModelTimeout(f"no answer within {timeout_s:g} s") from None


async def call_model(
    model: Model, messages: list[Message], generation: dict[str, Any], policy: RetryPolicy
) -> tuple[Completion, int]:
    """Return the completion and the number of attempts it took; raise the last ``ModelError``."""
    attempts = 0
    while True:
        attempts += 1
        try:
            return await _attempt(model, messages, generation, policy.timeout_s), attempts
        except ModelError as exc:
            if not exc.retryable or attempts > policy.max_retries:
                exc.attempts = attempts  # type: ignore[attr-defined]
                raise
            await asyncio.sleep(retry_delay(policy, attempts, exc))
