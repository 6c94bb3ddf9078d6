"""What counts as a secret: each kind of credential a user may paste into a config or a prompt."""

from __future__ import annotations

import pytest

import orjson

from insideLLMs.secrets import (
    REDACTED, dumps_redacted, is_secret_key, may_hold_secret, redact, redact_jsonl_line, redact_text,
    redact_text_file_content,
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



def test_the_values_a_text_document_keeps_under_secret_keys_and_the_ones_it_does_not() -> None:
    """Nulls, flags, empty quotes, counts and the marker itself stay; anything else under a secret key goes,
    whatever its first character, keeping its quotes."""
    kept = ("api_key: None\napi_key: ~\ntoken: TRUE\npassword: False\napi_key: \"\"\napi_key: ''\ntoken: 3\n"
            "timeout: 30, api_key: [REDACTED]\n")
    assert redact_text_file_content(kept) == kept
    assert redact_text_file_content("password: ab[cd\npassword: [REDACTEX\napi_key: Xyz, passwd: 'Xq'\n") == (
        "password: [REDACTED]\npassword: [REDACTED]\napi_key: [REDACTED], passwd: '[REDACTED]'\n")


@pytest.mark.parametrize(("data", "expected"), [
    (b'{"auth": 1}', True), (b'{"Password": 1}', True), (b'{"x": "Bearer abc"}', True), (b'"me@host"', True),
    (b'{"access_token": 1}', True), (b'{"TOKEN": 1}', True), (b'{"botTokenString": 1}', True),
    (b'{"max_tokens": 3, "tokenizer": "bpe"}', False), (b'{"model": "gpt-4o"}', False), (b"", False),
])
def test_may_hold_secret_is_the_cheap_test_before_redaction(data: bytes, expected: bool) -> None:
    assert may_hold_secret(data) is expected
    if not expected:
        assert redact(orjson.loads(data or b"null")) == orjson.loads(data or b"null")


def test_dumps_redacted_keeps_the_orjson_options_given() -> None:
    option = orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2
    assert dumps_redacted({"b": 1, "a": [2]}, option) == b'{\n  "a": [\n    2\n  ],\n  "b": 1\n}'
    assert dumps_redacted({"b": 1, "api_key": "k"}, option) == b'{\n  "api_key": "[REDACTED]",\n  "b": 1\n}'
    assert dumps_redacted({"b": 1, "api_key": "k"}) == b'{"b":1,"api_key":"[REDACTED]"}'


def test_a_camel_case_token_key_is_redacted_on_every_path() -> None:
    """``botTokenString`` lowercased reads as "tokens"; the cheap pre-checks must not wave it through."""
    assert is_secret_key("botTokenString") and is_secret_key("apiTokenInfo")
    assert dumps_redacted({"botTokenString": "abc"}) == b'{"botTokenString":"[REDACTED]"}'
    assert redact_text_file_content("apiTokenInfo: abc\n") == "apiTokenInfo: [REDACTED]\n"
    assert redact_jsonl_line(b'{"apiTokenInfo": "abc"}\n') == b'{"apiTokenInfo":"[REDACTED]"}\n'
