"""Models: ``get_model(type, **args)`` builds one by name; provider SDKs import only when used."""

from __future__ import annotations

from typing import Any

from insideLLMs.models.base import (
    AuthenticationFailed,
    Completion,
    ConnectionFailed,
    Message,
    Model,
    ModelError,
    ModelNotAvailable,
    ModelTimeout,
    RateLimitError,
    TransientError,
    Usage,
)
from insideLLMs.models._pricing import Price, PriceTable, token_cost
from insideLLMs.registry import Registry

MODELS = Registry(
    kind="model",
    base=Model,
    builtins={
        "dummy": "insideLLMs.models.dummy:DummyModel",
        "openai": "insideLLMs.models.openai:OpenAIModel",
        "anthropic": "insideLLMs.models.anthropic:AnthropicModel",
        "llamacpp": "insideLLMs.models.llamacpp:LlamaCppModel",
    },
    entry_point_group="insidellms.models",
)


def get_model(type: str, **args: Any) -> Model:
    """Build a model by type name (``dummy``, ``openai``, ``anthropic``, ``llamacpp``, a plugin, or ``pkg.mod:Class``)."""
    return MODELS.resolve(type)(**args)


__all__ = [
    "AuthenticationFailed",
    "Completion",
    "ConnectionFailed",
    "MODELS",
    "Message",
    "Price",
    "PriceTable",
    "Model",
    "ModelError",
    "ModelNotAvailable",
    "ModelTimeout",
    "RateLimitError",
    "TransientError",
    "Usage",
    "get_model",
    "token_cost",
]
