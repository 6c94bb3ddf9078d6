"""A fake-but-real LLM HTTP server: OpenAI Chat Completions and Anthropic Messages on aiohttp.

Deterministic answers (a table keyed by prompt substring, else an echo of the last user
message), a judge mode (structured, malformed or slow verdicts for judge prompts), a fixed latency, and scripted faults (429 with Retry-After, any status, hangs,
malformed bodies, dropped connections, answers that trickle in) so tests and benchmarks drive the real SDKs end to end.
It counts requests and in-flight concurrency (peak and time-weighted mean).

Endpoints: POST /v1/chat/completions, POST /v1/messages, GET /v1/models,
GET /_stats, POST /_control (JSON merged into the behaviour), POST /_reset.

Run as a process (benchmarks): ``python tests/fake_llm_server.py --port P --latency-ms 50``.
In-process (tests): ``FakeLLMServer(latency_ms=0).start()`` runs it in a thread with its own loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

FAULT_KINDS = ("status", "hang", "malformed", "reset", "slow")


@dataclass
class Fault:
    """One scripted fault. ``times`` None = forever; ``match`` limits it to prompts containing it.

    kind "status" answers ``status`` (429 adds Retry-After when ``retry_after`` is set);
    "hang" never answers; "malformed" sends a truncated JSON body with status 200;
    "reset" drops the connection without an answer; "slow" sends the real answer a byte of leading
    whitespace at a time over ``seconds`` (a slow-loris server), then the rest.
    """

    kind: str
    status: int = 500
    times: int | None = 1
    retry_after: str | None = None
    match: str | None = None
    seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {FAULT_KINDS}, not {self.kind!r}")


JUDGE_MARKER = "Reply with only a JSON object"  # a line of insideLLMs' judge prompt


@dataclass
class Judge:
    """Judge mode: a request whose last user message holds ``marker`` gets a verdict, not an answer.

    ``verdicts`` maps a substring of the judge prompt (the judged answer, say) to a verdict, first match
    wins, else ``default``. A verdict that is a grade name is sent as ``{"grade": g, "reason": "..."}``; a
    mapping is sent as JSON as it is (``{"grade": "Z"}`` for a grade off the scale); text starting with
    ``raw:`` is sent as the rest of it (a malformed verdict). ``latency_ms`` delays every verdict (slow).
    """

    verdicts: dict[str, Any] = field(default_factory=dict)
    default: Any = "PASS"
    latency_ms: float = 0.0
    marker: str = JUDGE_MARKER

    def verdict(self, prompt: str) -> str:
        chosen = next((v for key, v in self.verdicts.items() if key in prompt), self.default)
        if isinstance(chosen, str) and chosen.startswith("raw:"):
            return chosen[4:]
        if isinstance(chosen, str):
            return json.dumps({"grade": chosen, "reason": f"fake judge says {chosen}"})
        return json.dumps(chosen)


@dataclass
class Behaviour:
    latency_ms: float = 0.0
    api_key: str | None = None  # when set, any other key gets a 401
    answers: dict[str, str] = field(default_factory=dict)
    served_model: str | None = None  # None: echo the requested model name
    system_fingerprint: str | None = "fp_fake0001"
    faults: list[Fault] = field(default_factory=list)
    judge: Judge | None = None  # judge mode (see ``Judge``); None: judge prompts are answered as any other
    #: prompt substring -> answers, one picked by the request's ``seed`` (seed % len): sampling that a seed repeats
    seeded_answers: dict[str, list[str]] = field(default_factory=dict)
    #: a provider's per-client cap: each connection is answered at most this often per second (0: no cap), so a
    #: client process with M connections tops out at M x this, whatever its concurrency (bench/scale_out.py)
    per_connection_rps: float = 0.0


@dataclass
class Stats:
    requests: int = 0
    by_path: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    peak_in_flight: int = 0
    busy_area: float = 0.0  # integral of in_flight over time
    first_ts: float | None = None
    last_ts: float | None = None
    faults_served: int = 0
    judge_requests: int = 0
    last_request: dict[str, Any] | None = None
    seeds: list[tuple[str, Any]] = field(default_factory=list)  # (last user message, the ``seed`` sent) per request

    def _advance(self, now: float) -> None:
        if self.last_ts is not None:
            self.busy_area += self.in_flight * (now - self.last_ts)
        if self.first_ts is None:
            self.first_ts = now
        self.last_ts = now

    def enter(self, path: str) -> None:
        self._advance(time.perf_counter())
        self.requests += 1
        self.by_path[path] = self.by_path.get(path, 0) + 1
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def leave(self) -> None:
        self._advance(time.perf_counter())
        self.in_flight -= 1

    def to_dict(self) -> dict[str, Any]:
        span = (self.last_ts - self.first_ts) if self.first_ts is not None and self.last_ts is not None else 0.0
        return {
            "requests": self.requests,
            "by_path": dict(self.by_path),
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
            "mean_in_flight": self.busy_area / span if span > 0 else 0.0,
            "faults_served": self.faults_served,
            "judge_requests": self.judge_requests,
            "last_request": self.last_request,
            "seeds": [list(pair) for pair in self.seeds],
        }


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content", "")
            if isinstance(content, list):  # content blocks
                return " ".join(b.get("text", "") for b in content if isinstance(b, dict))
            return str(content)
    return ""


def _words(messages: list[dict[str, Any]], system: Any = None) -> int:
    count = len(str(system).split()) if system else 0
    for message in messages:
        content = message.get("content", "")
        count += len((content if isinstance(content, str) else json.dumps(content)).split())
    return count


class FakeLLMServer:
    """The server and its controls. Use ``start()``/``stop()`` (thread) or ``serve()`` (own process)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **behaviour: Any) -> None:
        self.host = host
        self.port = port
        self.behaviour = Behaviour()
        self.stats = Stats()
        self.configure(**behaviour)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._stopped: asyncio.Event | None = None
        self._next_turn: dict[int, float] = {}  # per connection, when it may be answered next (per_connection_rps)

    # ---- controls (thread-safe enough for tests: plain attribute swaps) ----

    def configure(self, **changes: Any) -> None:
        """Change behaviour at run time: latency_ms, api_key, answers, served_model, system_fingerprint, faults,
        judge (a ``Judge`` or its fields as a mapping; None turns judge mode off)."""
        for key, value in changes.items():
            if not hasattr(self.behaviour, key):
                raise ValueError(f"unknown behaviour {key!r}")
            if key == "faults":
                value = [f if isinstance(f, Fault) else Fault(**f) for f in value]
            if key == "judge" and isinstance(value, dict):
                value = Judge(**value)
            setattr(self.behaviour, key, value)

    def add_fault(self, kind: str, **options: Any) -> None:
        self.behaviour.faults = [*self.behaviour.faults, Fault(kind=kind, **options)]

    def reset(self) -> None:
        self.behaviour = Behaviour()
        self.stats = Stats()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/v1"

    # ---- request handling ----

    def _take_fault(self, prompt: str) -> Fault | None:
        for fault in self.behaviour.faults:
            if fault.match is not None and fault.match not in prompt:
                continue
            if fault.times is not None:
                if fault.times <= 0:
                    continue
                fault.times -= 1
            self.stats.faults_served += 1
            return fault
        return None

    async def _faulted(self, request: web.Request, fault: Fault, error: dict[str, Any]) -> web.StreamResponse:
        if fault.kind == "hang":
            await asyncio.Event().wait()  # until the client goes away (handler cancellation) or shutdown
        if fault.kind == "reset":
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        if fault.kind == "malformed":
            return web.Response(body=b'{"id": "chatcmpl-broken", "choices": [{"mess', content_type="application/json")
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        return web.json_response(error, status=fault.status, headers=headers)

    async def _connection_turn(self, request: web.Request) -> None:
        """Wait for this connection's next slot under ``per_connection_rps``."""
        key = id(request.transport)
        now = time.monotonic()
        turn = max(now, self._next_turn.get(key, 0.0))
        self._next_turn[key] = turn + 1.0 / self.behaviour.per_connection_rps
        if turn > now:
            await asyncio.sleep(turn - now)

    def _authorised(self, request: web.Request) -> bool:
        expected = self.behaviour.api_key
        if expected is None:
            return True
        bearer = request.headers.get("Authorization", "")
        return bearer == f"Bearer {expected}" or request.headers.get("x-api-key") == expected

    def _answer(self, prompt: str, seed: Any = None) -> str:
        judge = self.behaviour.judge
        if judge is not None and judge.marker in prompt:
            return judge.verdict(prompt)
        for key, texts in self.behaviour.seeded_answers.items():
            if key in prompt and texts:
                return texts[(seed if isinstance(seed, int) else 0) % len(texts)]
        for key, text in self.behaviour.answers.items():
            if key in prompt:
                return text
        return prompt

    async def _common(self, request: web.Request, body: dict[str, Any], kind: str) -> web.StreamResponse | tuple[str, float]:
        """Latency, auth and faults: a response to send instead of an answer, or the answer text and the
        seconds over which to trickle it (0: at once)."""
        messages = body.get("messages") or []
        prompt = _last_user_text(messages)
        self.stats.last_request = {"path": request.path, "body": body, "headers": dict(request.headers)}
        self.stats.seeds.append((prompt, body.get("seed")))
        if self.behaviour.per_connection_rps:
            await self._connection_turn(request)
        if self.behaviour.latency_ms:
            await asyncio.sleep(self.behaviour.latency_ms / 1000.0)
        if not self._authorised(request):
            return web.json_response(_error(kind, 401, "Incorrect API key provided."), status=401)
        fault = self._take_fault(prompt)
        judge = self.behaviour.judge
        if judge is not None and judge.marker in prompt:
            self.stats.judge_requests += 1
            if judge.latency_ms:
                await asyncio.sleep(judge.latency_ms / 1000.0)
        answer = self._answer(prompt, body.get("seed"))
        if fault is not None and fault.kind == "slow":
            return answer, fault.seconds
        if fault is not None:
            return await self._faulted(request, fault, _error(kind, fault.status, f"scripted {fault.status}"))
        return answer, 0.0

    async def _respond(self, request: web.Request, payload: dict[str, Any], trickle_s: float) -> web.StreamResponse:
        if not trickle_s:
            return web.json_response(payload)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        deadline = time.monotonic() + trickle_s
        while time.monotonic() < deadline:
            await response.write(b" ")
            await asyncio.sleep(0.05)
        await response.write(json.dumps(payload).encode())
        await response.write_eof()
        return response

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        self.stats.enter(request.path)
        try:
            body = await request.json()
            outcome = await self._common(request, body, "openai")
            if isinstance(outcome, web.StreamResponse):
                return outcome
            answer, trickle_s = outcome
            text, finish = _truncate(answer, body.get("max_tokens") or body.get("max_completion_tokens"))
            prompt_tokens = _words(body.get("messages") or [])
            payload: dict[str, Any] = {
                "id": f"chatcmpl-{self.stats.requests}",
                "object": "chat.completion",
                "created": 1700000000,
                "model": self.behaviour.served_model or body.get("model", "fake"),
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish, "logprobs": None}
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": len(text.split()),
                    "total_tokens": prompt_tokens + len(text.split()),
                },
            }
            if self.behaviour.system_fingerprint is not None:
                payload["system_fingerprint"] = self.behaviour.system_fingerprint
            return await self._respond(request, payload, trickle_s)
        finally:
            self.stats.leave()

    async def messages(self, request: web.Request) -> web.StreamResponse:
        self.stats.enter(request.path)
        try:
            body = await request.json()
            outcome = await self._common(request, body, "anthropic")
            if isinstance(outcome, web.StreamResponse):
                return outcome
            answer, trickle_s = outcome
            if "max_tokens" not in body:
                return web.json_response(_error("anthropic", 400, "max_tokens: Field required"), status=400)
            text, finish = _truncate(answer, body.get("max_tokens"))
            payload = {
                "id": f"msg_{self.stats.requests}",
                "type": "message",
                "role": "assistant",
                "model": self.behaviour.served_model or body.get("model", "fake"),
                "content": [{"type": "text", "text": text}],
                "stop_reason": "max_tokens" if finish == "length" else "end_turn",
                "stop_sequence": None,
                "usage": {
                    "input_tokens": _words(body.get("messages") or [], body.get("system")),
                    "output_tokens": len(text.split()),
                },
            }
            return await self._respond(request, payload, trickle_s)
        finally:
            self.stats.leave()

    async def models(self, request: web.Request) -> web.StreamResponse:
        name = self.behaviour.served_model or "fake"
        return web.json_response({"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "fake"}]})

    async def get_stats(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.stats.to_dict())

    async def post_control(self, request: web.Request) -> web.StreamResponse:
        try:
            self.configure(**(await request.json()))
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        behaviour = asdict(self.behaviour)
        behaviour.pop("api_key")
        return web.json_response(behaviour)

    async def post_reset(self, request: web.Request) -> web.StreamResponse:
        latency = self.behaviour.latency_ms
        self.reset()
        self.behaviour.latency_ms = latency
        return web.json_response({"ok": True})

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self.chat_completions)
        app.router.add_post("/v1/messages", self.messages)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/_stats", self.get_stats)
        app.router.add_post("/_control", self.post_control)
        app.router.add_post("/_reset", self.post_reset)
        return app

    # ---- lifecycle ----

    async def _start_site(self) -> None:
        # handler_cancellation: a hung request ends when its client disconnects (counted correctly).
        self._runner = web.AppRunner(self.app(), handler_cancellation=True, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        site = web.SockSite(self._runner, sock, backlog=4096)
        await site.start()

    async def serve(self, *, handle_signals: bool = False, on_ready: Callable[[], None] | None = None) -> None:
        """Serve until ``stop()`` (or SIGTERM/SIGINT with ``handle_signals``)."""
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._loop.add_signal_handler(sig, self._stopped.set)
        await self._start_site()
        try:
            if on_ready is not None:
                on_ready()
            await self._stopped.wait()
        finally:
            assert self._runner is not None
            await self._runner.cleanup()

    def start(self) -> FakeLLMServer:
        """Serve from a daemon thread with its own event loop; returns once it accepts connections."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self.serve(on_ready=ready.set))
            except BaseException as exc:  # start-up failures go to the caller
                failure.append(exc)
                ready.set()

        self._thread = threading.Thread(target=run, name="fake-llm-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(10)
            self._thread = None


def _truncate(text: str, max_tokens: Any) -> tuple[str, str]:
    words = text.split(" ")
    if isinstance(max_tokens, int) and len(words) > max_tokens:
        return " ".join(words[:max_tokens]), "length"
    return text, "stop"


def _error(kind: str, status: int, message: str) -> dict[str, Any]:
    if kind == "anthropic":
        names = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                 404: "not_found_error", 429: "rate_limit_error", 529: "overloaded_error"}
        return {"type": "error", "error": {"type": names.get(status, "api_error"), "message": message}}
    codes = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}
    return {"error": {"message": message, "type": "invalid_request_error" if status < 500 else "server_error",
                      "param": None, "code": codes.get(status)}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on start)")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--api-key", default=None, help="require this key (else any key is accepted)")
    parser.add_argument("--per-connection-rps", type=float, default=0.0,
                        help="answer each connection at most this often per second (a per-client cap; 0: none)")
    args = parser.parse_args(argv)
    server = FakeLLMServer(host=args.host, port=args.port, latency_ms=args.latency_ms, api_key=args.api_key,
                           per_connection_rps=args.per_connection_rps)
    asyncio.run(server.serve(handle_signals=True, on_ready=lambda: print(f"listening on {server.base_url}", flush=True)))


if __name__ == "__main__":
    main()
