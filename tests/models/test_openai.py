"""The openai model against the fake-but-real server: answers, metadata, every error mapping, secrets."""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
import urllib.request

import pytest

from insideLLMs.models import (
    AuthenticationFailed,
    ConnectionFailed,
    ModelError,
    ModelTimeout,
    RateLimitError,
    TransientError,
    get_model,
)

CLIENTS = ["aiohttp", "sdk"]


@pytest.fixture(params=CLIENTS)
def client_kind(request: pytest.FixtureRequest) -> str:
    return request.param


def _model(server, client_kind: str = "aiohttp", **args):
    return get_model("openai", model_name="fake", base_url=server.openai_base_url, client=client_kind, **args)


@pytest.mark.slow
def test_answer_carries_usage_served_model_and_fingerprint(fake_llm_server, client_kind):
    fake_llm_server.configure(served_model="fake-2025-01-01", system_fingerprint="fp_abc123")
    completion = _model(fake_llm_server, client_kind).generate("the cat sat on the mat")
    assert completion.text == "the cat sat on the mat"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (6, 6)
    assert completion.finish_reason == "stop"
    assert completion.served_model == "fake-2025-01-01"
    assert completion.system_fingerprint == "fp_abc123"


def test_generation_params_are_sent_and_extra_keys_go_in_the_body(fake_llm_server, client_kind):
    model = _model(fake_llm_server, client_kind)
    completion = model.generate("one two three four", temperature=0, max_tokens=2, top_p=0.5, seed=7, stop=["\n"], top_k=5)
    body = fake_llm_server.stats.last_request["body"]
    assert {k: body[k] for k in ("model", "temperature", "max_tokens", "top_p", "seed", "stop", "top_k")} == {
        "model": "fake", "temperature": 0, "max_tokens": 2, "top_p": 0.5, "seed": 7, "stop": ["\n"], "top_k": 5,
    }
    assert body["messages"] == [{"role": "user", "content": "one two three four"}]
    assert (completion.text, completion.finish_reason) == ("one two", "length")


def test_scripted_answers_and_chat_messages(fake_llm_server):
    fake_llm_server.configure(answers={"capital of France": "Paris"})
    messages = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "What is the capital of France?"}]
    assert _model(fake_llm_server).generate(messages).text == "Paris"
    assert fake_llm_server.stats.last_request["body"]["messages"] == messages


def test_key_headers_and_organization_are_sent(fake_llm_server, client_kind, monkeypatch):
    monkeypatch.setenv("MY_KEY_VAR", "sk-from-env")
    fake_llm_server.configure(api_key="sk-from-env")
    model = _model(fake_llm_server, client_kind, api_key_env="MY_KEY_VAR", organization="org-1", headers={"X-Team": "evals"})
    assert model.generate("hi").text == "hi"
    headers = {k.lower(): v for k, v in fake_llm_server.stats.last_request["headers"].items()}
    assert headers["authorization"] == "Bearer sk-from-env"
    assert headers["openai-organization"] == "org-1"
    assert headers["x-team"] == "evals"


