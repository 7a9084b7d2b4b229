"""The Hugging Face hub through huggingface_hub: list a repo, fetch a file into the hub cache,
resumably and verified.

huggingface_hub 2.x throws a partial download away when a download fails. Here a file goes
to the cache's own `blobs/<etag>.incomplete` (the name the hub's cache tools know as an
interrupted download), is resumed with a Range request by the next pull, is hashed, and is
only then renamed to its blob name, where `hf_hub_download` finds it and links it into the
snapshot. A file that was cut or fails its hash is never in a snapshot, so nothing
half-downloaded passes for a model.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .catalog import ProgressFn, record_verified, sha256_file
from .errors import LlamarchError, PullError
from .hub import HubFile, HubRef

LOGIN = "log in with `hf auth login` (or `huggingface-cli login`) or set HF_TOKEN"


@dataclass(frozen=True)
class RepoListing:
    """A repo at one commit: its files with their sizes and hashes."""

    ref: HubRef
    commit: str
    files: list[HubFile]
    license: str = ""


def endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def list_repo(ref: HubRef) -> RepoListing:
    """The repo's files at its current commit (resolving `main` also records it in the cache)."""
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        commit = api.resolve_revision(ref.repo).resolved
        info = api.model_info(ref.repo, revision=commit, files_metadata=True)
    except Exception as e:
        raise hub_error(e, ref) from None
    files = [
        HubFile(s.rfilename, (s.lfs.size if s.lfs else s.size) or 0, s.lfs.sha256 if s.lfs else "", s.blob_id or "")
        for s in info.siblings or []
    ]
    license_ = getattr(info.card_data, "license", None) if info.card_data else None
    return RepoListing(ref, commit, files, license_ if isinstance(license_, str) else "")


def hub_error(e: BaseException, ref: HubRef, file: str | None = None) -> BaseException:
    """One line for a failed hub call (the error itself when it is not the hub's)."""
    import httpx2
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
        RevisionResolutionError,
    )

    if isinstance(e, LlamarchError):
        return e
    if isinstance(e, GatedRepoError):
        return PullError(f"{ref.bare} is gated: accept its terms at {endpoint()}/{ref.repo}, then {LOGIN}")
    if isinstance(e, RepositoryNotFoundError):
        return PullError(
            f"no model {ref.bare} on the Hugging Face hub ({endpoint()}): check the name "
            f"(a private repo needs you to {LOGIN})"
        )
    if isinstance(e, RevisionNotFoundError):
        return PullError(f"{ref.bare} has no such revision: {e}".splitlines()[0])
    if isinstance(e, EntryNotFoundError):
        return PullError(f"{ref.bare} has no file {file!r} (any more): run the pull again")
    if isinstance(e, (OfflineModeIsEnabled, RevisionResolutionError, httpx2.TransportError)):
        return PullError(
            f"cannot reach the Hugging Face hub at {endpoint()} for {ref.bare}: "
            f"run `llamarch models pull {ref}` when online (models pulled earlier still run offline)"
        )
    if isinstance(e, HfHubHTTPError):
        status = e.response.status_code if e.response is not None else "?"
        return PullError(f"the Hugging Face hub answered {status} for {ref.bare}: {str(e).strip().splitlines()[0]}")
    return e


# --- one file, resumable and verified --------------------------------------------------


def git_blob_sha1(path: Path) -> str:
    """The git object id of a file (how the hub names a file not stored with LFS)."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())  # noqa: S324 - git's id, not security
    with path.open("rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _progress_bar(progress: ProgressFn | None, description: str) -> type:
    """A tqdm stand-in for huggingface_hub's `http_get` that reports to `progress` (and prints nothing)."""

    class Bar:
        def __init__(self, *args: Any, total: int | None = None, initial: int = 0, **kwargs: Any):
            self.total, self.n = total or 0, initial
            self._report()

        def _report(self) -> None:
            if progress:
                progress(description, self.n, self.total)

        def __enter__(self) -> Bar:
            return self

        def __exit__(self, *exc: Any) -> None:
            return None

        def update(self, n: float | None = 1) -> None:
            self.n += int(n or 0)
            self._report()

        def close(self) -> None:
            return None

    return Bar


def _storage(repo: str) -> Path:
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    return Path(constants.HF_HUB_CACHE).expanduser() / repo_folder_name(repo_id=repo, repo_type="model")


def _lock(repo: str, etag: str) -> Any:
    """A lock against a second llamarch appending to the same partial file."""
    from filelock import FileLock
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    locks = Path(constants.HF_HUB_CACHE).expanduser() / ".locks" / repo_folder_name(repo_id=repo, repo_type="model")
    locks.mkdir(parents=True, exist_ok=True)
    return FileLock(str(locks / f"{etag}.llamarch.lock"))


