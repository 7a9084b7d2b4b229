"""Models behind an OpenAI-compatible HTTP server: vLLM, llama-server, Ollama, LM Studio, `llamarch serve`.

Select it with `-m openai:MODEL@http://HOST:PORT/v1` (MODEL may be empty: the server's
first model), `--backend openai` with LLAMARCH_OPENAI_BASE_URL, or a user catalog entry
with `backend = "openai"` and `base_url`. The API key comes from the `api_key` option,
the entry's `api_key_env`, LLAMARCH_OPENAI_API_KEY or OPENAI_API_KEY, and is never shown.

Every reply is streamed (SSE) so that time to first token, cancelling and cut
connections are seen as they happen; a reply cut mid-stream raises, never passes as
complete.
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import BackendError, ContextOverflowError, LlamarchError
from ..httpclient import HttpClient, HTTPStatusError, Reply, RequestCancelled, RetryPolicy, StreamCutError, iter_sse
from .base import Chunk, GenerationOptions, Prompt, Stats, seed_for
from .textstream import StopMatcher

SPEC_PREFIX = "openai:"
API_KEY_ENVS = ("LLAMARCH_OPENAI_API_KEY", "OPENAI_API_KEY")
BASE_URL_ENVS = ("LLAMARCH_OPENAI_BASE_URL", "OPENAI_BASE_URL")
DEFAULT_N_CTX = 4096  # used when the server does not say
DEFAULT_PARALLEL = 4
# Sampling settings outside OpenAI's API that llama.cpp, vLLM, Ollama and LM Studio accept;
# sent until a server rejects them.
EXTRA_PARAMS = ("top_k", "min_p", "repeat_penalty", "repetition_penalty")


class RemoteContextOverflowError(ContextOverflowError):
    def __init__(self, url: str, prompt_tokens: int, n_ctx: int, requested: int | None = None):
        LlamarchError.__init__(
            self,
            f"{url}: the request needs {requested or prompt_tokens} tokens ({prompt_tokens} in the prompt) but the "
            f"server's context window is {n_ctx} tokens: shorten the prompt or lower max_tokens",
        )
        self.prompt_tokens, self.n_ctx = prompt_tokens, n_ctx


# What servers say when a request does not fit their context window.
_OVERFLOW_PATTERNS = (
    # vLLM, llama-cpp-python:
    # "maximum context length is M tokens. However, you requested T tokens (P in the messages, ..."
    re.compile(
        r"maximum context length is (?P<ctx>\d+) tokens.*?"
        r"requested (?P<req>\d+) tokens \((?P<prompt>\d+) in (?:the|your)"
    ),
    re.compile(r"maximum context length is (?P<ctx>\d+) tokens.*?(?P<prompt>\d+) input tokens"),
    # llama-server: "request (P tokens) exceeds the available context size (M tokens)"
    re.compile(r"\((?P<prompt>\d+) tokens\) exceeds the available context size \((?P<ctx>\d+) tokens\)"),
    # llamarch serve
    re.compile(r"prompt is (?P<prompt>\d+) tokens but the context window is (?P<ctx>\d+) tokens"),
)


def parse_spec(spec: str) -> tuple[str, str | None]:
    """`openai:MODEL@URL` -> (MODEL, URL); `openai:MODEL` -> (MODEL, None)."""
    rest = spec[len(SPEC_PREFIX) :] if spec.startswith(SPEC_PREFIX) else spec
    for marker in ("@http://", "@https://"):
        at = rest.find(marker)
        if at >= 0:
            return rest[:at], rest[at + 1 :]
    return rest, None


def normalize_base_url(url: str) -> str:
    """A server URL given without a path gets OpenAI's `/v1` root."""
    url = url.strip().rstrip("/")
    if urllib.parse.urlsplit(url).path in ("", "/"):
        url += "/v1"
    return url


def _first(*values: Any) -> Any:
    return next((v for v in values if v not in (None, "")), None)


def context_overflow(url: str, detail: str) -> RemoteContextOverflowError | None:
    """The overflow error a server's message describes, if it describes one."""
    flat = " ".join(detail.split())
    for pattern in _OVERFLOW_PATTERNS:
        m = pattern.search(flat)
        if m:
            parts = m.groupdict()
            requested = int(parts["req"]) if parts.get("req") else None
            return RemoteContextOverflowError(url, int(parts["prompt"]), int(parts["ctx"]), requested)
    return None