def test_local_server_needs_no_key(fake_llm_server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert _model(fake_llm_server).generate("hello").text == "hello"


def test_no_key_for_the_default_endpoint_says_which_env_var(monkeypatch, client_kind):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(AuthenticationFailed, match="OPENAI_API_KEY"):
        get_model("openai", model_name="gpt-4o-mini", client=client_kind).generate("hi")


def test_secrets_and_hosts_never_reach_the_spec(fake_llm_server):
    url = fake_llm_server.openai_base_url.replace("http://", "http://alice:hunter2@")
    model = get_model(
        "openai", model_name="fake", base_url=url, api_key="sk-secret-123", headers={"X-Token": "tok-456"}, organization="org-9"
    )
    spec_text = json.dumps(model.spec)
    assert model.spec == {"id": "fake", "provider": "openai", "params": {}}
    for secret in ("sk-secret-123", "tok-456", "hunter2", "alice", "127.0.0.1"):
        assert secret not in spec_text
    assert "hunter2" not in repr(model)
    # credentials in the URL are sent as basic auth, and never appear in error messages
    fake_llm_server.add_fault("status", status=500)
    with pytest.raises(TransientError) as caught:
        model.generate("hi")
    assert "hunter2" not in str(caught.value) and "sk-secret-123" not in str(caught.value)
    headers = {k.lower(): v for k, v in fake_llm_server.stats.last_request["headers"].items()}
    assert headers["authorization"].startswith("Basic ")


def test_429_is_rate_limited_with_retry_after_seconds(fake_llm_server, client_kind):
    fake_llm_server.add_fault("status", status=429, retry_after="7", times=2)
    model = _model(fake_llm_server, client_kind)
    for _ in range(2):
        with pytest.raises(RateLimitError) as caught:
            model.generate("hi")
        assert caught.value.retry_after == 7.0
        assert caught.value.retryable and caught.value.status == "rate_limited"
    assert model.generate("hi").text == "hi"  # the script ran out: the third request succeeds


def test_429_retry_after_as_http_date(fake_llm_server):
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    fake_llm_server.add_fault("status", status=429, retry_after=when)
    with pytest.raises(RateLimitError) as caught:
        _model(fake_llm_server).generate("hi")
    assert 25 <= caught.value.retry_after <= 31


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_transient(fake_llm_server, client_kind, status):
    fake_llm_server.add_fault("status", status=status)
    with pytest.raises(TransientError, match=f"HTTP {status}") as caught:
        _model(fake_llm_server, client_kind).generate("hi")
    assert caught.value.retryable and not caught.value.fatal


@pytest.mark.parametrize("fault", ["malformed", "reset"])
def test_malformed_body_and_dropped_connection_are_transient(fake_llm_server, client_kind, fault):
    fake_llm_server.add_fault(fault)
    with pytest.raises(TransientError) as caught:
        _model(fake_llm_server, client_kind).generate("hi")
    assert type(caught.value) is TransientError and caught.value.retryable


def test_wrong_key_is_fatal_and_says_what_to_check(fake_llm_server, client_kind):
    fake_llm_server.configure(api_key="sk-right")
    with pytest.raises(AuthenticationFailed, match="check the api_key model argument") as caught:
        _model(fake_llm_server, client_kind, api_key="sk-wrong").generate("hi")
    assert caught.value.fatal and not caught.value.retryable
    assert "sk-wrong" not in str(caught.value)


def test_404_names_the_model_and_400_is_final(fake_llm_server, client_kind):
    model = _model(fake_llm_server, client_kind)
    fake_llm_server.add_fault("status", status=404)
    with pytest.raises(ModelError, match="model 'fake' not found") as caught:
        model.generate("hi")
    assert not caught.value.retryable
    fake_llm_server.add_fault("status", status=400)
    with pytest.raises(ModelError, match="HTTP 400") as caught:
        model.generate("hi")
    assert type(caught.value) is ModelError and not caught.value.retryable


def test_connection_refused_names_the_base_url(closed_port_url, client_kind):
    model = get_model("openai", model_name="fake", base_url=closed_port_url, client=client_kind)
    with pytest.raises(ConnectionFailed) as caught:
        model.generate("hi")
    assert closed_port_url in str(caught.value)
    assert caught.value.retryable and caught.value.fatal


def test_hang_is_cancelled_promptly_by_the_caller(fake_llm_server, client_kind):
    model = _model(fake_llm_server, client_kind)

    async def call() -> float:
        await model.agenerate([{"role": "user", "content": "warm up"}])  # SDK import and connection, not timed
        fake_llm_server.add_fault("hang")
        started = time.perf_counter()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(model.agenerate([{"role": "user", "content": "hi"}]), 0.3)
        elapsed = time.perf_counter() - started
        answer = await model.agenerate([{"role": "user", "content": "after"}])  # the client still works
        await model.aclose()
        assert answer.text == "after"
        return elapsed

    assert asyncio.run(call()) < 2.0
    deadline = time.monotonic() + 5
    while fake_llm_server.stats.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fake_llm_server.stats.in_flight == 0  # the server saw the hung request go away


def test_socket_timeout_is_a_model_timeout(fake_llm_server, client_kind):
    fake_llm_server.add_fault("hang")
    with pytest.raises(ModelTimeout) as caught:
        _model(fake_llm_server, client_kind, timeout_s=0.3).generate("hi")
    assert caught.value.status == "timeout" and caught.value.retryable


@pytest.mark.slow
def test_concurrent_calls_share_one_client_and_reach_the_server_concurrently(fake_llm_server, client_kind):
    fake_llm_server.configure(latency_ms=400)  # long enough for all 40 to connect on a busy machine
    model = _model(fake_llm_server, client_kind)

    async def many() -> list[str]:
        try:
            results = await asyncio.gather(
                *(model.agenerate([{"role": "user", "content": f"q{i}"}]) for i in range(40))
            )
        finally:
            await model.aclose()
            await model.aclose()  # idempotent
        return [r.text for r in results]

    assert asyncio.run(many()) == [f"q{i}" for i in range(40)]
    assert fake_llm_server.stats.peak_in_flight == 40


def test_control_and_stats_endpoints(fake_llm_server):
    def post(path: str, body: dict) -> dict:
        request = urllib.request.Request(
            fake_llm_server.base_url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    post("/_control", {"answers": {"ping": "pong"}, "faults": [{"kind": "status", "status": 503}]})
    model = _model(fake_llm_server)
    with pytest.raises(TransientError):
        model.generate("ping")
    assert model.generate("ping").text == "pong"
    with urllib.request.urlopen(fake_llm_server.base_url + "/_stats", timeout=5) as response:
        stats = json.loads(response.read())
    assert stats["requests"] == 2 and stats["faults_served"] == 1 and stats["in_flight"] == 0
    assert post("/_reset", {}) == {"ok": True}
    assert fake_llm_server.stats.requests == 0
