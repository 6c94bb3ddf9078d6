"""Map HTTP failures (from our aiohttp client or the openai/anthropic SDKs) onto our error types.

Status codes map the same whoever made the request. Both SDKs share one exception shape
(APIStatusError with ``status_code``/``response``, APIConnectionError, APITimeoutError). Connection
errors are classified by their root cause: the aiohttp transport reports a dropped
connection as a "connect timeout", which must be retried as transient, not reported
as a timeout, and a refused port must name the endpoint the user configured.
"""

from __future__ import annotations

import email.utils
import socket
import ssl
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType

from insideLLMs.models.base import (
    AuthenticationFailed,
    ConnectionFailed,
    ModelError,
    ModelTimeout,
    RateLimitError,
    TransientError,
)

_REFUSED = (ConnectionRefusedError, socket.gaierror)
# a connect timeout is a host that cannot be reached (blackholed), not a slow model
_REFUSED_NAMES = frozenset(
    {"ClientConnectorError", "ClientConnectorDNSError", "ConnectError", "ConnectionTimeoutError", "ConnectTimeout"}
)
_DROPPED = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)
_DROPPED_NAMES = frozenset(
    {"ServerDisconnectedError", "ClientPayloadError", "RemoteProtocolError", "ReadError", "WriteError"}
)
_TIMEOUT_NAMES = frozenset({"ReadTimeout", "WriteTimeout", "PoolTimeout", "ServerTimeoutError", "SocketTimeoutError"})


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What an error message may say about where a request went (never a credential)."""

    provider: str  # "the OpenAI-compatible endpoint", "Anthropic"
    base_url: str  # with any user:password removed
    model_name: str
    key_hint: str  # e.g. "the OPENAI_API_KEY environment variable"


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def error_detail(body: object, fallback: str = "") -> str:
    """The server's own error message from an OpenAI- or Anthropic-shaped error body, shortened."""
    message: object = None
    if isinstance(body, dict):
        error = body.get("error")
        message = error.get("message") if isinstance(error, dict) else body.get("message") or error
    elif isinstance(body, str | bytes):
        message = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(str(message or fallback).split())
    return text if len(text) <= 300 else text[:297] + "..."


def classify_connection_error(exc: BaseException, endpoint: Endpoint) -> ModelError:
    """A request that got no HTTP answer: refused/DNS, dropped, or timed out.

    The deepest cause decides: the SDKs' transports wrap a dropped connection in a
    "ConnectError" (anthropic) or a "ConnectTimeout" (openai).
    """
    causes = list(_causes(exc))[::-1]
    for cause in causes:
        names = _names(cause)
        if isinstance(cause, ssl.SSLError) or names & {"ClientSSLError", "SSLError"}:
            plain = "WRONG_VERSION_NUMBER" in str(cause)  # what a plain-HTTP server answers to a TLS hello
            return ConnectionFailed(
                f"cannot connect to {endpoint.provider} at {endpoint.base_url} (TLS failed: {cause}); "
                + ("the server does not speak TLS there: use http:// in base_url" if plain
                   else "check the server's certificate (SSL_CERT_FILE names a CA bundle to trust)")
            )
        if isinstance(cause, _REFUSED) or names & _REFUSED_NAMES:
            return ConnectionFailed(
                f"cannot connect to {endpoint.provider} at {endpoint.base_url} ({cause}); "
                "check base_url and that the server is running"
            )
        if isinstance(cause, _DROPPED) or names & _DROPPED_NAMES:
            return TransientError(f"connection to {endpoint.base_url} dropped before an answer ({type(cause).__name__})")
    for cause in causes:
        if isinstance(cause, TimeoutError) or _names(cause) & _TIMEOUT_NAMES:
            return ModelTimeout(f"request to {endpoint.base_url} timed out")
    if "APITimeoutError" in _names(exc):
        return ModelTimeout(f"request to {endpoint.base_url} timed out")
    return ConnectionFailed(f"cannot reach {endpoint.provider} at {endpoint.base_url}: {exc}")


def classify_status(status: int, detail: str, headers: Mapping[str, str], endpoint: Endpoint) -> ModelError:
    """An HTTP error answer: 401/403 fatal, 429 with Retry-After, 408/409/5xx transient, other 4xx final."""
    if status in (401, 403):
        return AuthenticationFailed(
            f"{endpoint.provider} at {endpoint.base_url} rejected the credentials (HTTP {status}: {detail}); "
            f"check {endpoint.key_hint}"
        )
    if status == 429:
        return RateLimitError(f"rate limited by {endpoint.base_url} (HTTP 429: {detail})", retry_after=retry_after_seconds(headers))
    if status == 404:
        return ModelError(
            f"model {endpoint.model_name!r} not found at {endpoint.base_url} (HTTP 404: {detail}); "
            "check model_name and base_url"
        )
    if status in (408, 409) or status >= 500:
        return TransientError(f"server error from {endpoint.base_url} (HTTP {status}: {detail})")
    return ModelError(f"request rejected by {endpoint.base_url} (HTTP {status}: {detail})")


def map_request_error(exc: BaseException, endpoint: Endpoint, sdk: ModuleType | None = None) -> ModelError:
    """Turn an exception from a request (aiohttp, or the ``sdk`` module's client) into a ModelError."""
    if isinstance(exc, ModelError):
        return exc
    if sdk is not None and isinstance(exc, sdk.APIStatusError):
        detail = error_detail(exc.body, getattr(exc, "message", "") or str(exc))
        return classify_status(exc.status_code, detail, exc.response.headers, endpoint)
    if sdk is not None and isinstance(exc, sdk.APIResponseValidationError):
        return TransientError(f"malformed response body from {endpoint.base_url}: {exc}")
    if sdk is not None and isinstance(exc, sdk.APIConnectionError):
        return classify_connection_error(exc, endpoint)
    if isinstance(exc, ValueError):  # undecodable JSON, or a body that does not fit the schema
        return TransientError(f"malformed response body from {endpoint.base_url}: {type(exc).__name__}: {exc}"[:400])
    if isinstance(exc, OSError | TimeoutError) or "ClientError" in _names(exc):
        return classify_connection_error(exc, endpoint)
    return ModelError(f"{endpoint.provider} call failed: {type(exc).__name__}: {exc}")