def map_finish(reason: str | None) -> str:
    return "length" if reason == "length" else "stop"


class OpenAIBackend:
    """One model on an OpenAI-compatible server. Thread-safe: each request has its own connection."""

    name = "openai"
    has_chat_template = True  # the server applies the model's template

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 600.0,
        connect_timeout: float = 10.0,
        retries: int = 3,
        n_ctx: int | None = None,
        probe: bool = True,
    ):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = HttpClient(
            normalize_base_url(base_url),
            headers=headers,
            timeout=float(timeout),
            connect_timeout=float(connect_timeout),
            retry=RetryPolicy(retries=int(retries)),
            secrets=[api_key] if api_key else [],
        )
        self.base_url = self.http.base_url
        self.has_key = bool(api_key)
        self.model_name = model
        self.n_ctx = int(n_ctx or DEFAULT_N_CTX)
        self.served_models: list[str] = []
        self._send_extras = True  # top_k, min_p, ... until the server rejects them
        self._send_usage_option = True
        self._schema_style = "json_schema"  # OpenAI's; "json_object" + schema for llama-cpp-python
        self._token_route: int | None = None
        if probe:
            self._probe(explicit_n_ctx=n_ctx)

    def __repr__(self) -> str:
        return f"OpenAIBackend({self.model_name!r}, {self.base_url!r})"

    @classmethod
    def open(cls, model: str | os.PathLike[str] | None, **options: Any) -> OpenAIBackend:
        """`openai:MODEL@URL`, a catalog id whose entry has `backend = "openai"`, or a server model name."""
        if options.pop("lora_path", None):
            raise BackendError("--lora applies to local models: a remote server loads its own adapters")
        for local_only in (
            "n_threads",
            "n_gpu_layers",
            "n_batch",
            "chat_template",
            "use_chat_template",
            "seed",
            "verbose",
        ):
            options.pop(local_only, None)
        spec = os.fspath(model) if model is not None else ""
        name, url = parse_spec(spec)
        key_env = None
        if not spec.startswith(SPEC_PREFIX) and spec:
            from ..catalog import load_catalog

            entry = load_catalog().get(spec)
            if entry is not None and entry.backend == "openai":
                extra = dict(entry.extra)
                name, url = str(extra.pop("model", entry.id)), extra.pop("base_url", None)
                key_env = extra.pop("api_key_env", None)
                for key in ("timeout", "connect_timeout", "retries", "n_ctx"):
                    if key in extra:
                        options.setdefault(key, extra[key])
        url = _first(options.pop("base_url", None), url, *(os.environ.get(e) for e in BASE_URL_ENVS))
        if not url:
            raise BackendError(
                "no server URL for the openai backend: use -m openai:MODEL@http://HOST:PORT/v1 "
                "or set LLAMARCH_OPENAI_BASE_URL"
            )
        key = _first(
            options.pop("api_key", None),
            os.environ.get(key_env) if key_env else None,
            *(os.environ.get(e) for e in API_KEY_ENVS),
        )
        return cls(name, url, api_key=key, **options)

    # --- server discovery -------------------------------------------------------------

    def _probe(self, explicit_n_ctx: int | None) -> None:
        """Check that the server answers; pick its first model if none was named; learn n_ctx."""
        try:
            listing = self.http.get_json("/models")
        except HTTPStatusError as e:
            if e.status == 404 and self.model_name:
                return  # a server without a model list: generation may still work
            raise self._status_error(e) from None
        data = listing.get("data") if isinstance(listing, dict) else None
        if not isinstance(data, list):
            raise BackendError(f"malformed response from {self.base_url}/models: no model list")
        models = [m for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]
        self.served_models = [m["id"] for m in models]
        if not self.model_name:
            if not models:
                raise BackendError(f"{self.base_url} serves no models")
            self.model_name = models[0]["id"]
        info = next((m for m in models if m["id"] == self.model_name), models[0] if len(models) == 1 else None)
        if info is not None and not explicit_n_ctx:
            meta = info.get("meta") if isinstance(info.get("meta"), dict) else {}
            n_ctx = _first(info.get("max_model_len"), meta.get("n_ctx"), info.get("context_length"))
            if isinstance(n_ctx, int) and n_ctx > 0:
                self.n_ctx = n_ctx

    # --- errors -------------------------------------------------------------------------

    def _status_error(self, e: HTTPStatusError) -> LlamarchError:
        if e.status in (401, 403):
            why = "the API key was not accepted" if self.has_key else "it needs an API key"
            return BackendError(
                f"{e.url} refused the request ({e.status}): {why}: set LLAMARCH_OPENAI_API_KEY or pass --api-key"
            )
        if e.status == 404:
            served = f"; it serves {', '.join(self.served_models)}" if self.served_models else ""
            return BackendError(
                f"{e.url} answered 404 ({e.detail}): check the model name {self.model_name!r} "
                f"and that the URL is the API root (usually ending in /v1){served}"
            )
        if e.status in (400, 413, 422):
            overflow = context_overflow(e.url, e.detail)
            if overflow is not None:
                return overflow
            return BackendError(f"{e.url} rejected the request ({e.status}): {e.detail}")
        return e

    # --- requests -----------------------------------------------------------------------

    def request_body(self, prompt: Prompt, options: GenerationOptions) -> dict[str, Any]:
        """The JSON body for `prompt`: chat messages or a text completion, always streamed."""
        chat = not isinstance(prompt, str)
        body: dict[str, Any] = {"model": self.model_name, "stream": True}
        if chat:
            body["messages"] = [dict(m) for m in prompt]
        else:
            body["prompt"] = prompt
        if self._send_usage_option:
            body["stream_options"] = {"include_usage": True}
        body["temperature"] = options.temperature
        body["top_p"] = options.top_p
        if options.max_tokens is not None:
            body["max_tokens"] = options.max_tokens
        if options.seed is not None:
            body["seed"] = options.seed
        if options.stop:
            body["stop"] = list(options.stop)
        if self._send_extras:
            body["top_k"] = options.top_k
            body["min_p"] = options.min_p
            # Both names (llama.cpp's, vLLM's): llama-cpp-python's server would otherwise apply 1.1.
            body["repeat_penalty"] = body["repetition_penalty"] = options.repeat_penalty
        if options.json_schema is not None:
            schema = options.json_schema
            if self._schema_style == "json_schema":
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "response", "schema": schema, "strict": True},
                }
                if not chat:
                    body["json_schema"] = schema  # llama-server's field for /completions
            else:
                body["response_format"] = {"type": "json_object", "schema": schema}
        return body

    def _adapt(self, e: HTTPStatusError, body: dict[str, Any]) -> bool:
        """Drop a feature the server rejected; True if there is something left to try."""
        if e.status not in (400, 422, 500):  # llama-cpp-python answers its validation errors with 500
            return False
        detail = e.detail.lower()
        if (
            "response_format" in body
            and self._schema_style == "json_schema"
            and ("response_format" in detail or "json_schema" in detail)
        ):
            self._schema_style = "json_object"
            return True
        if self._send_extras and (any(p in detail for p in EXTRA_PARAMS) or "unrecognized request argument" in detail):
            self._send_extras = False
            return True
        if self._send_usage_option and "stream_options" in detail:
            self._send_usage_option = False
            return True
        return False

    def _open(self, prompt: Prompt, options: GenerationOptions) -> Reply:
        path = "/completions" if isinstance(prompt, str) else "/chat/completions"
        for _ in range(4):
            body = self.request_body(prompt, options)
            try:
                return self.http.request("POST", path, body, cancel=options.cancel)
            except HTTPStatusError as e:
                if not self._adapt(e, body):
                    raise self._status_error(e) from None
        raise BackendError(f"{self.base_url}{path} rejected every form of the request")

    def stream(self, prompt: Prompt, options: GenerationOptions) -> Iterator[Chunk]:
        t_call = time.perf_counter()
        try:
            reply = self._open(prompt, options)
        except RequestCancelled:
            yield Chunk("", stats=Stats(0, 0, 0.0, 0.0, 0.0, time.perf_counter() - t_call, "cancelled"))
            return
        with reply:
            yield from _SSEReply(reply, options, t_call, chat=not isinstance(prompt, str)).chunks()

    def stream_batch(
        self, prompts: Sequence[Prompt], options: GenerationOptions, parallel: int | None = None
    ) -> Iterator[tuple[int, Chunk]]:
        """Replies to many prompts with `parallel` requests in flight (a server batches them).

        Yields (index, chunk); each index's last chunk carries its stats. The first failure
        stops the other requests and is raised.
        """
        yield from _parallel_stream(self, list(prompts), options, max(1, parallel or DEFAULT_PARALLEL))

    # --- tokens -------------------------------------------------------------------------

    # (path, body builder, result key(s)): llama-server and vLLM at the server root, then llama-cpp-python.
    def _token_call(self, kind: str, value: Any, special: bool = False) -> Any:
        routes = {
            "tokenize": [
                (
                    "/tokenize",
                    {
                        "content": value,
                        "prompt": value,
                        "model": self.model_name,
                        "add_special": False,
                        "add_special_tokens": False,
                        "parse_special": special,
                    },
                    ("tokens",),
                ),
                ("/extras/tokenize", {"input": value, "model": self.model_name}, ("tokens",)),
            ],
            "detokenize": [
                ("/detokenize", {"tokens": value, "model": self.model_name}, ("content", "prompt")),
                ("/extras/detokenize", {"tokens": value, "model": self.model_name}, ("text",)),
            ],
        }[kind]
        order = range(len(routes)) if self._token_route is None else [self._token_route]
        for i in order:
            path, body, keys = routes[i]
            try:
                data = self.http.post_json(path, body, root=True)
            except HTTPStatusError as e:
                if e.status in (404, 405) and self._token_route is None:
                    continue
                raise self._status_error(e) from None
            found = next((data[k] for k in keys if isinstance(data, dict) and k in data), None)
            if found is None:
                raise BackendError(f"malformed response from {self.http.url(path, root=True)}: no {keys[0]!r}")
            self._token_route = i
            return found
        raise BackendError(
            f"{self.http.origin} has no /tokenize endpoint: token-level work needs a local model "
            "or a llama.cpp or vLLM server"
        )

    def tokenize(self, text: str, special: bool = False) -> list[int]:
        tokens = self._token_call("tokenize", text, special)
        return [t["id"] if isinstance(t, dict) else int(t) for t in tokens]

    def detokenize(self, tokens: Sequence[int]) -> str:
        return str(self._token_call("detokenize", [int(t) for t in tokens]))

    def close(self) -> None:
        """Nothing to free: connections close with each request."""

    def __enter__(self) -> OpenAIBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _SSEReply:
    """Turns one streamed completion into Chunks and Stats, checking that it finished."""

    def __init__(self, reply: Reply, options: GenerationOptions, t_call: float, chat: bool):
        self.reply, self.options, self.t_call, self.chat = reply, options, t_call, chat
        self.stops = StopMatcher(options.stop)
        self.finish: str | None = None
        self.usage: dict[str, Any] = {}
        self.timings: dict[str, Any] = {}
        self.events = 0
        self.pieces = 0
        self.chars = 0
        self.t_first: float | None = None
        self.t_last: float | None = None

    def _event(self, data: str) -> str:
        """Record one event; return its text."""
        self.events += 1
        try:
            event = json.loads(data)
        except ValueError:
            raise BackendError(
                f"malformed response from {self.reply.url}: an event is not JSON ({data[:80]!r})"
            ) from None
        if not isinstance(event, dict):
            raise BackendError(f"malformed response from {self.reply.url}: an event is not a JSON object")
        if "error" in event:
            err = event["error"]
            message = err.get("message", err) if isinstance(err, dict) else err
            raise BackendError(f"{self.reply.url} failed mid-reply: {message}")
        if isinstance(event.get("usage"), dict):
            self.usage = event["usage"]
        if isinstance(event.get("timings"), dict):
            self.timings = event["timings"]
        choices = event.get("choices") or []
        if not isinstance(choices, list):
            raise BackendError(f"malformed response from {self.reply.url}: 'choices' is not a list")
        text = ""
        for choice in choices:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            if self.chat:
                delta = choice.get("delta") or {}
                text += (delta.get("content") or "") if isinstance(delta, dict) else ""
            else:
                text += choice.get("text") or ""
            if choice.get("finish_reason"):
                self.finish = map_finish(choice["finish_reason"])
        if text:
            self.t_last = time.perf_counter()
            self.t_first = self.t_first or self.t_last
            self.pieces += 1
            self.chars += len(text)
        return text

    def chunks(self) -> Iterator[Chunk]:
        done = False
        try:
            for data in iter_sse(self.reply.lines()):
                if data.strip() == "[DONE]":
                    done = True
                    break
                out = self.stops.feed(self._event(data))
                if out:
                    yield Chunk(out)
                if self.stops.stopped:
                    self.finish = "stop"
                    break
                if self.options.cancelled:
                    self.finish = "cancelled"
                    break
        except StreamCutError as e:
            raise StreamCutError(
                f"{e}: the reply was cut off after {self.chars} characters and is incomplete"
            ) from None
        if self.finish is None:
            if not done and not self.events:
                raise StreamCutError(
                    f"{self.reply.url} closed the stream without sending anything: the server "
                    "failed on this request (its log says why; a prompt longer than its context?)"
                )
            if not done:
                raise StreamCutError(
                    f"the stream from {self.reply.url} ended before the reply finished "
                    f"(after {self.chars} characters): the partial reply is incomplete"
                )
            # [DONE] with no finish reason: the server dropped the reply (llama-cpp-python's
            # server does so when a newer request interrupts it).
            raise StreamCutError(
                f"{self.reply.url} ended the stream without finishing the reply (after {self.chars} "
                "characters): the partial reply is incomplete (a llama-cpp-python server "
                "interrupts replies for newer requests unless started with --interrupt_requests False)"
            )
        yield Chunk(self.stops.flush(), stats=self.stats())

    def stats(self) -> Stats:
        t_end = time.perf_counter()
        t_first = self.t_first or t_end
        t_last = self.t_last or t_end
        usage = self.usage
        completion = int(usage.get("completion_tokens") or self.pieces)
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        details = usage.get("prompt_tokens_details") or {}
        cached = int(
            _first(details.get("cached_tokens") if isinstance(details, dict) else None, self.timings.get("cache_n"), 0)
        )
        ttft = t_first - self.t_call
        prompt_tps = float(self.timings.get("prompt_per_second") or (prompt_tokens / ttft if ttft > 0 else 0.0))
        decode_tps = (completion - 1) / (t_last - t_first) if completion > 1 and t_last > t_first else 0.0
        return Stats(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion,
            prompt_tps=prompt_tps,
            decode_tps=decode_tps,
            ttft_s=ttft,
            total_s=t_end - self.t_call,
            finish_reason=self.finish or "stop",
            cached_tokens=cached,
        )


