"""A stand-in for the Hugging Face hub on 127.0.0.1, for tests. The real huggingface_hub client
talks to it through HF_ENDPOINT; it is test code standing in for the remote hub, nothing more.

It answers the calls a pull makes, shaped like the hub's answers:
- GET /api/models/OWNER/REPO[/revision/REV][?blobs=true]: the commit, gated flag, licence and
  siblings (with sizes, git blob ids and, for LFS files, size and sha256);
- HEAD/GET /OWNER/REPO/resolve/REV/FILE: X-Repo-Commit and ETag; an LFS file answers 302 to
  a "CDN" on another host name (localhost) with X-Linked-Etag and X-Linked-Size, as the hub
  redirects to its CDN; errors carry X-Error-Code (RepoNotFound, GatedRepo, EntryNotFound);
- GET /cdn/SHA256 on the CDN host, with Range, and faults a test can arm: bytes served wrong,
  a connection cut at an offset (once, or every time), a transfer held at an offset until released.

At the end: the `hub` and `env` fixtures and the helpers that run the `llamarch` CLI against it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LFS_SUFFIXES = (".gguf", ".safetensors", ".bin", ".png")
_HASHES: dict[tuple[str, int, int], tuple[str, str]] = {}


def _hashes(path: Path) -> tuple[str, str]:
    """(sha256, git blob sha1) of a file, computed once per file version."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        sha256, sha1 = hashlib.sha256(), hashlib.sha1(f"blob {st.st_size}\0".encode())
        with path.open("rb") as f:
            while block := f.read(1 << 22):
                sha256.update(block)
                sha1.update(block)
        _HASHES[key] = (sha256.hexdigest(), sha1.hexdigest())
    return _HASHES[key]


@dataclass
class HubFile:
    name: str
    path: Path
    size: int
    sha256: str
    blob_id: str
    lfs: bool


@dataclass
class Repo:
    repo_id: str
    files: dict[str, HubFile]
    commit: str
    gated: bool = False
    license: str | None = None


@dataclass
class Faults:
    corrupt: set[str] = field(default_factory=set)  # sha256s served with flipped bytes (same size)
    cut_once: dict[str, int] = field(default_factory=dict)  # sha256 -> offset where the next GET drops
    cut_at: dict[str, int] = field(default_factory=dict)  # sha256 -> offset where every GET drops
    hold: dict[str, tuple[int, threading.Event]] = field(default_factory=dict)  # sha256 -> (offset, release)


