"""The openai backend against real servers on loopback, each serving smollm2-135m:
`llamarch serve` and llama-cpp-python's own `python -m llama_cpp.server`."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from llamarch import LLM
from llamarch.backends.base import GenerationOptions
from llamarch.errors import BackendError, ContextOverflowError
from llamarch.httpclient import StreamCutError
from openai_servers import post, sse_payloads, start_llama_cpp_server, start_llamarch_serve

KEY = "sk-test-3f9c1e"
GREEDY = {"temperature": 0.0, "seed": 1}
VERDICT_SCHEMA = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": 1, "maximum": 10},
        "critique": {"type": "string", "maxLength": 200},
        "improved_answer": {"type": "string", "maxLength": 200},
    },
    "required": ["score", "critique", "improved_answer"],
}


@pytest.fixture(scope="module", params=["llamarch-serve", "llama-cpp-server"])
def server(request, smollm_path: Path, tmp_path_factory):
    workdir = tmp_path_factory.mktemp(request.param)
    if request.param == "llama-cpp-server":
        pytest.importorskip("uvicorn", reason="llama-cpp-python[server] is not installed")
        srv = start_llama_cpp_server(smollm_path, workdir, api_key=KEY)
    else:
        srv = start_llamarch_serve(smollm_path, workdir, api_key=KEY)
    srv.kind = request.param
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def local(smollm_path: Path):
    """The same model in this process, as both servers run it (one thread, same context)."""
    llm = LLM("smollm2-135m", n_ctx=1024, n_threads=1)
    yield llm
    llm.close()


@pytest.fixture
def remote(server) -> LLM:
    return LLM(f"openai:@{server.url}", api_key=server.api_key)


def chat(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_backend_is_selected_and_learns_the_server(remote: LLM, server):
    assert remote.backend_name == "openai"
    assert remote.backend.base_url == server.url
    assert remote.model_id  # the server's first model
    if server.kind == "llamarch-serve":
        assert remote.model_id == "smollm2-135m" and remote.n_ctx == 1024


def test_streamed_reply_equals_whole_reply_and_the_local_engine(remote: LLM, local: LLM, server):
    messages = chat("Name three colors.")
    streamed = remote.respond(messages, max_tokens=24, **GREEDY)
    status, _, body = post(
        server.url + "/chat/completions",
        {
            "model": remote.model_id,
            "messages": messages,
            "max_tokens": 24,
            "temperature": 0.0,
            "seed": 1,
            "top_k": 40,
            "min_p": 0.05,
            "repeat_penalty": 1.0,
        },
        server.api_key,
    )
    assert status == 200, body
    whole = json.loads(body)["choices"][0]["message"]["content"]
    assert streamed.text == whole
    assert streamed.text == local.respond(messages, max_tokens=24, **GREEDY).text
    assert 0 < streamed.stats.completion_tokens <= 24 and streamed.stats.finish_reason in ("stop", "length")
    assert streamed.stats.ttft_s > 0 and streamed.stats.total_s >= streamed.stats.ttft_s

    prompt = "The capital of France is"
    text = remote.respond(prompt, raw=True, max_tokens=12, **GREEDY).text
    assert text == local.respond(prompt, raw=True, max_tokens=12, **GREEDY).text


def test_usage_gives_token_counts(remote: LLM, local: LLM, server):
    if server.kind != "llamarch-serve":
        pytest.skip("llama-cpp-python's server sends no usage in streams")
    messages = chat("Say hello.")
    stats = remote.respond(messages, max_tokens=8, **GREEDY).stats
    assert stats.prompt_tokens == len(local.backend.prompt_tokens(messages)[0])
    assert stats.completion_tokens == 8 and stats.decode_tps > 0


def test_structured_verdict_through_http(remote: LLM):
    prompt = chat(
        "Question: what is 2 + 2?\nStudent answer: 5\n"
        "Grade the answer from 1 to 10, criticise it and give a better answer, as JSON."
    )
    reply = remote.respond(prompt, max_tokens=300, json_schema=VERDICT_SCHEMA, **GREEDY)
    verdict = json.loads(reply.text)
    assert set(verdict) == {"score", "critique", "improved_answer"}
    assert isinstance(verdict["score"], int) and 1 <= verdict["score"] <= 10
    assert isinstance(verdict["critique"], str) and isinstance(verdict["improved_answer"], str)


def test_twenty_concurrent_requests_all_answered_correctly(remote: LLM):
    prompts = [chat(f"Write one short sentence about the number {n}.") for n in range(20)]
    expected = [remote.respond(p, max_tokens=8, **GREEDY).text for p in prompts]
    texts: dict[int, list[str]] = {i: [] for i in range(20)}
    finished: list[int] = []
    for i, chunk in remote.stream_batch(prompts, parallel=20, max_tokens=8, **GREEDY):
        texts[i].append(chunk.text)
        if chunk.stats is not None:
            finished.append(i)
            assert chunk.stats.finish_reason in ("stop", "length")
    assert sorted(finished) == list(range(20))
    assert ["".join(texts[i]) for i in range(20)] == expected
    assert len(set(expected)) > 10  # distinct prompts, distinct replies: no mix-ups go unnoticed


def test_stop_strings_and_cancel(remote: LLM):
    reply = remote.respond("Count: 1, 2, 3, 4, 5, 6,", raw=True, max_tokens=30, stop=[" 9"], **GREEDY)
    assert " 9" not in reply.text and reply.stats.finish_reason == "stop"
    cancel = threading.Event()
    options = GenerationOptions(max_tokens=200, cancel=cancel, **GREEDY)
    chunks = []
    for chunk in remote.backend.stream(chat("Tell me a long story about a dragon."), options):
        chunks.append(chunk)
        cancel.set()
    assert chunks[-1].stats is not None and chunks[-1].stats.finish_reason == "cancelled"
    assert chunks[-1].stats.completion_tokens < 200


def test_tokenize_roundtrip(remote: LLM, local: LLM, server):
    text = "def reverse(s): return s[::-1]"
    tokens = remote.tokenize(text)
    assert tokens[-len(local.tokenize(text)) :] == local.tokenize(text)
    assert remote.detokenize(local.tokenize(text)) == text


def test_missing_or_wrong_key_is_refused(server):
    for key in (None, "sk-wrong"):
        with pytest.raises(BackendError, match="401") as info:
            LLM(f"openai:@{server.url}", api_key=key)
        assert KEY not in str(info.value) and "sk-wrong" not in str(info.value)
        status, _, _ = post(server.url + "/chat/completions", {"messages": chat("hi")}, key)
        assert status == 401


def test_prompt_over_the_context_is_a_clear_error(remote: LLM, server):
    too_long = "hello " * 1100
    if server.kind == "llamarch-serve":
        with pytest.raises(ContextOverflowError, match="1101 tokens.*context window is 1024"):
            remote.respond(too_long, raw=True, max_tokens=4)
    else:  # llama-cpp-python ends such a stream silently; its non-streamed answer is a 400
        with pytest.raises(StreamCutError, match="without sending anything"):
            remote.respond(too_long, raw=True, max_tokens=4)
    status, _, body = post(server.url + "/completions", {"prompt": too_long, "max_tokens": 4}, server.api_key)
    assert status == 400 and json.loads(body)["error"]["code"] == "context_length_exceeded"
    assert remote.respond("Hi", raw=True, max_tokens=2).stats.completion_tokens == 2  # still serving


@pytest.mark.parametrize("kind", ["llamarch-serve", "llama-cpp-server"])
def test_server_killed_mid_stream_is_an_error_not_a_short_reply(kind: str, smollm_path: Path, tmp_path: Path):
    if kind == "llama-cpp-server":
        pytest.importorskip("uvicorn", reason="llama-cpp-python[server] is not installed")
        srv = start_llama_cpp_server(smollm_path, tmp_path)
    else:
        srv = start_llamarch_serve(smollm_path, tmp_path)
    try:
        remote = LLM(f"openai:@{srv.url}", retries=0)
        received = []
        with pytest.raises(StreamCutError, match="incomplete"):
            for chunk in remote.stream(chat("Count from 1 to 500, separated by commas."), max_tokens=600, **GREEDY):
                assert chunk.stats is None, "a cut stream must not end with stats"
                received.append(chunk.text)
                if len("".join(received)) > 3:
                    srv.proc.kill()
                    srv.proc.wait(timeout=30)
        assert received
        with pytest.raises(BackendError, match="connection refused"):
            remote.respond("hi", raw=True, max_tokens=2)
    finally:
        srv.stop()


def test_reply_interrupted_by_the_server_is_an_error(smollm_path: Path, tmp_path: Path):
    """llama-cpp-python's default server drops a streaming reply when another request comes:
    it sends [DONE] without a finish reason, which must not pass as a complete reply."""
    pytest.importorskip("uvicorn", reason="llama-cpp-python[server] is not installed")
    srv = start_llama_cpp_server(smollm_path, tmp_path, interrupt=True)
    try:
        remote = LLM(f"openai:@{srv.url}")
        other = threading.Thread(target=lambda: remote.respond("Hi", raw=True, max_tokens=2))
        with pytest.raises(StreamCutError, match="without finishing the reply"):
            for chunk in remote.stream(chat("Count from 1 to 500, separated by commas."), max_tokens=600, **GREEDY):
                assert chunk.stats is None
                if not other.is_alive() and other.ident is None:
                    other.start()
        other.join(timeout=60)
    finally:
        srv.stop()


def test_payloads_are_sse_with_done(server):
    status, headers, body = post(
        server.url + "/completions",
        {"prompt": "Hello", "max_tokens": 3, "stream": True, "stream_options": {"include_usage": True}},
        server.api_key,
    )
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    payloads = sse_payloads(body)
    assert payloads[-1] == "[DONE]"
    events = [json.loads(p) for p in payloads[:-1]]
    assert "".join(e["choices"][0]["text"] for e in events if e["choices"])