_END = object()


def _parallel_stream(
    backend: OpenAIBackend, prompts: list[Prompt], options: GenerationOptions, parallel: int
) -> Iterator[tuple[int, Chunk]]:
    """Run `parallel` streams at once on threads, passing their chunks through one queue."""
    halt = threading.Event()  # the cancel event of every request: set to stop them all
    failed = threading.Event()  # no new requests after a failure
    out: queue.Queue[tuple[int, Any]] = queue.Queue()
    todo = iter(range(len(prompts)))
    todo_lock = threading.Lock()
    worker_options = dataclasses.replace(options, cancel=halt)

    def work() -> None:
        # Once `halt` is set, each remaining prompt ends at once with a "cancelled" reply.
        while not failed.is_set():
            with todo_lock:
                i = next(todo, None)
            if i is None:
                break
            if options.dropped(i):  # a request already sent runs to its end
                out.put((i, Chunk("", stats=Stats(0, 0, 0.0, 0.0, 0.0, 0.0, "dropped"))))
                continue
            seed = seed_for(options, i)
            seeded = worker_options if seed is None else dataclasses.replace(worker_options, seed=seed)
            try:
                for chunk in backend.stream(prompts[i], seeded):
                    out.put((i, chunk))
            except BaseException as e:  # handed to the consumer, which raises it
                out.put((i, e))
                failed.set()
                halt.set()
                break
        out.put((-1, _END))

    workers = [
        threading.Thread(target=work, name=f"llamarch-openai-{n}", daemon=True)
        for n in range(min(parallel, len(prompts)))
    ]
    for w in workers:
        w.start()
    running = len(workers)
    try:
        while running:
            try:
                i, item = out.get(timeout=0.1)
            except queue.Empty:
                if options.cancelled:
                    halt.set()
                continue
            if item is _END:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield i, item
    finally:
        failed.set()
        halt.set()
        deadline = time.monotonic() + 5  # workers stop at their next event; daemon threads past that
        for w in workers:
            w.join(timeout=max(0.0, deadline - time.monotonic()))
