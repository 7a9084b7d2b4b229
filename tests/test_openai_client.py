"""The openai backend's client logic: retries, errors, SSE parsing and feature fallbacks.

Misbehaving servers (429s, cut streams, garbage, stalls) cannot be made to order from a
real engine, so these tests script the HTTP side with a small stdlib server; the tests
against real engines are in test_openai_backend.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from llamarch.backends.base import GenerationOptions, collect
from llamarch.backends.openai import (
    OpenAIBackend,
    RemoteContextOverflowError,
    context_overflow,
    normalize_base_url,
    parse_spec,
)
from llamarch.errors import BackendError
from llamarch.httpclient import RetryPolicy, StreamCutError, error_detail, iter_sse, parse_retry_after
from openai_servers import free_port

Step = Callable[[BaseHTTPRequestHandler], None]


# --- pure logic ---------------------------------------------------------------------------


def test_backoff_grows_with_jitter_and_is_capped():
    policy = RetryPolicy(retries=5, base_s=0.5, cap_s=4.0)
    assert policy.delay(1, rand=lambda: 0.0) == 0.25 and policy.delay(1, rand=lambda: 1.0) == 0.5
    assert policy.delay(3, rand=lambda: 0.0) == 1.0 and policy.delay(3, rand=lambda: 1.0) == 2.0
    assert policy.delay(10, rand=lambda: 1.0) == 4.0  # capped
    assert policy.delay(1, retry_after=2.5) == 2.5
    assert policy.delay(1, retry_after=600) == 4.0  # a server's Retry-After is capped too


def test_retry_after_header():
    assert parse_retry_after("3") == 3.0 and parse_retry_after("-2") == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    in_ten = parse_retry_after(formatdate(time.time() + 10, usegmt=True))
    assert in_ten is not None and 8 <= in_ten <= 11


def test_error_detail_reads_every_common_error_shape():
    assert error_detail(b'{"error": {"message": "bad temperature", "type": "x"}}') == "bad temperature"
    assert error_detail(b'{"detail": "Invalid API key"}') == "Invalid API key"
    assert error_detail(b'{"detail": [{"loc": ["body", "top_k"], "msg": "extra"}]}') == "body.top_k: extra"
    assert (
        error_detail(b"<html>\n<body>502 Bad Gateway</body>\n</html>") == "<html> <body>502 Bad Gateway</body> </html>"
    )
    assert "\n" not in error_detail(json.dumps({"error": {"message": "line one\n  File x\nline3"}}).encode())


def test_sse_parsing():
    lines = [
        b": ping\n",
        b'data: {"a": 1}\n',
        b"\n",
        b"event: x\n",
        b"data: one\n",
        b"data: two\n",
        b"\n",
        b"data:[DONE]\r\n",
    ]
    assert list(iter_sse(iter(lines))) == ['{"a": 1}', "one\ntwo", "[DONE]"]


def test_model_specs_and_urls():
    assert parse_spec("openai:qwen2.5:32b@http://gpu:8000/v1") == ("qwen2.5:32b", "http://gpu:8000/v1")
    assert parse_spec("openai:Qwen/Qwen2.5-72B@https://h/v1") == ("Qwen/Qwen2.5-72B", "https://h/v1")
    assert parse_spec("openai:@http://h:1/v1") == ("", "http://h:1/v1")
    assert parse_spec("openai:gpt-x") == ("gpt-x", None)
    assert normalize_base_url("http://h:8000") == "http://h:8000/v1"
    assert normalize_base_url("http://h:8000/v1/") == "http://h:8000/v1"
    assert normalize_base_url("http://h/api/v1") == "http://h/api/v1"


@pytest.mark.parametrize(
    "message, prompt, n_ctx",
    [
        (
            "This model's maximum context length is 2048 tokens. However, you requested 3000 tokens "
            "(2900 in the messages, 100 in the completion).",
            2900,
            2048,
        ),  # vLLM
        (
            "This model's maximum context length is 512 tokens, however you requested 617 tokens "
            "(601 in your prompt; 16 for the completion).",
            601,
            512,
        ),  # llama-cpp-python
        (
            "the request exceeds the available context size: request (5000 tokens) exceeds the available "
            "context size (4096 tokens), try increasing it",
            5000,
            4096,
        ),  # llama-server
        ("prompt is 1101 tokens but the context window is 1024 tokens: shorten the prompt", 1101, 1024),  # ours
    ],
)
def test_context_overflow_messages_of_known_servers(message: str, prompt: int, n_ctx: int):
    error = context_overflow("http://h/v1", message)
    assert isinstance(error, RemoteContextOverflowError)
    assert (error.prompt_tokens, error.n_ctx) == (prompt, n_ctx)
    assert context_overflow("http://h/v1", "temperature must be positive") is None


# --- a scripted server ----------------------------------------------------------------------


class Scripted:
    """An HTTP server that answers requests with the next scripted step, recording them."""

    def __init__(self, steps: list[Step]):
        self.steps, self.requests = list(steps), []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                scripted.requests.append((self.command, self.path, body, dict(self.headers)))
                step = scripted.steps.pop(0) if scripted.steps else reply(500, {"error": {"message": "script over"}})
                step(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted() -> Iterator[Callable[..., Scripted]]:
    servers: list[Scripted] = []

    def start(*steps: Step) -> Scripted:
        servers.append(Scripted(list(steps)))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def reply(status: int, body: Any, headers: dict[str, str] | None = None, raw: bytes | None = None) -> Step:
    def step(h: BaseHTTPRequestHandler) -> None:
        data = raw if raw is not None else json.dumps(body).encode()
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    return step


def chat_event(text: str | None = None, finish: str | None = None) -> dict[str, Any]:
    delta = {"content": text} if text is not None else {}
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def stream(events: list[Any], chunked_cut: bool = False) -> Step:
    """An SSE answer; `chunked_cut` breaks the chunked encoding mid-body, as a dying server does."""

    def step(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        if chunked_cut:
            h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        for e in events:
            data = b"data: " + (e.encode() if isinstance(e, str) else json.dumps(e).encode()) + b"\n\n"
            h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked_cut else data)
        if chunked_cut:
            h.wfile.write(b'40\r\ndata: {"choi')  # a chunk that never completes
        h.close_connection = True

    return step


def complete(text: str = "Hello there") -> Step:
    """A well-formed streamed chat reply of `text`, in two pieces."""
    usage = {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2}}
    half = len(text) // 2
    return stream([chat_event(text[:half]), chat_event(text[half:]), chat_event(None, "stop"), usage, "[DONE]"])


def backend(url: str, **kwargs: Any) -> OpenAIBackend:
    return OpenAIBackend("m", url, probe=False, **kwargs)


MESSAGES = [{"role": "user", "content": "hi"}]


def run(b: OpenAIBackend, **options: Any) -> Any:
    return collect(b.stream(MESSAGES, GenerationOptions(**options)))


# --- retries and errors ----------------------------------------------------------------------


def test_503_and_429_are_retried_then_the_reply_comes(scripted):
    busy = {"Retry-After": "0"}
    server = scripted(
        reply(503, {"error": {"message": "loading"}}, busy),
        reply(429, {"error": {"message": "slow down"}}, busy),
        complete(),
    )
    response = run(backend(server.url, retries=3))
    assert response.text == "Hello there"
    assert (response.stats.prompt_tokens, response.stats.completion_tokens) == (7, 2)
    assert len(server.requests) == 3


def test_retries_are_bounded(scripted):
    server = scripted(*[reply(429, {"error": {"message": "rate limited"}}, {"Retry-After": "0"})] * 5)
    with pytest.raises(BackendError, match="429.*rate limited"):
        run(backend(server.url, retries=2))
    assert len(server.requests) == 3


def test_client_errors_are_not_retried(scripted):
    server = scripted(reply(400, {"error": {"message": "messages[0] is wrong"}}))
    with pytest.raises(BackendError, match=r"rejected the request \(400\): messages\[0\] is wrong"):
        run(backend(server.url))
    assert len(server.requests) == 1


def test_connection_refused_is_one_clear_line():
    b = backend(f"http://127.0.0.1:{free_port()}/v1", retries=1)
    with pytest.raises(BackendError, match=r"cannot connect to .*connection refused.*\(after 2 tries\)") as info:
        run(b)
    assert "\n" not in str(info.value)


def test_a_stalled_server_times_out(scripted):
    def stall(h: BaseHTTPRequestHandler) -> None:
        time.sleep(2)
        complete()(h)

    server = scripted(stall)
    started = time.monotonic()
    with pytest.raises(BackendError, match="timed out"):
        run(backend(server.url, timeout=0.3, retries=0))
    assert time.monotonic() - started < 1.5


def test_a_stream_cut_mid_reply_raises_and_gives_no_stats(scripted):
    server = scripted(
        stream([chat_event("Partial "), chat_event("reply")], chunked_cut=True),
        stream([chat_event("Partial "), chat_event("reply")]),
    )
    for _ in range(2):  # broken chunked encoding, then a clean close before the finish
        chunks = []
        with pytest.raises(StreamCutError, match="incomplete"):
            for chunk in backend(server.url).stream(MESSAGES, GenerationOptions()):
                chunks.append(chunk)
        assert "".join(c.text for c in chunks) == "Partial reply"
        assert all(c.stats is None for c in chunks)


def test_malformed_answers_are_clear_errors(scripted):
    server = scripted(stream(["{not json"]), reply(200, None, raw=b"<html>oops</html>"), stream([{"choices": "many"}]))
    with pytest.raises(BackendError, match="malformed response.*not JSON"):
        run(backend(server.url))
    with pytest.raises(BackendError, match="malformed response.*not JSON.*oops"):
        OpenAIBackend("", server.url)  # the model list
    with pytest.raises(BackendError, match="malformed response.*'choices' is not a list"):
        run(backend(server.url))


def test_an_error_event_mid_stream_is_raised(scripted):
    server = scripted(stream([chat_event("Hi"), {"error": {"message": "CUDA out of memory"}}]))
    with pytest.raises(BackendError, match="failed mid-reply: CUDA out of memory"):
        run(backend(server.url))


def test_the_api_key_is_sent_but_never_shown(scripted):
    key = "sk-very-secret-123"
    server = scripted(
        reply(401, {"error": {"message": f"bad key {key}"}}),
        reply(500, {"error": {"message": f"echo: Bearer {key}"}}, {"Retry-After": "0"}),
    )
    b = backend(server.url, api_key=key, retries=0)
    for _ in range(2):
        with pytest.raises(BackendError) as info:
            run(b)
        assert key not in str(info.value)
    assert server.requests[0][3]["Authorization"] == f"Bearer {key}"
    assert key not in repr(b)


def test_unsupported_features_fall_back_and_are_remembered(scripted):
    server = scripted(
        reply(422, {"detail": [{"loc": ["body", "response_format", "type"], "msg": "should be 'json_object'"}]}),
        reply(400, {"error": {"message": "Unrecognized request argument supplied: top_k"}}),
        complete('{"a": 1}'),
        complete('{"a": 2}'),
    )
    b = backend(server.url)
    schema = {"type": "object"}
    assert run(b, json_schema=schema).text == '{"a": 1}'
    bodies = [r[2] for r in server.requests]
    assert bodies[0]["response_format"]["type"] == "json_schema" and "top_k" in bodies[0]
    assert bodies[1]["response_format"] == {"type": "json_object", "schema": schema}
    assert "top_k" not in bodies[2] and "min_p" not in bodies[2]
    run(b, json_schema=schema)  # the next request goes straight to the form that works
    assert bodies[2] == server.requests[3][2]


def test_cancel_before_the_answer_ends_the_reply_as_cancelled(scripted):
    server = scripted(reply(503, {"error": {"message": "busy"}}, {"Retry-After": "5"}))
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    started = time.monotonic()
    response = collect(backend(server.url).stream(MESSAGES, GenerationOptions(cancel=cancel)))
    assert response.stats.finish_reason == "cancelled" and response.text == ""
    assert time.monotonic() - started < 3


def test_a_failure_in_a_batch_stops_it_and_is_raised(scripted):
    server = scripted(complete(), reply(400, {"error": {"message": "prompt 2 is bad"}}), complete(), complete())
    b = backend(server.url)
    got = []
    with pytest.raises(BackendError, match="prompt 2 is bad"):
        for i, _chunk in b.stream_batch([MESSAGES] * 4, GenerationOptions(), parallel=1):
            got.append(i)
    assert 0 in got and len(server.requests) == 2
