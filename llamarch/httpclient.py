"""A small HTTP client for JSON and server-sent events, on the standard library.

One connection per request (no pool whose stale connections fail later), separate
connect and read timeouts, and bounded retries with exponential backoff and jitter for
what is worth retrying: refused or reset connections, timeouts, 408/429/5xx (honouring
Retry-After). Every failure becomes one `BackendError` line naming the server; secrets
(the API key) never appear in messages.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import random
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import BackendError

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_JSON_BYTES = 64 << 20  # a reply larger than this is not an API answer
MAX_ERROR_BYTES = 64 << 10


class HTTPStatusError(BackendError):
    """The server answered with an error status; `detail` is its own message."""

    def __init__(self, url: str, status: int, detail: str):
        self.url, self.status, self.detail = url, status, detail
        reason = http.client.responses.get(status, "")
        super().__init__(f"{url} answered {status} {reason}: {detail}".replace(" :", ":"))


class StreamCutError(BackendError):
    """The connection ended before the reply was complete."""


class RequestCancelled(Exception):
    """The caller's cancel event was set while the request waited or was sent."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before trying a failed request again."""

    retries: int = 3  # attempts after the first
    base_s: float = 0.5  # the first backoff ceiling; it doubles per attempt
    cap_s: float = 30.0  # no wait is longer, Retry-After included

    def delay(self, attempt: int, retry_after: float | None = None, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number `attempt` (1-based).

        The server's Retry-After when it gave one, else "equal jitter": half the
        exponential ceiling plus a random part of the other half, so clients that failed
        together do not come back together.
        """
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.cap_s)
        ceiling = min(self.cap_s, self.base_s * 2 ** (attempt - 1))
        return ceiling / 2 + rand() * ceiling / 2


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_detail(body: bytes) -> str:
    """The server's own error message from an error body (OpenAI, FastAPI or plain text), on one line."""
    message = _error_message(body)
    line = " ".join(message.split())
    return line if len(line) <= 500 else line[:500] + "…"


def _error_message(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:300] or "(empty body)"
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"]
        if isinstance(err, str):
            return err
        detail = data.get("detail")
        if isinstance(detail, list):  # FastAPI validation errors
            return "; ".join(
                f"{'.'.join(str(p) for p in d.get('loc', ()))}: {d.get('msg', '')}" if isinstance(d, dict) else str(d)
                for d in detail
            )
        if detail is not None:
            return str(detail)
        if isinstance(data.get("message"), str):
            return data["message"]
    return text[:300]


def iter_sse(lines: Iterator[bytes]) -> Iterator[str]:
    """The data payloads of a server-sent event stream (multi-line data joined with newlines)."""
    data: list[str] = []
    for raw in lines:
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue  # a comment (keep-alive ping)
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


class Reply:
    """A 2xx answer: read it as JSON or as lines; closing it closes the connection."""

    def __init__(
        self, client: HttpClient, url: str, conn: http.client.HTTPConnection, response: http.client.HTTPResponse
    ):
        self._client, self.url, self._conn, self._response = client, url, conn, response
        self.status = response.status
        self.headers = response.headers

    def json(self) -> Any:
        try:
            body = self._response.read(MAX_JSON_BYTES + 1)
        except (http.client.HTTPException, OSError) as e:
            raise StreamCutError(f"the reply from {self.url} was cut: {self._client.describe(e)}") from None
        finally:
            self.close()
        if len(body) > MAX_JSON_BYTES:
            raise BackendError(f"malformed response from {self.url}: larger than {MAX_JSON_BYTES >> 20} MiB")
        try:
            return json.loads(body)
        except ValueError:
            snippet = self._client.scrub(" ".join(body.decode("utf-8", "replace").split())[:120])
            raise BackendError(f"malformed response from {self.url}: not JSON ({snippet!r})") from None

    def lines(self) -> Iterator[bytes]:
        """The body line by line; a connection that drops mid-body raises StreamCutError."""
        while True:
            try:
                line = self._response.readline(1 << 24)
            except (http.client.HTTPException, OSError, ValueError) as e:
                raise StreamCutError(f"the connection to {self.url} broke: {self._client.describe(e)}") from None
            if not line:
                return
            yield line

    def close(self) -> None:
        try:
            self._response.close()
        finally:
            self._conn.close()

    def __enter__(self) -> Reply:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HttpClient:
    """Requests to one server: `base_url` is its API root, e.g. http://host:8000/v1."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: dict[str, str] | None = None,
        timeout: float = 600.0,
        connect_timeout: float = 10.0,
        retry: RetryPolicy = RetryPolicy(),
        secrets: Sequence[str] = (),
        sleep: Callable[[float], None] = time.sleep,
    ):
        parts = urllib.parse.urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BackendError(f"{base_url!r} is not an http:// or https:// server URL (e.g. http://127.0.0.1:8080/v1)")
        if parts.username or parts.password:
            raise BackendError("put the API key in --api-key or LLAMARCH_OPENAI_API_KEY, not in the server URL")
        self.scheme, self.host = parts.scheme, parts.hostname
        try:
            self.port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise BackendError(f"{base_url!r} has a bad port number") from None
        self.prefix = parts.path.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.origin = f"{self.scheme}://{host}:{self.port}"
        self.base_url = self.origin + self.prefix
        self.headers = {"Accept": "application/json, text/event-stream", "User-Agent": "llamarch", **(headers or {})}
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self.retry = retry
        self._secrets = [s for s in secrets if s]
        self._sleep = sleep

    # --- messages -------------------------------------------------------------------

    def scrub(self, text: str) -> str:
        """`text` with every secret replaced by ***."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def describe(self, e: BaseException) -> str:
        """A short human description of a transport error."""
        if isinstance(e, ConnectionRefusedError):
            return "connection refused (is the server running, and on this port?)"
        if isinstance(e, socket.gaierror):
            return f"cannot resolve host {self.host!r}"
        if isinstance(e, (socket.timeout, TimeoutError)):
            return "timed out"
        if isinstance(e, http.client.RemoteDisconnected):
            return "the server closed the connection without answering"
        if isinstance(e, http.client.IncompleteRead):
            return "the server closed the connection mid-reply"
        if isinstance(e, ssl.SSLError):
            return f"TLS error: {e.reason or e}"
        return self.scrub(f"{type(e).__name__}: {e}".rstrip(": "))

    def url(self, path: str, root: bool = False) -> str:
        return (self.origin if root else self.base_url) + path

    # --- requests -------------------------------------------------------------------

    def _connect(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection
        if self.scheme == "https":
            conn = http.client.HTTPSConnection(
                self.host, self.port, timeout=self.connect_timeout, context=ssl.create_default_context()
            )
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.connect_timeout)
        conn.connect()
        assert conn.sock is not None
        conn.sock.settimeout(self.timeout)
        return conn

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        root: bool = False,
        cancel: threading.Event | None = None,
        retry: bool = True,
    ) -> Reply:
        """Send a request (body as JSON) and return the 2xx Reply, retrying what is worth it.

        Raises HTTPStatusError for an error status, BackendError for a server that cannot be
        reached, RequestCancelled when `cancel` is set before an answer arrives.
        """
        url = self.url(path, root)
        target = ("" if root else self.prefix) + path
        payload = None if body is None else json.dumps(body).encode("utf-8")
        headers = dict(self.headers)
        if payload is not None:
            headers["Content-Type"] = "application/json"
        attempt = 0
        while True:
            if cancel is not None and cancel.is_set():
                raise RequestCancelled()
            retry_after: float | None = None
            try:
                conn = self._connect()
            except (OSError, http.client.HTTPException) as e:
                failure = f"cannot connect to {url}: {self.describe(e)}"
                retriable = not isinstance(e, ssl.SSLError)
            else:
                try:
                    conn.request(method, target, body=payload, headers=headers)
                    response = conn.getresponse()
                except (OSError, http.client.HTTPException) as e:
                    conn.close()
                    failure = f"no answer from {url}: {self.describe(e)}"
                    retriable = not isinstance(e, ssl.SSLError)
                else:
                    if 200 <= response.status < 300:
                        return Reply(self, url, conn, response)
                    try:
                        detail = error_detail(response.read(MAX_ERROR_BYTES))
                    except (OSError, http.client.HTTPException):
                        detail = "(the error body was cut)"
                    finally:
                        conn.close()
                    error = HTTPStatusError(url, response.status, self.scrub(detail))
                    # A request the server's validation rejected fails the same way every time,
                    # whatever status it chose (llama-cpp-python answers 500).
                    rejected = "validation error" in detail.lower()
                    if not retry or response.status not in RETRY_STATUSES or rejected or attempt >= self.retry.retries:
                        raise error
                    failure, retriable = str(error), True
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if not retry or not retriable or attempt >= self.retry.retries:
                tries = f" (after {attempt + 1} tries)" if attempt else ""
                raise BackendError(failure + tries)
            attempt += 1
            wait = self.retry.delay(attempt, retry_after)
            if cancel is not None:
                if cancel.wait(wait):
                    raise RequestCancelled()
            else:
                self._sleep(wait)

    def get_json(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).json()

    def post_json(self, path: str, body: Any, **kwargs: Any) -> Any:
        return self.request("POST", path, body, **kwargs).json()