def _reason(e: BaseException) -> str:
    """Why a transfer stopped, in a few words."""
    import httpx2

    if isinstance(e, httpx2.RemoteProtocolError):
        return "the connection was cut"
    if isinstance(e, httpx2.TimeoutException):
        return "the server stopped sending"
    if isinstance(e, httpx2.ConnectError):
        return "cannot connect"
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


@contextlib.contextmanager
def _quiet_retries() -> Iterator[None]:
    """huggingface_hub logs each retry of a cut transfer; llamarch says what happened in one line
    (HF_HUB_VERBOSITY or LLAMARCH_DEBUG keeps its logs)."""
    logger = logging.getLogger("huggingface_hub")
    level = logger.level
    if not (os.environ.get("HF_HUB_VERBOSITY") or os.environ.get("LLAMARCH_DEBUG")):
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _check(path: Path, remote: HubFile, progress: ProgressFn | None) -> str | None:
    """None when `path` has the remote file's hash, else what it hashes to."""
    if remote.sha256:
        actual = sha256_file(path, progress)
        return None if actual == remote.sha256 else actual
    actual = git_blob_sha1(path)
    return None if actual == remote.blob_id else actual


def _download(url: str, partial: Path, remote: HubFile, same_host: bool, progress: ProgressFn | None) -> None:
    """Append the rest of the file to `partial` (a Range request from its current size)."""
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    headers = build_hf_headers()
    if not same_host:  # a CDN: the token stays on the hub, as huggingface_hub does
        headers.pop("authorization", None)
    have = partial.stat().st_size if partial.exists() else 0
    free = shutil.disk_usage(partial.parent).free
    if free < remote.size - have:
        raise PullError(
            f"not enough disk space in {partial.parent} for {remote.file}: "
            f"{(remote.size - have) / 1e9:.1f} GB needed, {free / 1e9:.1f} GB free"
        )
    with partial.open("ab") as f, _quiet_retries():
        http_get(
            url,
            f,
            resume_size=have,
            headers=headers,
            expected_size=remote.size,
            tqdm_class=_progress_bar(progress, f"downloading {remote.file}"),
        )


def fetch_file(
    ref: HubRef,
    remote: HubFile,
    revision: str,
    progress: ProgressFn | None = None,
    force: bool = False,
    again: str | None = None,
) -> Path:
    """The file in the hub cache's snapshot, downloaded (or resumed) and verified if needed.

    `again` is the command that resumes a cut download (default: pulling `ref` again).
    """
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

    from .catalog import _cached

    cached = _cached(ref.repo, remote.file, revision)
    if cached is not None:
        if not force and (not remote.sha256 or _verified(cached, remote, progress)):
            return cached
        _drop(cached)
    try:
        url = hf_hub_url(ref.repo, remote.file, revision=revision)
        meta = get_hf_file_metadata(url)
        etag = meta.etag or remote.sha256 or remote.blob_id
        blob = _storage(ref.repo) / "blobs" / etag
        blob.parent.mkdir(parents=True, exist_ok=True)
        with _lock(ref.repo, etag):
            if not blob.exists():
                partial = blob.with_name(f"{etag}.incomplete")
                if partial.exists() and partial.stat().st_size > remote.size:
                    partial.unlink()
                try:
                    _download(
                        meta.location, partial, remote, urlparse(meta.location).netloc == urlparse(url).netloc, progress
                    )
                except Exception as e:
                    if isinstance(e, LlamarchError):
                        raise
                    have = partial.stat().st_size if partial.exists() else 0
                    raise PullError(
                        f"the download of {remote.file} stopped at {_mb(have)} of {_mb(remote.size)} ({_reason(e)}): "
                        f"run `{again or f'llamarch models pull {ref}'}` again to resume it"
                    ) from None
                wrong = _check(partial, remote, progress)
                if wrong is not None:
                    partial.unlink()
                    kind, expected = ("sha256", remote.sha256) if remote.sha256 else ("git id", remote.blob_id)
                    raise PullError(
                        f"{remote.file} from {ref.bare} fails its checksum ({kind} {wrong[:12]}…, expected "
                        f"{expected[:12]}…): nothing was installed; pull again, "
                        "and if it fails again the hub's copy is damaged"
                    )
                os.replace(partial, blob)
                if remote.sha256:
                    record_verified(blob, remote.sha256)
        return Path(hf_hub_download(ref.repo, remote.file, revision=revision))
    except PullError:
        raise
    except Exception as e:
        raise hub_error(e, ref, remote.file) from None


def _verified(path: Path, remote: HubFile, progress: ProgressFn | None) -> bool:
    from .catalog import cached_sha256

    return cached_sha256(path, progress) == remote.sha256 and path.stat().st_size == remote.size


def _drop(snapshot_file: Path) -> None:
    """Remove a damaged (or to be re-downloaded) file: its snapshot link and its blob."""
    blob = snapshot_file.resolve()
    snapshot_file.unlink(missing_ok=True)
    if blob != snapshot_file:
        blob.unlink(missing_ok=True)
