"""Any OpenAI-compatible Chat Completions endpoint: OpenAI, vLLM, Ollama, llama.cpp server, LM Studio, OpenRouter.

Two clients speak the same wire format. The default, ``client="aiohttp"``, is a lean
aiohttp session that POSTs ``{base_url}/chat/completions``: far less CPU per request and
import time than the official SDK, which is what lets a run keep pace with a bare client at
high concurrency (``bench/harness_overhead.py --transports``; numbers in bench/README.md). ``client="sdk"`` sends through
the official ``openai`` SDK (its aiohttp transport, SDK retries off) for anyone who
prefers it; both map failures onto the same error types.
"""

from __future__ import annotations

import base64
from typing import Any, ClassVar, Literal
from urllib.parse import unquote, urlsplit

from insideLLMs.models.base import Completion, Message, TransientError, Usage
from insideLLMs.models._http_errors import classify_status, error_detail, map_request_error
from insideLLMs.models._http import PLACEHOLDER_KEY, HttpModel, import_sdk, strip_credentials


class OpenAIModel(HttpModel):
    """A chat model behind an OpenAI-compatible API.

    ``api_key`` defaults to the ``api_key_env`` environment variable (``OPENAI_API_KEY``);
    with a custom ``base_url`` and no key, a placeholder is sent (local servers need none).
    ``base_url`` defaults to ``OPENAI_BASE_URL``, else OpenAI; ``user:password@`` in it is
    sent as HTTP basic auth. ``headers`` are added to every request.

    ``spec.params`` is empty on purpose: the run_id names the model, not the host serving
    it, so the same model behind another host, port or proxy keeps its run id, and no
    URL, header or key can reach a record. Generation params come per call: temperature,
    max_tokens, top_p, seed, stop, and any other key is sent as-is in the JSON body
    (e.g. vLLM's ``top_k``). ``timeout_s`` bounds each request on the socket; the runner
    also cancels attempts that exceed its own timeout.
    """

    provider: ClassVar[str] = "openai"
    provider_label = "the OpenAI-compatible endpoint"
    default_base_url = "https://api.openai.com/v1"

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        organization: str | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float = 120.0,
        max_connections: int = 1024,
        client: Literal["aiohttp", "sdk"] = "aiohttp",
    ) -> None:
        if client not in ("aiohttp", "sdk"):
            raise ValueError(f"client must be 'aiohttp' or 'sdk', not {client!r}")
        super().__init__(
            model_name,
            base_url=base_url,
            base_url_env="OPENAI_BASE_URL",
            api_key=api_key,
            api_key_env=api_key_env,
            timeout_s=timeout_s,
        )
        self._organization = organization
        self._headers = dict(headers or {})
        self._max_connections = int(max_connections)
        self._client_kind = client
        self._sdk: Any = None

    def _make_client(self) -> Any:
        return self._make_sdk_client() if self._client_kind == "sdk" else _ChatCompletionsClient(self)

    def _make_sdk_client(self) -> Any:
        import httpx2

        self._sdk = sdk = import_sdk("openai", "openai")
        timeout = httpx2.Timeout(self.timeout_s, connect=min(10.0, self.timeout_s))
        # Keep every connection alive: closing idle ones above a small cap churns sockets at high concurrency.
        limits = httpx2.Limits(max_connections=self._max_connections, max_keepalive_connections=self._max_connections)
        return sdk.AsyncOpenAI(
            api_key=self.resolve_api_key(),
            base_url=self.base_url,
            organization=self._organization,
            default_headers=self._headers or None,
            max_retries=0,
            timeout=timeout,
            http_client=sdk.DefaultAioHttpClient(timeout=timeout, limits=limits),
        )

    async def agenerate(self, messages: list[Message], **generation: Any) -> Completion:
        body = {key: value for key, value in generation.items() if value is not None}
        try:
            client = self.client()
            if self._client_kind == "sdk":
                response = await client.chat.completions.create(
                    model=self.model_id, messages=messages, extra_body=body or None
                )
                return _completion_from_sdk(response)
            return _completion_from_json(await client.create({"model": self.model_id, "messages": messages, **body}))
        except Exception as exc:
            raise map_request_error(exc, self.endpoint, self._sdk) from exc


class _ChatCompletionsClient:
    """The lean client: one aiohttp session, one POST per chat, orjson both ways."""

    def __init__(self, model: OpenAIModel) -> None:
        import aiohttp

        from insideLLMs import __version__

        self._endpoint = model.endpoint
        base_url = model.base_url or model.default_base_url
        parts = urlsplit(base_url)
        headers = {"Content-Type": "application/json", "User-Agent": f"insidellms/{__version__}"}
        if parts.username is not None:  # credentials in the URL go as basic auth, not a bearer key
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        else:
            key = model.resolve_api_key()
            if key != PLACEHOLDER_KEY:
                headers["Authorization"] = f"Bearer {key}"
        if model._organization:
            headers["OpenAI-Organization"] = model._organization
        headers.update(model._headers)
        self._url = strip_credentials(base_url).rstrip("/") + "/chat/completions"
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=min(10.0, model.timeout_s), sock_read=model.timeout_s)
        connector = aiohttp.TCPConnector(limit=model._max_connections, ttl_dns_cache=300)
        # Proxy settings are read once here: aiohttp's trust_env re-reads them (and ~/.netrc)
        # in a thread for every request, which doubled the CPU per request.
        self._proxy = _env_proxy(self._url)
        self._session = aiohttp.ClientSession(connector=connector, headers=headers, timeout=timeout)

    async def create(self, body: dict[str, Any]) -> Any:
        import orjson

        async with self._session.post(self._url, data=orjson.dumps(body), proxy=self._proxy) as response:
            raw = await response.read()
            if response.status >= 400:
                try:
                    error_body: object = orjson.loads(raw)
                except ValueError:
                    error_body = raw
                detail = error_detail(error_body, response.reason or "")
                raise classify_status(response.status, detail, response.headers, self._endpoint)
        return orjson.loads(raw)

    async def close(self) -> None:
        await self._session.close()


def _env_proxy(url: str) -> str | None:
    """The proxy HTTP(S)_PROXY/NO_PROXY choose for ``url``, if any."""
    import urllib.request

    parts = urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass(parts.netloc):
        return None
    return proxy


def _completion_from_json(data: Any) -> Completion:
    try:
        choice = data["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError):
        raise TransientError(f"malformed response: no choices[0].message in {str(data)[:200]!r}") from None
    text = message.get("content")
    if text is None:
        text = message.get("refusal") or ""
    usage = data.get("usage")
    return Completion(
        text=text if isinstance(text, str) else str(text),
        usage=Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
        if isinstance(usage, dict)
        else None,
        finish_reason=choice.get("finish_reason"),
        served_model=data.get("model") or None,
        system_fingerprint=data.get("system_fingerprint") or None,
    )


def _completion_from_sdk(response: Any) -> Completion:
    choices = getattr(response, "choices", None)  # a non-JSON body comes back as a plain str
    if not choices:
        raise TransientError(f"malformed response: no choices in {str(response)[:200]!r}")
    choice = choices[0]
    message = choice.message
    text = message.content if message.content is not None else (getattr(message, "refusal", None) or "")
    usage = response.usage
    return Completion(
        text=text,
        usage=Usage(usage.prompt_tokens, usage.completion_tokens) if usage is not None else None,
        finish_reason=choice.finish_reason,
        served_model=response.model or None,
        system_fingerprint=getattr(response, "system_fingerprint", None) or None,
    )
