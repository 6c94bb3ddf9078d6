"""What counts as a secret: each kind of credential a user may paste into a config or a prompt."""

from __future__ import annotations

import pytest

from insideLLMs.secrets import (
    REDACTED, is_secret_key, redact, redact_jsonl_line, redact_text, redact_text_file_content,
)


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


def test_flags_empties_and_counts_under_secret_keys_stay() -> None:
    assert redact({"api_key": True, "token": 3, "access_token": "", "auth": None}) == {
        "api_key": True, "token": 3, "access_token": "", "auth": None}
    assert redact({"password": 1234, "db_password": 0}) == {"password": REDACTED, "db_password": REDACTED}  # still secret


@pytest.mark.parametrize(("line", "expected"), [
    # a secret only its key names (no credential-shaped value): keys come back sorted, the line ending kept
    (b'{"z": 1, "password": "hunter2"}\n', b'{"password":"[REDACTED]","z":1}\n'),
    (b'{"password": "hunter2"}  \r\n', b'{"password":"[REDACTED]"}\r\n'),
    (b'{"access_token": "abc"}', b'{"access_token":"[REDACTED]"}'),  # found by the "token" hint alone
    (b'{"headers": {"Authorization": "Bearer abc.def"}}\n', b'{"headers":{"Authorization":"[REDACTED]"}}\n'),
    (b'{"note": "use sk-proj-abcdefghijklmnopqrstuvwxyz0123"}\n', b'{"note":"use [REDACTED]"}\n'),
])
def test_a_jsonl_line_with_a_secret_is_rewritten(line: bytes, expected: bytes) -> None:
    assert redact_jsonl_line(line) == expected


@pytest.mark.parametrize("line", [
    b'{"z": 1,  "tokens": 5, "text": "hello"}\n',  # nothing secret: the very bytes, not re-serialised
    b'{"z": 1, "password": ""}\n',  # a secret key with nothing in it
    b'\xff\xfe{"not": "utf-8"}\n',
])
def test_a_jsonl_line_without_a_secret_is_kept_byte_for_byte(line: bytes) -> None:
    assert redact_jsonl_line(line) == line


def test_a_line_that_is_not_json_is_redacted_as_text() -> None:
    assert redact_jsonl_line(b"password: hunter2 \xff\n") == "password: [REDACTED] \ufffd\n".encode()


def test_text_documents_redact_key_value_pairs_and_keep_counts() -> None:
    text = ("api_key: hunter2\nname: x\npassword = \"p w\"\nmax_tokens: 5\npassword: 1234\nverify: true\n"
            "token: null\nurl: https://u:pw@h/x\n'secret': 'abc'\n")
    assert redact_text_file_content(text) == (
        "api_key: [REDACTED]\nname: x\npassword = \"[REDACTED]\"\nmax_tokens: 5\npassword: [REDACTED]\nverify: true\n"
        "token: null\nurl: https://[REDACTED]@h/x\n'secret': '[REDACTED]'\n")
    assert redact_text_file_content("model: gpt-4o\n") == "model: gpt-4o\n"
    assert redact_text_file_content("api_key: [REDACTED]\n") == "api_key: [REDACTED]\n"
