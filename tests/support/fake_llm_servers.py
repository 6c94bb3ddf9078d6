"""Fixtures: a fake-but-real OpenAI/Anthropic server on 127.0.0.1 (see tests/fake_llm_server.py).

``fake_llm_server`` is a running ``FakeLLMServer`` (in a thread, fresh per test): use
``.openai_base_url`` for the openai model, ``.base_url`` for the anthropic one,
``.configure(...)`` / ``.add_fault(...)`` to script it and ``.stats`` to inspect it.
``closed_port_url`` is an http URL on which nothing listens.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from fake_llm_server import FakeLLMServer


@pytest.fixture
def fake_llm_server() -> Iterator[FakeLLMServer]:
    server = FakeLLMServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def closed_port_url() -> str:
    """An http base URL on a port that was free a moment ago and has no listener."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
