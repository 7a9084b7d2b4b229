"""`llamarch serve`: an OpenAI-compatible HTTP server for one model, on the standard library.

Routes (with or without the /v1 prefix): GET /v1/models, POST /v1/chat/completions and
/v1/completions (streamed as server-sent events when asked), POST /tokenize and
/detokenize (llama-server's shapes), GET /health. One thread per connection; the model
runs one generation at a time, in arrival order, with a bounded waiting line (503 past it).
A bad request gets a 4xx with an OpenAI error body and the server goes on serving; a
client that goes away mid-reply stops its generation.
"""

from __future__ import annotations

import contextlib
import errno
import hmac
import inspect
import itertools
import json
import os
import select
import socket
import sys
import threading
import time
import traceback
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..backends.base import Backend, Chunk, Stats
from ..errors import ContextOverflowError, LlamarchError
from .protocol import CHAT, COMPLETION, APIError, ParsedRequest, Reply, finish_reason, model_list, parse_request

MAX_BODY = 8 << 20  # bytes of a request body
IDLE_TIMEOUT_S = 300  # a connection silent for this long is closed
ROUTES = {  # path (without /v1) -> (method, handler name)
    "/models": ("GET", "models"),
    "/chat/completions": ("POST", "chat"),
    "/completions": ("POST", "completions"),
    "/tokenize": ("POST", "tokenize"),
    "/detokenize": ("POST", "detokenize"),
    "/health": ("GET", "health"),
}
PUBLIC_ROUTES = {"health"}  # answered without the API key


class ClientGone(Exception):
    """The client closed its connection; its generation is stopped."""


