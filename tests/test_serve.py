"""`llamarch serve` on the wire: a real server process with smollm2-135m, checked with plain HTTP."""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import time
import urllib.parse
from pathlib import Path

import pytest
from click.testing import CliRunner

from llamarch import LLM
from llamarch.cli import cli
from openai_servers import post, sse_payloads, start_llamarch_serve

KEY = "sk-serve-test-91b2"
MSG = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(scope="module")
def server(smollm_path: Path, tmp_path_factory):
    srv = start_llamarch_serve(smollm_path, tmp_path_factory.mktemp("serve"), api_key=KEY)
    yield srv
    srv.stop()


def get(url: str, key: str | None = KEY) -> tuple[int, dict[str, str], bytes]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    conn.request("GET", parts.path, headers={"Authorization": f"Bearer {key}"} if key else {})
    r = conn.getresponse()
    try:
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def error_of(body: bytes) -> dict[str, object]:
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def still_serving(server) -> None:
    status, _, body = post(server.url + "/chat/completions", {"messages": MSG, "max_tokens": 2}, KEY)
    assert status == 200, body


def test_models_health_and_the_key(server):
    status, _, body = get(server.url + "/models")
    assert status == 200
    model = json.loads(body)["data"][0]
    assert model["id"] == "smollm2-135m" and model["max_model_len"] == 1024
    assert get(server.url.removesuffix("/v1") + "/health", key=None)[0] == 200
    for key in (None, "sk-wrong"):
        status, headers, body = get(server.url + "/models", key=key)
        assert status == 401 and headers["www-authenticate"] == "Bearer"
        assert error_of(body)["code"] == "invalid_api_key"
        status, _, body = post(server.url + "/chat/completions", {"messages": MSG}, key)
        assert status == 401 and KEY not in body.decode()


def test_streamed_chat_matches_the_whole_reply(server):
    request = {"messages": MSG, "max_tokens": 12, "temperature": 0}
    status, _, body = post(server.url + "/chat/completions", request, KEY)
    whole = json.loads(body)
    assert status == 200 and whole["object"] == "chat.completion"
    status, headers, body = post(
        server.url + "/chat/completions", {**request, "stream": True, "stream_options": {"include_usage": True}}, KEY
    )
    assert status == 200 and headers["content-type"] == "text/event-stream"
    payloads = sse_payloads(body)
    assert payloads[-1] == "[DONE]"
    events = [json.loads(p) for p in payloads[:-1]]
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"])
    assert text == whole["choices"][0]["message"]["content"]
    assert events[-2]["choices"][0]["finish_reason"] == whole["choices"][0]["finish_reason"]
    assert (
        events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] == whole["usage"]["completion_tokens"]
    )
    assert len({e["id"] for e in events}) == 1


@pytest.mark.parametrize(
    "raw, status, code",
    [
        (b"{not json", 400, "invalid_json"),
        (b"", 400, "invalid_json"),
        (b'{"messages": [{"role": "wizard", "content": "x"}]}', 400, "invalid_value"),
        (b'{"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}', 400, "invalid_value"),
        (
            b'{"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object", "schema": '
            b'{"type": "weird"}}}',
            400,
            None,
        ),
        (b'{"messages": [{"role": "user", "content": "x"}], "n": 3}', 400, "unsupported_parameter"),
    ],
)
def test_bad_requests_get_4xx_and_the_server_keeps_serving(server, raw: bytes, status: int, code: str | None):
    got, _, body = post(server.url + "/chat/completions", None, KEY, raw=raw)
    assert got == status and error_of(body)["code"] == code
    still_serving(server)


def test_routes_methods_and_sizes(server):
    assert get(server.url + "/nowhere")[0] == 404
    status, headers, body = get(server.url + "/chat/completions")
    assert status == 405 and headers["allow"] == "POST" and error_of(body)
    parts = urllib.parse.urlsplit(server.url)
    for headers_sent, expected in (({"Content-Length": str(64 << 20)}, 413), ({"Transfer-Encoding": "chunked"}, 411)):
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        conn.putrequest("POST", "/v1/completions")
        conn.putheader("Authorization", f"Bearer {KEY}")
        for k, v in headers_sent.items():
            conn.putheader(k, v)
        conn.endheaders()
        r = conn.getresponse()
        assert r.status == expected and error_of(r.read())
        conn.close()
    still_serving(server)


def test_context_overflow_is_400_whether_streamed_or_not(server):
    for stream in (False, True):
        status, _, body = post(server.url + "/completions", {"prompt": "hello " * 1100, "stream": stream}, KEY)
        error = error_of(body)
        assert status == 400 and error["code"] == "context_length_exceeded" and error["param"] == "prompt"
        assert "1101 tokens" in str(error["message"])
    still_serving(server)


