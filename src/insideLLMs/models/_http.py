"""What the HTTP-API models share: credentials, the endpoint, and one HTTP client per event loop.

The client (an aiohttp session or an SDK client) is created lazily inside the running
loop, because it belongs to that loop, and recreated if the model is later used from
another loop (successive ``generate()`` calls each run their own loop). Every concurrent
``agenerate`` on one loop shares it. ``aclose()`` closes it.
"""

from __future__ import annotations

import asyncio
import os
from abc import abstractmethod
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from insideLLMs.models.base import AuthenticationFailed, Model, ModelNotAvailable
from insideLLMs.models._http_errors import Endpoint

#: Sent when a custom base_url is given without any key: local servers (vLLM, Ollama,
#: llama.cpp) ignore it, and the SDKs refuse to start without one.
PLACEHOLDER_KEY = "not-needed"


def strip_credentials(url: str) -> str:
    """``http://user:pw@host/v1`` -> ``http://host/v1`` (for messages; never show credentials)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def import_sdk(name: str, extra: str) -> Any:
    """Import an optional SDK, or say which extra to install."""
    try:
        return __import__(name)
    except ImportError as exc:
        raise ModelNotAvailable(f"this model needs the {name} package: pip install 'insidellms[{extra}]'") from exc


class HttpModel(Model):
    """Base of models behind an HTTP API. Subclasses build the client and do the request."""

    provider_label: str = "the endpoint"
    default_base_url: str = ""

    def __init__(
        self,
        model_name: str,
        *,
        base_url: str | None,
        base_url_env: str,
        api_key: str | None,
        api_key_env: str,
        timeout_s: float,
        params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(model_name, params)
        self.base_url = base_url or os.environ.get(base_url_env) or None
        if self.base_url is not None and urlsplit(self.base_url).scheme not in ("http", "https"):
            raise ValueError(f"base_url must start with http:// or https://, not {strip_credentials(self.base_url)!r}")
        self._api_key = api_key
        self._api_key_env = api_key_env
        self.timeout_s = float(timeout_s)
        key_hint = "the api_key model argument" if api_key else f"the {api_key_env} environment variable"
        shown_url = strip_credentials(self.base_url or self.default_base_url)
        self.endpoint = Endpoint(self.provider_label, shown_url, model_name, key_hint)
        self._client: Any = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    def resolve_api_key(self) -> str:
        """The key to send: the argument, else the env var, else a placeholder for a custom base_url."""
        key = self._api_key or os.environ.get(self._api_key_env)
        if key:
            return key
        if self.base_url:
            return PLACEHOLDER_KEY
        raise AuthenticationFailed(
            f"no API key for {self.provider_label}: set the {self._api_key_env} environment variable "
            "(or api_key / api_key_env in the model args)"
        )

    @abstractmethod
    def _make_client(self) -> Any:
        """Build the HTTP client for the running loop; it must have an async ``close()``."""

    def client(self) -> Any:
        """The client for the running loop (created on first use; no await, so no race)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client = self._make_client()
            self._client_loop = loop
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP connections; the runner calls this when a run ends. Safe to call twice."""
        client, loop = self._client, self._client_loop
        self._client = self._client_loop = None
        if client is not None and loop is asyncio.get_running_loop():
            await client.close()