class ModelService:
    """The served model: one generation at a time, at most `max_waiting` requests in line."""

    def __init__(self, backend: Backend, model_id: str, max_waiting: int = 64):
        self.backend, self.model_id, self.max_waiting = backend, model_id, max_waiting
        self.created = int(time.time())
        self._model_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._queued = 0  # requests running or waiting for the model
        params = inspect.signature(backend.tokenize).parameters
        self._tokenize_takes_bos = "add_bos" in params

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the model; 503 (retry later) when too many requests already wait for it."""
        with self._count_lock:
            if self._queued > self.max_waiting:
                raise APIError(
                    503,
                    f"the server is busy ({self._queued - 1} requests are waiting): retry later",
                    type="server_error",
                    code="overloaded",
                    headers={"Retry-After": "1"},
                )
            self._queued += 1
        try:
            with self._model_lock:
                yield
        finally:
            with self._count_lock:
                self._queued -= 1

    def tokenize(self, text: str, special: bool, add_special: bool) -> list[int]:
        if add_special and self._tokenize_takes_bos:
            return self.backend.tokenize(text, special=special, add_bos=True)  # type: ignore[call-arg]
        return self.backend.tokenize(text, special=special)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "llamarch"
    sys_version = ""
    timeout = IDLE_TIMEOUT_S
    server: OpenAIServer

    # --- dispatch ---------------------------------------------------------------------

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def _handle(self, method: str) -> None:
        self._started = time.perf_counter()
        self._status, self._note, self._headers_sent, self._body_read = 0, "", False, False
        path = urllib.parse.urlsplit(self.path).path
        try:
            route = self._route(method, path)
            self._authorize(route)
            body = self._read_json() if method == "POST" else None
            getattr(self, "_" + route)(body)
        except APIError as e:
            self._fail(e)
        except ClientGone:
            self.close_connection = True
            self._note = "client went away"
        except Exception as e:  # a bug: answer 500 and keep serving
            self._note = f"{type(e).__name__}: {e}"
            if os.environ.get("LLAMARCH_DEBUG"):
                traceback.print_exc()
            self._fail(APIError(500, f"internal error: {type(e).__name__}: {e}", type="server_error"))
        finally:
            self.server.log(
                f'{self.client_address[0]} "{method} {path}" {self._status} '
                f"{time.perf_counter() - self._started:.2f}s {self._note}".rstrip()
            )

    def _route(self, method: str, path: str) -> str:
        bare = path.rstrip("/") or "/"
        if bare.startswith("/v1/"):
            bare = bare[3:]
        if bare not in ROUTES:
            raise APIError(
                404,
                f"no route {path}: this server has /v1/models, /v1/chat/completions, "
                "/v1/completions, /tokenize, /detokenize, /health",
                code="not_found",
            )
        wanted, name = ROUTES[bare]
        if method != wanted:
            raise APIError(
                405, f"{path} takes {wanted}, not {method}", code="method_not_allowed", headers={"Allow": wanted}
            )
        return name

    def _authorize(self, route: str) -> None:
        key = self.server.api_key
        if not key or route in PUBLIC_ROUTES:
            return
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.encode()):
            raise APIError(
                401,
                "invalid or missing API key: send 'Authorization: Bearer <key>'",
                code="invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def _read_json(self) -> Any:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise APIError(411, "send the body with a Content-Length", code="length_required")
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            raise APIError(411, "send the body with a Content-Length", code="length_required")
        try:
            length = int(length_header)
        except ValueError:
            raise APIError(400, f"bad Content-Length {length_header!r}") from None
        if not 0 <= length <= MAX_BODY:
            raise APIError(413, f"the request body is larger than {MAX_BODY >> 20} MiB", code="request_too_large")
        raw = self.rfile.read(length)
        if len(raw) < length:
            raise ClientGone()
        self._body_read = True
        try:
            return json.loads(raw)
        except ValueError as e:
            raise APIError(400, f"malformed JSON in the request body: {e}", code="invalid_json") from None

    # --- replies ----------------------------------------------------------------------

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        self._status = int(code) if str(code).isdigit() else self._status

    def log_message(self, format: str, *args: Any) -> None:
        self.server.log(f"{self.client_address[0]} {format % args}")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors the base class finds (bad request line, oversized headers) in the OpenAI shape."""
        self.close_connection = True
        self._headers_sent = False
        text = message or self.responses.get(code, ("error",))[0]
        self.log_message("%s %s", code, text)
        self._fail(APIError(code, text))

    def _fail(self, error: APIError) -> None:
        if getattr(self, "_headers_sent", False):  # mid-stream: nothing more can be said in HTTP
            self.close_connection = True
            return
        if not getattr(self, "_body_read", False):
            self.close_connection = True  # an unread body would be taken for the next request
        self._note = getattr(self, "_note", "") or error.message
        try:
            self._send_json(error.status, error.body(), error.headers)
        except OSError:
            self.close_connection = True

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self._headers_sent = True
        self.wfile.write(data)

    def _start_events(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Accel-Buffering", "no")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._headers_sent = True

    def _send_event(self, obj: Any) -> None:
        data = b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj, ensure_ascii=False).encode("utf-8"))
        self._send_chunk(data + b"\n\n")

    def _send_chunk(self, data: bytes) -> None:
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        except OSError:
            raise ClientGone() from None

    def _client_gone(self) -> bool:
        """True if the client has closed its side of the connection."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    # --- routes -----------------------------------------------------------------------

    def _health(self, body: Any) -> None:
        self._send_json(200, {"status": "ok"})

    def _models(self, body: Any) -> None:
        svc = self.server.service
        self._send_json(200, model_list(svc.model_id, svc.backend.n_ctx, svc.backend.name, svc.created))

    def _tokenize(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise APIError(400, "the request body must be a JSON object", code="invalid_json")
        text = body.get("content", body.get("prompt"))
        if not isinstance(text, str):
            raise APIError(400, "'content' must be a string", param="content")
        special = bool(body.get("parse_special", True))
        add_special = bool(body.get("add_special", body.get("add_special_tokens", False)))
        tokens = self._call_backend(lambda: self.server.service.tokenize(text, special, add_special))
        self._send_json(200, {"tokens": tokens, "count": len(tokens)})

    def _detokenize(self, body: Any) -> None:
        tokens = body.get("tokens") if isinstance(body, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in tokens):
            raise APIError(400, "'tokens' must be a list of integers", param="tokens")
        text = self._call_backend(lambda: self.server.service.backend.detokenize(tokens))
        self._send_json(200, {"content": text})

    def _call_backend(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except LlamarchError as e:
            raise APIError(400, str(e)) from None

    def _chat(self, body: Any) -> None:
        self._generate(parse_request(CHAT, body))

    def _completions(self, body: Any) -> None:
        self._generate(parse_request(COMPLETION, body))

    def _generate(self, req: ParsedRequest) -> None:
        svc = self.server.service
        reply = Reply(req.kind, svc.model_id)
        with svc.turn():
            if self._client_gone():
                raise ClientGone()
            chunks = svc.backend.stream(req.prompt, req.options)
            try:
                first = self._first_chunk(chunks, req)
                if req.stream:
                    self._stream_reply(reply, req, itertools.chain([first], chunks))
                else:
                    self._whole_reply(reply, req, itertools.chain([first], chunks))
            finally:
                req.options.cancel.set()  # type: ignore[union-attr]
                chunks.close()  # type: ignore[attr-defined]

    def _first_chunk(self, chunks: Iterator[Chunk], req: ParsedRequest) -> Chunk:
        """Start generating; what fails before the first token is the request's fault (4xx)."""
        param = "messages" if req.kind == CHAT else "prompt"
        try:
            return next(chunks)
        except ContextOverflowError as e:
            raise APIError(400, str(e), code="context_length_exceeded", param=param) from None
        except LlamarchError as e:
            raise APIError(400, str(e), param=param) from None
        except Exception as e:
            if req.options.json_schema is not None:
                raise APIError(
                    400, f"the response_format schema cannot be used: {type(e).__name__}: {e}", param="response_format"
                ) from None
            raise

    def _whole_reply(self, reply: Reply, req: ParsedRequest, chunks: Iterator[Chunk]) -> None:
        parts: list[str] = []
        stats: Stats | None = None
        for n, chunk in enumerate(chunks):
            parts.append(chunk.text)
            stats = chunk.stats or stats
            if n % 32 == 31 and self._client_gone():
                raise ClientGone()
        assert stats is not None
        self._note = f"{stats.completion_tokens} tokens"
        self._send_json(200, reply.whole("".join(parts), stats))

    def _stream_reply(self, reply: Reply, req: ParsedRequest, chunks: Iterator[Chunk]) -> None:
        self._start_events()
        chat = req.kind == CHAT
        if chat:
            self._send_event(reply.event("", first=True))
        stats: Stats | None = None
        try:
            for chunk in chunks:
                if chunk.text:
                    self._send_event(reply.event(chunk.text))
                stats = chunk.stats or stats
        except (ClientGone, KeyboardInterrupt):
            raise
        except Exception as e:  # the engine failed mid-reply: say so, and never send [DONE]
            self._note = f"failed mid-reply: {e}"
            self._send_event(APIError(500, f"generation failed: {e}", type="server_error").body())
            self._send_chunk(b"")
            self.close_connection = True
            return
        assert stats is not None
        self._send_event(reply.event(None if chat else "", finish=finish_reason(stats)))
        if req.include_usage:
            self._send_event(reply.usage_event(stats))
        self._send_event(b"[DONE]")
        self._send_chunk(b"")
        self._note = f"{stats.completion_tokens} tokens, streamed"


