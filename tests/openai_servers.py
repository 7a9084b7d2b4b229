"""Real OpenAI-compatible servers for tests, started on free loopback ports and always killed.

`llamarch serve` (our own) and `python -m llama_cpp.server` (llama-cpp-python's), each
serving a real GGUF model with one CPU thread (predictable on a busy 2-core machine).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

START_TIMEOUT_S = 90
N_CTX = 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child: get SIGKILL when the test process dies, so no server outlives a killed run."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class ServerProcess:
    """A server subprocess: its base URL, key and log; `stop()` kills it (idempotent)."""

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str]):
        self.args, self.log_path = args, log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            args,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        self.url = ""
        self.api_key: str | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()[-3000:]}")

    def wait_for_banner(self, pattern: str) -> str:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            self._check_alive()
            m = re.search(pattern, self.log())
            if m:
                return m.group(1)
            time.sleep(0.1)
        raise RuntimeError(f"server did not start in {START_TIMEOUT_S}s:\n{self.log()[-3000:]}")

    def wait_until_answering(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                with urllib.request.urlopen(urllib.request.Request(self.url + "/models", headers=headers), timeout=5):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        raise RuntimeError(f"server did not answer in {START_TIMEOUT_S}s:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        self._log.close()


def _env(home: Path, models_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(LLAMARCH_HOME=str(home), LLAMARCH_MODELS=str(models_dir), PYTHONUNBUFFERED="1")
    for name in ("LLAMARCH_SERVE_API_KEY", "LLAMARCH_OPENAI_API_KEY", "OPENAI_API_KEY", "LLAMARCH_MODEL"):
        env.pop(name, None)
    return env


def start_llamarch_serve(
    model_path: Path, workdir: Path, api_key: str | None = None, extra: tuple[str, ...] = ()
) -> ServerProcess:
    """`llamarch serve` on a free port (port 0: the server picks it and prints its URL)."""
    models_dir = model_path.parent.parent  # <models>/<id>/<file>
    model_id = model_path.parent.name
    env = _env(workdir / "home", models_dir)
    if api_key:
        env["LLAMARCH_SERVE_API_KEY"] = api_key  # the env form: the key stays out of `ps`
    args = [
        sys.executable,
        "-m",
        "llamarch",
        "serve",
        "-m",
        model_id,
        "--port",
        "0",
        "--n-ctx",
        str(N_CTX),
        "--threads",
        "1",
        *extra,
    ]
    server = ServerProcess(args, workdir / "llamarch-serve.log", env)
    try:
        server.url = server.wait_for_banner(r"at (http://127\.0\.0\.1:\d+/v1)")
    except BaseException:
        server.stop()
        raise
    server.api_key = api_key
    return server


def start_llama_cpp_server(
    model_path: Path, workdir: Path, api_key: str | None = None, interrupt: bool = False
) -> ServerProcess:
    """llama-cpp-python's server on a free port (tried again if another process takes the port first).

    By default it is started as batch work needs it: without `interrupt_requests`, which
    otherwise drops a streaming reply whenever another request arrives.
    """
    env = _env(workdir / "home", model_path.parent.parent)
    for attempt in range(3):
        port = free_port()
        args = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            str(N_CTX),
            "--n_threads",
            "1",
            "--n_threads_batch",
            "1",
            "--interrupt_requests",
            str(interrupt),
            *(["--api_key", api_key] if api_key else []),
        ]
        server = ServerProcess(args, workdir / f"llama-cpp-server-{attempt}.log", env)
        server.url, server.api_key = f"http://127.0.0.1:{port}/v1", api_key
        try:
            server.wait_until_answering()
            return server
        except RuntimeError:
            server.stop()
            if "address already in use" not in server.log().lower() or attempt == 2:
                raise
    raise AssertionError("unreachable")


def post(
    url: str, body: object, api_key: str | None = None, raw: bytes | None = None, timeout: float = 120
) -> tuple[int, dict[str, str], bytes]:
    """A plain HTTP POST (status, headers, body), for checking the wire format itself."""
    data = raw if raw is not None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def sse_payloads(body: bytes) -> list[str]:
    return [line[len(b"data: ") :].decode() for line in body.split(b"\n") if line.startswith(b"data: ")]
