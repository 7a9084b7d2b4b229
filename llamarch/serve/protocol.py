"""The OpenAI wire format on the server side: checking requests, shaping replies.

Pure functions, no I/O: `parse_request` turns a request body into a prompt and
GenerationOptions or raises `APIError` (a 4xx with an OpenAI-style error body);
the `*_body` functions build the JSON replies and stream events.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from ..backends.base import GenerationOptions, Message, Prompt, Stats

CHAT, COMPLETION = "chat", "completion"
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
MAX_STOPS = 16
UNSUPPORTED = {  # parameter -> why it is refused rather than silently ignored
    "logprobs": "logprobs are not supported",
    "top_logprobs": "logprobs are not supported",
    "tools": "tool calls are not supported",
    "functions": "function calls are not supported",
    "echo": "echo is not supported",
    "suffix": "suffix (fill-in-the-middle) is not supported",
}


class APIError(Exception):
    """An error answered to the client as `{"error": {"message", "type", "param", "code"}}`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type, code, param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass
class ParsedRequest:
    kind: str  # CHAT or COMPLETION
    prompt: Prompt
    options: GenerationOptions
    stream: bool
    include_usage: bool


def _bad(message: str, param: str | None = None, code: str | None = "invalid_value") -> APIError:
    return APIError(400, message, param=param, code=code)