class OpenAIServer(ThreadingHTTPServer):
    """The listening server; it answers 503 until a model is attached with `attach`."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, host: str, port: int, api_key: str | None = None, log: Callable[[str], None] | None = None):
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.api_key = api_key or None
        self._service: ModelService | None = None
        self._log = log
        super().__init__((host, port), Handler)

    def attach(self, backend: Backend, model_id: str, max_waiting: int = 64) -> None:
        self._service = ModelService(backend, model_id, max_waiting)

    @property
    def service(self) -> ModelService:
        if self._service is None:
            raise APIError(
                503,
                "the model is still loading: retry shortly",
                type="server_error",
                code="loading",
                headers={"Retry-After": "1"},
            )
        return self._service

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = f"[{host}]" if ":" in str(host) else host
        return f"http://{host}:{port}/v1"

    def log(self, line: str) -> None:
        if self._log is not None:
            self._log(line)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """An error outside any handler (a socket reset mid-header): one line, keep serving."""
        e = sys.exc_info()[1]
        self.log(f"{client_address[0]} connection error: {type(e).__name__}: {e}")


def stderr_log(line: str) -> None:
    print(time.strftime("%H:%M:%S ") + line, file=sys.stderr, flush=True)


def bind(
    host: str = "127.0.0.1",
    port: int = 8080,
    api_key: str | None = None,
    log: Callable[[str], None] | None = stderr_log,
) -> OpenAIServer:
    """Listen on host:port (0 picks a free port) before any model is loaded, so a busy port fails fast."""
    try:
        return OpenAIServer(host, port, api_key, log)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise LlamarchError(f"port {port} on {host} is already in use: choose another with --port") from None
        if e.errno in (errno.EACCES, errno.EPERM):
            raise LlamarchError(f"no permission to listen on {host}:{port}: use a port above 1023") from None
        raise LlamarchError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


def make_server(
    backend: Backend,
    model_id: str,
    host: str = "127.0.0.1",
    port: int = 8080,
    api_key: str | None = None,
    max_waiting: int = 64,
    log: Callable[[str], None] | None = stderr_log,
) -> OpenAIServer:
    """A server for `backend`; call `serve_forever()` to run it (on a thread, for embedding)."""
    server = bind(host, port, api_key, log)
    server.attach(backend, model_id, max_waiting)
    return server
