"""Claude models through the official ``anthropic`` SDK (Messages API), with the SDK's retries off."""

from __future__ import annotations

from typing import Any, ClassVar

from insideLLMs.models.base import Completion, Message, TransientError, Usage
from insideLLMs.models._http_errors import map_request_error
from insideLLMs.models._http import HttpModel, import_sdk


class AnthropicModel(HttpModel):
    """A model behind the Anthropic Messages API (or a compatible server at ``base_url``).

    ``api_key`` defaults to ``ANTHROPIC_API_KEY``; ``base_url`` (without ``/v1``) to
    ``ANTHROPIC_BASE_URL``, else Anthropic. System messages go to the ``system`` parameter.
    The API requires ``max_tokens``: ``max_tokens`` here is used when the generation params
    give none, and is the only entry in ``spec.params`` (hosts and keys never are).
    ``stop`` is sent as ``stop_sequences``; ``seed`` is dropped (the API has none), so one
    generation block can serve a harness of OpenAI and Anthropic models.
    """

    provider: ClassVar[str] = "anthropic"
    provider_label = "Anthropic"
    default_base_url = "https://api.anthropic.com"

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        api_key_env: str = "ANTHROPIC_API_KEY",
        headers: dict[str, str] | None = None,
        max_tokens: int = 1024,
        timeout_s: float = 120.0,
        max_connections: int = 1024,
    ) -> None:
        super().__init__(
            model_name,
            base_url=base_url,
            base_url_env="ANTHROPIC_BASE_URL",
            api_key=api_key,
            api_key_env=api_key_env,
            timeout_s=timeout_s,
            params={"max_tokens": int(max_tokens)},
        )
        self._headers = dict(headers or {})
        self._max_connections = int(max_connections)
        self._sdk: Any = None

    def _make_client(self) -> Any:
        import httpx2

        self._sdk = sdk = import_sdk("anthropic", "anthropic")
        timeout = httpx2.Timeout(self.timeout_s, connect=min(10.0, self.timeout_s))
        limits = httpx2.Limits(max_connections=self._max_connections, max_keepalive_connections=self._max_connections)
        return sdk.AsyncAnthropic(
            api_key=self.resolve_api_key(),
            base_url=self.base_url,
            default_headers=self._headers or None,
            max_retries=0,
            timeout=timeout,
            open_telemetry=False,
            http_client=sdk.DefaultAioHttpClient(timeout=timeout, limits=limits),
        )

    async def agenerate(self, messages: list[Message], **generation: Any) -> Completion:
        system = "\n\n".join(m["content"] for m in messages if m.get("role") == "system")
        chat = [m for m in messages if m.get("role") != "system"]
        body = {key: value for key, value in generation.items() if value is not None and key != "seed"}
        max_tokens = int(body.pop("max_tokens", self.params["max_tokens"]))
        if "stop" in body:
            stop = body.pop("stop")
            body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
        if system:
            body["system"] = system
        try:
            client = self.client()
            response = await client.messages.create(
                model=self.model_id, max_tokens=max_tokens, messages=chat, extra_body=body or None
            )
            return _completion(response)
        except Exception as exc:
            raise map_request_error(exc, self.endpoint, self._sdk) from exc


def _completion(response: Any) -> Completion:
    content = getattr(response, "content", None)  # a non-JSON body comes back as a plain str
    if not isinstance(content, list):
        raise TransientError(f"malformed response: no content blocks in {str(response)[:200]!r}")
    text = "".join(block.text for block in content if getattr(block, "type", None) == "text")
    usage = response.usage
    return Completion(
        text=text,
        usage=Usage(usage.input_tokens, usage.output_tokens) if usage is not None else None,
        finish_reason=response.stop_reason,
        served_model=response.model or None,
    )
