"""What counts as a secret: each kind of credential a user may paste into a config or a prompt."""

from __future__ import annotations

import pytest

from insideLLMs.secrets import REDACTED, is_secret_key, redact, redact_text


@pytest.mark.parametrize("secret", [
    "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789",
    "AKIAIOSFODNN7EXAMPLE",  # long-term AWS key id
    "ASIAIOSFODNN7EXAMPLE",  # temporary (STS) AWS key id
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH",
])
def test_credential_values_are_redacted_wherever_they_appear(secret: str) -> None:
    assert secret not in redact_text(f"key={secret} and more")
    assert redact({"note": f"use {secret}"})["note"] != f"use {secret}"


@pytest.mark.parametrize("key", ["api_key", "apiKey", "OPENAI_API_KEY", "password", "access_token", "secret"])
def test_secret_keys(key: str) -> None:
    assert is_secret_key(key)
    assert redact({key: "hunter2"}) == {key: REDACTED}


@pytest.mark.parametrize("key", ["max_tokens", "tokenizer", "prompt_tokens", "model_name", "keyword"])
def test_keys_that_only_look_like_secrets(key: str) -> None:
    assert not is_secret_key(key)
    assert redact({key: "value"}) == {key: "value"}