def _number(body: dict[str, Any], name: str, lo: float, hi: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise _bad(f"'{name}' must be a number from {lo:g} to {hi:g}, got {value!r}", name)
    return float(value)


def _integer(body: dict[str, Any], name: str, lo: int, hi: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        bound = f"from {lo} to {hi}" if hi is not None else f"of at least {lo}"
        raise _bad(f"'{name}' must be an integer {bound}, got {value!r}", name)
    return value


def _content(content: Any, where: str) -> str:
    """Message content: a string, or a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise _bad(f"{where}: only text content parts are supported", "messages")
            texts.append(part["text"])
        return "\n".join(texts)
    raise _bad(f"{where}: 'content' must be a string or a list of text parts", "messages")


def _messages(value: Any) -> list[Message]:
    if not isinstance(value, list) or not value:
        raise _bad("'messages' must be a non-empty list", "messages")
    messages: list[Message] = []
    for i, m in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise _bad(f"{where} must be an object with 'role' and 'content'", "messages")
        role = ROLES.get(m.get("role"))  # type: ignore[arg-type]
        if role is None:
            raise _bad(f"{where}: role {m.get('role')!r} is not one of {', '.join(ROLES)}", "messages")
        messages.append({"role": role, "content": _content(m.get("content", ""), where)})
    return messages


def _prompt(value: Any) -> str:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, str):
        raise _bad("'prompt' must be a string (one prompt per request)", "prompt")
    return value


def _stops(value: Any) -> list[str]:
    if value is None:
        return []
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops) or len(stops) > MAX_STOPS:
        raise _bad(f"'stop' must be a string or a list of at most {MAX_STOPS} strings", "stop")
    return [s for s in stops if s]


def _schema(value: Any) -> dict[str, Any] | None:
    """The JSON schema a `response_format` asks for (OpenAI's json_schema, or json_object [+ schema])."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad("'response_format' must be an object", "response_format")
    kind = value.get("type", "text")
    if kind == "text":
        return None
    if kind == "json_object":
        schema = value.get("schema", {"type": "object"})
    elif kind == "json_schema":
        spec = value.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
    else:
        raise _bad(f"response_format type {kind!r} is not one of text, json_object, json_schema", "response_format")
    if not isinstance(schema, dict):
        raise _bad("response_format needs a JSON schema object", "response_format")
    return schema


def parse_request(kind: str, body: Any) -> ParsedRequest:
    """Check a /v1/chat/completions or /v1/completions body; raise APIError (400) on anything wrong."""
    if not isinstance(body, dict):
        raise _bad("the request body must be a JSON object", code="invalid_json")
    for name, why in UNSUPPORTED.items():
        if body.get(name) not in (None, False, [], 0, ""):
            raise _bad(why, name, code="unsupported_parameter")
    if body.get("n", 1) != 1:
        raise _bad("only n=1 is supported", "n", code="unsupported_parameter")
    if kind == CHAT:
        prompt: Prompt = _messages(body.get("messages"))
    else:
        prompt = _prompt(body.get("prompt"))
    max_tokens = _integer(body, "max_completion_tokens", 1) or _integer(body, "max_tokens", 1)
    settings = {
        "temperature": _number(body, "temperature", 0, 2),
        "top_p": _number(body, "top_p", 0, 1),
        "min_p": _number(body, "min_p", 0, 1),
        "repeat_penalty": _number(body, "repeat_penalty", 0, 10) or _number(body, "repetition_penalty", 0, 10),
        "top_k": _integer(body, "top_k", -1),
        "seed": _integer(body, "seed", -(2**63), 2**64 - 1),
    }
    options = GenerationOptions.from_kwargs(**settings)
    options.max_tokens = max_tokens  # absent: until the context is full, as OpenAI does
    if options.top_k < 0:
        options.top_k = 0  # vLLM's "-1 = off" is llama.cpp's 0
    if options.seed is not None:
        options.seed %= 2**32 - 1  # llama.cpp seeds are 32-bit; 2**32-1 means "random"
    options.stop = _stops(body.get("stop"))
    options.json_schema = _schema(body.get("response_format"))
    if options.json_schema is None and kind == COMPLETION and isinstance(body.get("json_schema"), dict):
        options.json_schema = body["json_schema"]  # llama-server's /completions field
    options.cancel = threading.Event()
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise _bad("'stream' must be true or false", "stream")
    stream_options = body.get("stream_options") or {}
    include_usage = bool(isinstance(stream_options, dict) and stream_options.get("include_usage"))
    return ParsedRequest(kind, prompt, options, stream, include_usage)


# --- replies ---------------------------------------------------------------------------


def new_id(kind: str) -> str:
    return ("chatcmpl-" if kind == CHAT else "cmpl-") + uuid.uuid4().hex[:24]


def finish_reason(stats: Stats) -> str:
    return "length" if stats.finish_reason == "length" else "stop"


def usage_body(stats: Stats) -> dict[str, Any]:
    """OpenAI's usage, plus llama-server's `timings` so clients can see server-side speed."""
    return {
        "prompt_tokens": stats.prompt_tokens,
        "completion_tokens": stats.completion_tokens,
        "total_tokens": stats.prompt_tokens + stats.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": stats.cached_tokens},
    }


def timings_body(stats: Stats) -> dict[str, Any]:
    return {
        "prompt_n": stats.prompt_tokens - stats.cached_tokens,
        "cache_n": stats.cached_tokens,
        "prompt_per_second": stats.prompt_tps,
        "predicted_n": stats.completion_tokens,
        "predicted_per_second": stats.decode_tps,
    }


class Reply:
    """The ids and shapes of one completion's reply, whole or streamed."""

    def __init__(self, kind: str, model: str):
        self.kind, self.model = kind, model
        self.id, self.created = new_id(kind), int(time.time())

    def _envelope(self, chunk: bool) -> dict[str, Any]:
        if self.kind == CHAT:
            obj = "chat.completion.chunk" if chunk else "chat.completion"
        else:
            obj = "text_completion"
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model}

    def whole(self, text: str, stats: Stats) -> dict[str, Any]:
        """The non-streamed reply."""
        if self.kind == CHAT:
            choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text}}
        else:
            choice = {"index": 0, "text": text, "logprobs": None}
        choice["finish_reason"] = finish_reason(stats)
        return {
            **self._envelope(False),
            "choices": [choice],
            "usage": usage_body(stats),
            "timings": timings_body(stats),
        }

    def event(self, text: str | None = None, finish: str | None = None, first: bool = False) -> dict[str, Any]:
        """One streamed event carrying `text` (and/or the finish reason)."""
        if self.kind == CHAT:
            delta: dict[str, Any] = {"role": "assistant"} if first else {}
            if text is not None:
                delta["content"] = text
            choice: dict[str, Any] = {"index": 0, "delta": delta}
        else:
            choice = {"index": 0, "text": text or "", "logprobs": None}
        choice["finish_reason"] = finish
        return {**self._envelope(True), "choices": [choice]}

    def usage_event(self, stats: Stats) -> dict[str, Any]:
        """The last event when the client asked for usage: no choices, the token counts."""
        return {**self._envelope(True), "choices": [], "usage": usage_body(stats), "timings": timings_body(stats)}


def model_list(model_id: str, n_ctx: int, backend: str, created: int) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {
                "id": model_id,
                "object": "model",
                "created": created,
                "owned_by": "llamarch",
                "max_model_len": n_ctx,
                "meta": {"n_ctx": n_ctx, "backend": backend},
            }
        ],
    }