class FakeHub:
    """`with FakeHub(tmp) as hub: hub.add_repo(...)`; `hub.url` goes in HF_ENDPOINT."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.repos: dict[str, Repo] = {}
        self.faults = Faults()
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range)
        self.bytes_served: dict[str, int] = {}  # sha256 -> bytes sent from the CDN
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cdn(self) -> str:
        return f"http://localhost:{self.port}"

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        for _, release in self.faults.hold.values():
            release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def add_repo(
        self,
        repo_id: str,
        files: dict[str, Path | bytes],
        gated: bool = False,
        license: str | None = "apache-2.0",
        commit: str | None = None,
    ) -> Repo:
        entries = {}
        for name, content in files.items():
            if isinstance(content, bytes):
                path = self.workdir / "blobs" / hashlib.sha256(content).hexdigest()
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
            else:
                path = content
            sha256, blob_id = _hashes(path)
            size = path.stat().st_size
            entries[name] = HubFile(name, path, size, sha256, blob_id, name.endswith(LFS_SUFFIXES) or size > 10_000_000)
        commit = commit or hashlib.sha1(repr(sorted((n, f.sha256) for n, f in entries.items())).encode()).hexdigest()
        repo = Repo(repo_id, entries, commit, gated, license)
        self.repos[repo_id] = repo
        return repo

    def log(self, method: str, path: str, range_: str | None) -> None:
        with self._lock:
            self.requests.append((method, path, range_))

    def cdn_gets(self, sha256: str) -> list[str | None]:
        """The Range header of each CDN GET of a blob (None: the whole file)."""
        return [r for m, p, r in self.requests if m == "GET" and p == f"/cdn/{sha256}"]


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet
            pass

        def do_HEAD(self) -> None:
            self._route(head=True)

        def do_GET(self) -> None:
            self._route(head=False)

        def _route(self, head: bool) -> None:
            url = urlparse(self.path)
            path = unquote(url.path)
            hub.log(self.command, path, self.headers.get("Range"))
            if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path):
                return self._model_info(m.group(1), m.group(2), "blobs=true" in url.query)
            if m := re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path):
                return self._resolve(m.group(1), m.group(2), m.group(3), head)
            if m := re.fullmatch(r"/cdn/([0-9a-f]{64})", path):
                return self._cdn(m.group(1), head)
            self._error(404, "NotFound", f"no route {path}")

        # --- answers ------------------------------------------------------------------

        def _error(self, status: int, code: str, message: str, commit: str | None = None) -> None:
            body = json.dumps({"error": message}).encode()
            self.send_response(status)
            self.send_header("X-Error-Code", code)
            self.send_header("X-Error-Message", message)
            if commit:
                self.send_header("X-Repo-Commit", commit)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _repo(self, repo_id: str, revision: str | None) -> Repo | None:
            repo = hub.repos.get(repo_id)
            if repo is None:  # what the hub says to an anonymous client about a missing repo
                self._error(401, "RepoNotFound", "Repository not found")
                return None
            if revision not in (None, "main", repo.commit):
                self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
                return None
            return repo

        def _model_info(self, repo_id: str, revision: str | None, blobs: bool) -> None:
            repo = self._repo(repo_id, revision)
            if repo is None:
                return
            siblings = []
            for f in repo.files.values():
                sibling: dict[str, object] = {"rfilename": f.name}
                if blobs:
                    sibling.update(size=f.size, blobId=f.blob_id)
                    if f.lfs:
                        sibling["lfs"] = {"size": f.size, "sha256": f.sha256, "pointerSize": 134}
                siblings.append(sibling)
            info = {
                "_id": repo.commit[:24],
                "id": repo.repo_id,
                "modelId": repo.repo_id,
                "sha": repo.commit,
                "private": False,
                "disabled": False,
                "gated": "manual" if repo.gated else False,
                "tags": ["gguf"],
                "siblings": siblings,
            }
            if repo.license:
                info["cardData"] = {"license": repo.license}
            body = json.dumps(info).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _resolve(self, repo_id: str, revision: str, name: str, head: bool) -> None:
            repo = self._repo(repo_id, revision)
            if repo is None:
                return
            if repo.gated:
                return self._error(
                    401,
                    "GatedRepo",
                    f"Access to model {repo_id} is restricted. You must have "
                    "access to it and be authenticated to access it. Please log in.",
                )
            f = repo.files.get(name)
            if f is None:
                return self._error(404, "EntryNotFound", f'{name} does not exist on "{revision}"', repo.commit)
            self.send_response(302 if f.lfs else 200)
            self.send_header("X-Repo-Commit", repo.commit)
            self.send_header("Accept-Ranges", "bytes")
            if f.lfs:
                self.send_header("ETag", f'"{f.blob_id}"')
                self.send_header("X-Linked-Etag", f'"{f.sha256}"')
                self.send_header("X-Linked-Size", str(f.size))
                self.send_header("Location", f"{hub.cdn}/cdn/{f.sha256}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_header("ETag", f'"{f.blob_id}"')
            self.send_header("Content-Length", str(f.size))
            self.end_headers()
            if not head:
                self.wfile.write(f.path.read_bytes())

        def _cdn(self, sha256: str, head: bool) -> None:
            f = next((f for r in hub.repos.values() for f in r.files.values() if f.sha256 == sha256), None)
            if f is None:
                return self._error(404, "NotFound", "no such object")
            start = 0
            if m := re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or ""):
                start = int(m.group(1))
            if start >= f.size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{f.size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{f.size - 1}/{f.size}")
            self.send_header("Content-Length", str(f.size - start))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", f'"{sha256}"')
            self.end_headers()
            if not head:
                self._send_body(f, start)

        def _send_body(self, f: HubFile, start: int) -> None:
            faults = hub.faults
            cut = faults.cut_once.pop(f.sha256, None) or faults.cut_at.get(f.sha256)
            hold = faults.hold.get(f.sha256)
            stop_at = cut if cut is not None else hold[0] if hold else None
            pos = start
            try:
                with f.path.open("rb") as src:
                    src.seek(start)
                    while block := src.read(1 << 20):
                        if f.sha256 in faults.corrupt and pos <= f.size // 2 < pos + len(block):
                            block = bytearray(block)
                            block[f.size // 2 - pos] ^= 0xFF
                            block = bytes(block)
                        if stop_at is not None and pos + len(block) > stop_at > pos - 1:
                            block = block[: stop_at - pos]
                            self.wfile.write(block)
                            self._count(f, len(block))
                            self.wfile.flush()
                            if hold and cut is None:
                                hold[1].wait(60)
                            break  # the connection ends here, short of Content-Length
                        self.wfile.write(block)
                        self._count(f, len(block))
                        pos += len(block)
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True

        def _count(self, f: HubFile, n: int) -> None:
            with hub._lock:
                hub.bytes_served[f.sha256] = hub.bytes_served.get(f.sha256, 0) + n

    return Handler


# --- the CLI against it: fixtures and helpers for the tests ------------------------------------


@pytest.fixture()
def hub(tmp_path: Path):
    with FakeHub(tmp_path / "fake-hub") as h:
        yield h


@pytest.fixture()
def env(hub: FakeHub, tmp_path: Path, isolated_home: Path) -> dict[str, str]:
    """The environment a user's shell would have: the hub at HF_ENDPOINT, fresh caches."""
    e = {
        **os.environ,
        "HF_ENDPOINT": hub.url,
        "HF_HUB_CACHE": str(tmp_path / "hub-cache"),
        "HF_HOME": str(tmp_path / "hf-home"),
        "LLAMARCH_HOME": str(isolated_home),
        "LLAMARCH_MODELS": str(tmp_path / "models"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    for key in ("HF_HUB_OFFLINE", "HF_TOKEN", "LLAMARCH_DEBUG"):
        e.pop(key, None)
    return e


def llamarch(env: dict[str, str], *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llamarch.cli", *args], env={**env, **extra}, capture_output=True, text=True, timeout=300
    )


def one_line_error(r: subprocess.CompletedProcess[str]) -> str:
    """The single `Error:` line a bad input must give (and a non-zero exit, no traceback)."""
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode != 0, r.stderr
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in r.stderr, r.stderr
    return lines[0]


def pulled_entry(env: dict[str, str], entry_id: str) -> dict:
    """The catalog entry a pull wrote, as TOML data."""
    return tomllib.loads((Path(env["LLAMARCH_HOME"]) / "catalog" / f"{entry_id}.toml").read_text())


def repo_cache(env: dict[str, str], repo: str) -> Path:
    return Path(env["HF_HUB_CACHE"]) / ("models--" + repo.replace("/", "--"))


def model_files(directory: Path) -> list[Path]:
    return (
        [p for p in directory.rglob("*") if p.is_file() and p.stat().st_size > 1_000_000] if directory.exists() else []
    )
