"""`llamarch models pull hf.co/OWNER/REPO[:QUANT]`: a GGUF (or MLX) model from the hub, made a
catalog model.

The weights stay in the Hugging Face hub cache; nothing is copied to `$LLAMARCH_MODELS`. The
entry written to `$LLAMARCH_HOME/catalog/<id>.toml` records which files of which commit, their
sizes and sha256s as the hub reported them, and what the GGUF header says (architecture, chat
template, context length). From then on the id works like any catalog id, offline too.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from . import paths
from .catalog import (
    ModelEntry,
    ProgressFn,
    cached_sha256,
    check_installed,
    get_entry,
    hub_repo,
    installed_path,
    load_catalog,
)
from .errors import PullError
from .gguf_file import validate
from .hub import GGUFChoice, HubFile, HubRef, base_id, choose_gguf, hub_offline, unique_id
from .hub_fetch import RepoListing, fetch_file, list_repo

# What an MLX model directory needs: config, weights, tokenizer (no README, images, GGUF or code).
MLX_PATTERNS = ["*.json", "*.safetensors", "*.jinja", "*.model", "*.tiktoken", "*.txt"]


def _command(ref: HubRef, file: str | None, backend: str) -> str:
    return (
        f"llamarch models pull {ref}"
        + (f" --file {file}" if file else "")
        + (" --backend mlx" if backend == "mlx" else "")
    )


def pulled_entry(ref: HubRef, file: str | None = None, backend: str = "llamacpp") -> ModelEntry | None:
    """The model an earlier pull of this very reference (and --file) wrote, if any."""
    for e in load_catalog().values():
        if not e.source or (e.backend == "mlx") != (backend == "mlx"):
            continue
        if (hub_repo(e) or "").lower() != ref.repo.lower():
            continue
        if file is not None:
            names = {p.file for p in e.hf.parts} | {e.hf.file} if e.hf else set()
            if file in names or file in {n.rsplit("/", 1)[-1] for n in names}:
                return e
        elif str(ref).lower() in (s.lower() for s in (e.source, *e.aliases)):
            return e
    return None


def pull_ref(
    ref: HubRef,
    *,
    file: str | None = None,
    backend: str = "llamacpp",
    force: bool = False,
    progress: ProgressFn | None = None,
) -> tuple[ModelEntry, Path, bool]:
    """Pull a model from the hub; return its entry, its path and whether it was there already."""
    if backend == "mlx" and (ref.quant or file):
        raise PullError(f"an MLX repo is one model: pull {ref.bare} --backend mlx without :QUANT or --file")
    existing = pulled_entry(ref, file, backend)
    if existing is not None and not force and installed_path(existing) is not None:
        return existing, check_installed(existing, progress), True
    if hub_offline():
        raise PullError(
            f"{ref} is not in the Hugging Face cache and HF_HUB_OFFLINE is set: "
            f"run `{_command(ref, file, backend)}` when online"
        )
    listing = list_repo(ref)
    if backend == "mlx":
        entry_id = _pull_mlx(listing, force, progress)
    else:
        entry_id = _pull_gguf(listing, file, force, progress)
    entry = get_entry(entry_id)
    return entry, check_installed(entry, progress), False


def fetch_entry(entry: ModelEntry, progress: ProgressFn | None = None, force: bool = False) -> Path:
    """(Re)fetch a catalog model's files from the hub, checked against its entry's hashes."""
    again = f"llamarch models pull {entry.id}"
    if entry.backend == "mlx":
        ref = HubRef(entry.mlx_repo or "")
        for f in entry.mlx_files:
            fetch_file(ref, f, entry.mlx_revision or "main", progress, force, again=again)
        return check_installed(entry, progress)
    assert entry.hf is not None
    ref = HubRef(entry.hf.repo)
    parts = entry.hf.parts or (HubFile(entry.hf.file, entry.size, entry.sha256),)
    fetched = [fetch_file(ref, p, entry.hf.revision or "main", progress, force, again=again) for p in parts]
    return fetched[0]


# --- GGUF ---------------------------------------------------------------------------------


def _identity(e: ModelEntry) -> str:
    """What makes two pulled entries the same model ("" for entries written by hand)."""
    if not e.source:
        return ""
    if e.backend == "mlx":
        return f"{(e.mlx_repo or '').lower()}@mlx"
    return f"{e.hf.repo.lower()}/{e.hf.file}" if e.hf else ""


def _choose_id(ref: HubRef, choice: GGUFChoice | None, identity: str) -> str:
    taken = {e.id: _identity(e) for e in load_catalog().values()}
    for entry_id, held in taken.items():
        if held == identity:
            return entry_id  # pulled before: the same id
    return unique_id(base_id(ref, choice), ref.repo.split("/")[0], taken, identity)


def _pull_gguf(listing: RepoListing, file: str | None, force: bool, progress: ProgressFn | None) -> str:
    ref = listing.ref
    choice = choose_gguf(listing.files, ref, file)
    fetched = [fetch_file(ref, f, listing.commit, progress, force) for f in choice.files]
    parts = [
        HubFile(f.file, f.size, f.sha256 or cached_sha256(path, progress)) for f, path in zip(choice.files, fetched)
    ]
    header = validate(fetched[0])
    source = f"{ref.bare}:{choice.quant}" if choice.quant else ref.bare
    entry_id = _choose_id(ref, choice, f"{ref.repo.lower()}/{choice.first.file}")
    aliases = [] if file or ref.quant or source == ref.bare else [ref.bare]
    fields: dict[str, Any] = {
        "id": entry_id,
        "name": ref.repo.split("/")[1],
        "description": f"{choice.first.file} from {ref.bare}",
        "source": source,
        "aliases": aliases,
        "architecture": header.architecture or "",
        "quantization": choice.quant or "",
        "context_length": int(header.context_length or 0),
        "chat_format": "gguf" if header.chat_template else "none",
        "chat_template": header.chat_template,
        "license": listing.license,
        "filename": choice.first.file.rsplit("/", 1)[-1],
        "size": parts[0].size,
        "sha256": parts[0].sha256,
    }
    hf: dict[str, Any] = {"repo": ref.repo, "file": choice.first.file, "revision": listing.commit}
    if len(parts) > 1:
        hf["parts"] = [{"file": p.file, "size": p.size, "sha256": p.sha256} for p in parts]
    write_entry(entry_id, fields, {"sources.hf": hf})
    return entry_id


# --- MLX ----------------------------------------------------------------------------------


def _pull_mlx(listing: RepoListing, force: bool, progress: ProgressFn | None) -> str:
    from huggingface_hub.utils import filter_repo_objects

    ref = listing.ref
    files = sorted(
        filter_repo_objects(listing.files, allow_patterns=MLX_PATTERNS, key=lambda f: f.file), key=lambda f: f.size
    )
    names = [f.file for f in files]
    if "config.json" not in names or not any(n.endswith(".safetensors") for n in names):
        gguf = any(f.file.lower().endswith(".gguf") for f in listing.files)
        hint = ": it has GGUF files, pull it without --backend mlx" if gguf else ""
        raise PullError(f"{ref.bare} is not an MLX model (no config.json and .safetensors weights){hint}")
    fetched = [fetch_file(ref, f, listing.commit, progress, force) for f in files]
    recorded = [HubFile(f.file, f.size, f.sha256 or cached_sha256(path)) for f, path in zip(files, fetched)]
    try:
        config = json.loads(fetched[names.index("config.json")].read_text(encoding="utf-8"))
    except ValueError as e:
        raise PullError(f"config.json of {ref.bare} is not JSON ({e}): this is not a usable MLX model") from None
    quant = config.get("quantization") or config.get("quantization_config") or {}
    entry_id = _choose_id(ref, None, f"{ref.repo.lower()}@mlx")
    fields: dict[str, Any] = {
        "id": entry_id,
        "name": ref.repo.split("/")[1],
        "description": f"MLX model from {ref.bare}",
        "source": ref.bare,
        "backend": "mlx",
        "architecture": str(config.get("model_type", "")),
        "quantization": f"{quant['bits']}-bit"
        if isinstance(quant, dict) and "bits" in quant
        else str(config.get("torch_dtype") or config.get("dtype") or ""),
        "context_length": int(config.get("max_position_embeddings") or 0),
        "license": listing.license,
        "size": sum(f.size for f in recorded),
    }
    mlx = {
        "repo": ref.repo,
        "revision": listing.commit,
        "files": [{"file": f.file, "size": f.size, "sha256": f.sha256} for f in recorded],
    }
    write_entry(entry_id, fields, {"sources.mlx": mlx})
    return entry_id


# --- the user catalog file ------------------------------------------------------------------


def toml_string(s: str) -> str:
    """A TOML basic string (any text: quotes, backslashes, newlines, control characters)."""
    short = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f"}
    out = [short.get(ch) or (f"\\u{ord(ch):04x}" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch) for ch in s]
    return '"' + "".join(out) + '"'


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, (list, tuple)):
        return "[\n" + "".join(f"  {toml_value(x)},\n" for x in v) + "]" if v else "[]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"no TOML for {type(v).__name__}")


def write_entry(entry_id: str, fields: dict[str, Any], tables: dict[str, dict[str, Any]]) -> Path:
    """Write (atomically) `<user dir>/catalog/<id>.toml`; None values and empty lists are left out."""
    lines = [
        f"# Written by `llamarch models pull` on {time.strftime('%Y-%m-%d')}; "
        f"`llamarch models rm {entry_id}` removes it."
    ]
    lines += [f"{k} = {toml_value(v)}" for k, v in fields.items() if v is not None and v != []]
    for name, table in tables.items():
        lines += ["", f"[{name}]"] + [f"{k} = {toml_value(v)}" for k, v in table.items() if v is not None]
    target = paths.ensure_dir(paths.user_dir() / "catalog") / f"{entry_id}.toml"
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target
