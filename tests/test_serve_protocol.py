"""`llamarch serve`'s request checking and reply shapes (pure logic, no model)."""

from __future__ import annotations

import pytest

from llamarch.backends.base import Stats
from llamarch.serve.protocol import CHAT, COMPLETION, APIError, Reply, parse_request

MSG = [{"role": "user", "content": "hi"}]


def test_a_full_chat_request_becomes_prompt_and_options():
    req = parse_request(
        CHAT,
        {
            "model": "anything",
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
            ],
            "max_tokens": 50,
            "temperature": 0,
            "top_p": 0.5,
            "top_k": -1,
            "min_p": 0.1,
            "seed": 2**40,
            "stop": "\n\n",
            "stream": True,
            "stream_options": {"include_usage": True},
            "response_format": {"type": "json_schema", "json_schema": {"name": "v", "schema": {"type": "object"}}},
        },
    )
    assert req.prompt == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    o = req.options
    assert (o.max_tokens, o.temperature, o.top_p, o.top_k, o.min_p) == (50, 0.0, 0.5, 0, 0.1)
    assert 0 <= o.seed < 2**32 - 1 and o.stop == ["\n\n"] and o.json_schema == {"type": "object"}
    assert req.stream and req.include_usage and o.cancel is not None


def test_defaults_generate_until_the_context_is_full():
    req = parse_request(COMPLETION, {"prompt": ["Once upon a time"]})
    assert req.prompt == "Once upon a time" and req.options.max_tokens is None
    assert not req.stream and req.options.json_schema is None
    legacy = parse_request(COMPLETION, {"prompt": "x", "json_schema": {"type": "object"}})
    assert legacy.options.json_schema == {"type": "object"}  # llama-server's /completions field
    assert parse_request(CHAT, {"messages": MSG, "response_format": {"type": "json_object"}}).options.json_schema


@pytest.mark.parametrize(
    "kind, body, param",
    [
        (CHAT, [], None),
        (CHAT, {}, "messages"),
        (CHAT, {"messages": []}, "messages"),
        (CHAT, {"messages": ["hi"]}, "messages"),
        (CHAT, {"messages": [{"role": "wizard", "content": "x"}]}, "messages"),
        (CHAT, {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages"),
        (CHAT, {"messages": MSG, "temperature": "hot"}, "temperature"),
        (CHAT, {"messages": MSG, "temperature": 3}, "temperature"),
        (CHAT, {"messages": MSG, "max_tokens": 0}, "max_tokens"),
        (CHAT, {"messages": MSG, "max_tokens": True}, "max_tokens"),
        (CHAT, {"messages": MSG, "stop": ["a"] * 17}, "stop"),
        (CHAT, {"messages": MSG, "stop": 3}, "stop"),
        (CHAT, {"messages": MSG, "n": 2}, "n"),
        (CHAT, {"messages": MSG, "stream": "yes"}, "stream"),
        (CHAT, {"messages": MSG, "tools": [{"type": "function"}]}, "tools"),
        (CHAT, {"messages": MSG, "logprobs": True}, "logprobs"),
        (CHAT, {"messages": MSG, "response_format": {"type": "yaml"}}, "response_format"),
        (CHAT, {"messages": MSG, "response_format": {"type": "json_schema", "json_schema": {}}}, "response_format"),
        (COMPLETION, {"prompt": ["a", "b"]}, "prompt"),
        (COMPLETION, {"prompt": [1, 2, 3]}, "prompt"),
    ],
)
def test_bad_requests_are_400_with_the_parameter_named(kind: str, body, param: str | None):
    with pytest.raises(APIError) as info:
        parse_request(kind, body)
    error = info.value
    assert error.status == 400 and error.param == param
    assert set(error.body()["error"]) == {"message", "type", "param", "code"}


def test_reply_shapes():
    stats = Stats(5, 3, 100.0, 50.0, 0.1, 0.2, "length", cached_tokens=2)
    chat = Reply(CHAT, "m")
    whole = chat.whole("abc", stats)
    assert whole["object"] == "chat.completion" and whole["id"].startswith("chatcmpl-")
    assert whole["choices"][0] == {
        "index": 0,
        "message": {"role": "assistant", "content": "abc"},
        "finish_reason": "length",
    }
    assert whole["usage"]["total_tokens"] == 8 and whole["usage"]["prompt_tokens_details"]["cached_tokens"] == 2
    first = chat.event("", first=True)
    assert first["object"] == "chat.completion.chunk" and first["choices"][0]["delta"] == {
        "role": "assistant",
        "content": "",
    }
    assert chat.event(None, finish="stop")["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
    assert chat.usage_event(stats)["choices"] == []
    text = Reply(COMPLETION, "m")
    assert text.whole("abc", stats)["choices"][0]["text"] == "abc"
    assert text.event("d")["object"] == "text_completion"