def test_tokenize_and_detokenize(server, smollm: LLM):
    root = server.url.removesuffix("/v1")
    status, _, body = post(root + "/tokenize", {"content": "hello world", "parse_special": False}, KEY)
    tokens = json.loads(body)["tokens"]
    assert status == 200 and tokens == smollm.tokenize("hello world")
    status, _, body = post(root + "/detokenize", {"tokens": tokens}, KEY)
    assert json.loads(body)["content"] == "hello world"
    status, _, body = post(root + "/detokenize", {"tokens": [10**9]}, KEY)  # llama.cpp would abort on it
    assert status == 400 and "outside the vocabulary" in str(error_of(body)["message"])
    still_serving(server)


def test_a_client_that_leaves_mid_stream_stops_its_generation(server):
    parts = urllib.parse.urlsplit(server.url)
    body = json.dumps({"prompt": "Count from 1 to 500: 1, 2,", "max_tokens": 800, "stream": True}).encode()
    sock = socket.create_connection((parts.hostname, parts.port), timeout=60)
    sock.sendall(
        b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + KEY.encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    received = b""
    while b"data:" not in received:
        received += sock.recv(4096)
    sock.close()
    deadline = time.monotonic() + 60
    while "client went away" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert re.search(r'"POST /v1/completions" 200 [\d.]+s client went away', server.log())
    still_serving(server)


def test_a_full_waiting_line_answers_503(smollm_path: Path):
    from llamarch.serve import make_server

    with LLM("smollm2-135m", n_ctx=512, n_threads=1) as llm:
        httpd = make_server(llm.backend, llm.model_id, port=0, max_waiting=0, log=None)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        try:
            long = {"prompt": "Count from 1 to 500: 1, 2,", "max_tokens": 300, "stream": True}
            first = http.client.HTTPConnection("127.0.0.1", httpd.server_address[1], timeout=60)
            first.request("POST", "/v1/completions", json.dumps(long), {"Content-Type": "application/json"})
            streaming = first.getresponse()
            assert streaming.status == 200 and streaming.readline()  # the model is now busy
            status, headers, body = post(httpd.url + "/completions", {"prompt": "Hi", "max_tokens": 2})
            assert status == 503 and headers["retry-after"] == "1" and error_of(body)["code"] == "overloaded"
            first.close()
        finally:
            httpd.shutdown()
            httpd.server_close()


# --- the CLI ---------------------------------------------------------------------------------


def test_generate_through_the_server(server, monkeypatch: pytest.MonkeyPatch):
    args = ["generate", "-m", f"openai:@{server.url}", "--json", "--temperature", "0", "--max-tokens", "5", "Hi"]
    runner = CliRunner()
    refused = runner.invoke(cli, args)
    assert refused.exit_code == 1 and "401" in refused.output and "Traceback" not in refused.output
    assert refused.output.count("\n") == 1
    ok = runner.invoke(cli, [*args[:-1], "--api-key", KEY, "Hi"])
    assert ok.exit_code == 0, ok.output
    reply = json.loads(ok.stdout)
    assert reply["backend"] == "openai" and reply["model"] == "smollm2-135m" and reply["completion_tokens"] > 0
    assert KEY not in ok.output
    monkeypatch.setenv("LLAMARCH_OPENAI_API_KEY", KEY)
    monkeypatch.setenv("LLAMARCH_OPENAI_BASE_URL", server.url)
    by_env = runner.invoke(
        cli, ["generate", "--backend", "openai", "-m", "smollm2-135m", "--json", "--max-tokens", "3", "Hi"]
    )
    assert by_env.exit_code == 0 and json.loads(by_env.stdout)["backend"] == "openai", by_env.output


def test_a_catalog_entry_can_name_a_served_model(server, isolated_home: Path, monkeypatch: pytest.MonkeyPatch):
    catalog = isolated_home / "catalog"
    catalog.mkdir(parents=True)
    (catalog / "teacher.toml").write_text(
        f'id = "remote-teacher"\nname = "SmolLM2 on a server"\nbackend = "openai"\n'
        f'base_url = "{server.url}"\nmodel = "smollm2-135m"\napi_key_env = "TEACHER_KEY"\n'
    )
    monkeypatch.setenv("TEACHER_KEY", KEY)
    with LLM("remote-teacher") as teacher:
        assert teacher.backend_name == "openai" and teacher.model_id == "smollm2-135m"
        assert teacher.generate("Hi", max_tokens=3, temperature=0)
    listing = CliRunner().invoke(cli, ["models", "list", "--json"])
    row = next(r for r in json.loads(listing.stdout) if r["id"] == "remote-teacher")
    assert row["location"] == "server" and row["path"] == server.url
    pulled = CliRunner().invoke(cli, ["models", "pull", "remote-teacher"])
    assert pulled.exit_code == 1 and "nothing to pull" in pulled.output


def test_serve_fails_fast_on_a_busy_port():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", "-m", "no-such-model", "--port", str(port)])
    # The port is checked before the model: the unknown model id is never reached.
    assert result.exit_code == 1 and f"port {port} on 127.0.0.1 is already in use" in result.output


def test_serve_help():
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--api-key", "LLAMARCH_SERVE_API_KEY", "127.0.0.1"):
        assert option in result.output
