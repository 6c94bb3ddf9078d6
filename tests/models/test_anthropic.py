"""The anthropic model against the fake server's Messages endpoint."""

from __future__ import annotations

import asyncio
import time

import pytest

from insideLLMs.models import (
    AuthenticationFailed,
    ConnectionFailed,
    ModelError,
    RateLimitError,
    TransientError,
    get_model,
)


def _model(server, **args):
    return get_model("anthropic", model_name="claude-fake", base_url=server.base_url, **args)


@pytest.mark.slow
def test_answer_with_system_prompt_usage_and_served_model(fake_llm_server):
    fake_llm_server.configure(served_model="claude-fake-20250101", api_key="sk-ant-right")
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "say hello there"}]
    completion = _model(fake_llm_server, api_key="sk-ant-right").generate(messages, temperature=0, seed=1, stop="END")
    assert completion.text == "say hello there"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (5, 3)
    assert completion.finish_reason == "end_turn"
    assert completion.served_model == "claude-fake-20250101"
    assert completion.system_fingerprint is None
    body = fake_llm_server.stats.last_request["body"]
    assert body["system"] == "Be brief."
    assert body["messages"] == [{"role": "user", "content": "say hello there"}]
    assert (body["max_tokens"], body["temperature"], body["stop_sequences"]) == (1024, 0, ["END"])
    assert "seed" not in body
    headers = {k.lower(): v for k, v in fake_llm_server.stats.last_request["headers"].items()}
    # this SDK version sends the key as a bearer token; older ones used x-api-key
    assert "sk-ant-right" in (headers.get("x-api-key"), headers.get("authorization", "").removeprefix("Bearer "))


@pytest.mark.slow
def test_max_tokens_default_and_override(fake_llm_server):
    model = _model(fake_llm_server, max_tokens=3)
    assert model.spec == {"id": "claude-fake", "provider": "anthropic", "params": {"max_tokens": 3}}
    completion = model.generate("one two three four five")
    assert (completion.text, completion.finish_reason) == ("one two three", "max_tokens")
    assert model.generate("one two three four five", max_tokens=1).text == "one"


def test_key_from_env_and_secrets_not_in_spec(fake_llm_server, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-env-secret")
    fake_llm_server.configure(api_key="sk-ant-env-secret")
    model = _model(fake_llm_server, headers={"X-Token": "tok-1"})
    assert model.generate("hi").text == "hi"
    assert "sk-ant-env-secret" not in str(model.spec) and "tok-1" not in str(model.spec)
    assert "127.0.0.1" not in str(model.spec)


def test_missing_key_names_the_env_var(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    with pytest.raises(AuthenticationFailed, match="ANTHROPIC_API_KEY"):
        get_model("anthropic", model_name="claude-x").generate("hi")


def test_error_mapping(fake_llm_server):
    model = _model(fake_llm_server)
    fake_llm_server.add_fault("status", status=429, retry_after="2")
    with pytest.raises(RateLimitError) as rate_limited:
        model.generate("hi")
    assert rate_limited.value.retry_after == 2.0
    for fault, status in [("status", 529), ("status", 500), ("malformed", 0), ("reset", 0)]:
        fake_llm_server.add_fault(fault, status=status or 500)
        with pytest.raises(TransientError):
            model.generate("hi")
    fake_llm_server.add_fault("status", status=404)
    with pytest.raises(ModelError, match="model 'claude-fake' not found"):
        model.generate("hi")
    fake_llm_server.configure(api_key="sk-ant-right")
    with pytest.raises(AuthenticationFailed, match="check the api_key model argument"):
        _model(fake_llm_server, api_key="sk-ant-wrong").generate("hi")


def test_connection_refused(closed_port_url):
    base = closed_port_url.removesuffix("/v1")
    with pytest.raises(ConnectionFailed, match=base):
        get_model("anthropic", model_name="claude-fake", base_url=base).generate("hi")


def test_hang_is_cancelled_promptly(fake_llm_server):
    model = _model(fake_llm_server)

    async def call() -> float:
        await model.agenerate([{"role": "user", "content": "warm up"}])  # SDK import and connection, not timed
        fake_llm_server.add_fault("hang")
        started = time.perf_counter()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(model.agenerate([{"role": "user", "content": "hi"}]), 0.3)
        await model.aclose()
        return time.perf_counter() - started

    assert asyncio.run(call()) < 2.0
