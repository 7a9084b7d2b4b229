"""Model identity and adapter checks: which weights a model or an adapter is, checked before use.

Results of a model (answers, verdicts, evaluations) are keyed by its `ModelIdentity`: the
catalog's sha256 of its GGUF when the catalog has the model, else the file's sha256 (hashed
once per file version), with the sha256 of its adapter; a served or MLX model by its backend
and spec. Older keys (distill's file name and size) are its aliases, so stored results are
still found.

A GGUF base is known by its catalog id (or file name), its sha256 and its shape; an MLX
directory by the GGUF it was converted from (`llamarch.json`), else by its config.json. An
adapter directory (`llamarch train`) records its base in `llamarch_adapter.json`; a GGUF
adapter (`llamarch export --to gguf-lora`) as `llamarch.base.*` metadata. Applying an
adapter to another base is refused with one line naming both. The engines, the trainer
and the exporter all check through here.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .catalog import ProgressFn, ResolvedModel, cached_sha256, installed_path, load_catalog, resolve, sha256_file
from .errors import LlamarchError, ModelFileError
from .gguf_file import validate

SUPPORTED_ARCHITECTURES = ("llama", "qwen2")
SOURCE_FILE = "llamarch.json"  # written by the converter into each MLX directory it makes


def infer_backend(model: str | None) -> str:
    """The engine a model spec implies: `openai:` specs, MLX directories, else llama.cpp."""
    if model and model.startswith("openai:"):
        return "openai"
    if model and Path(model).is_dir() and (Path(model) / "config.json").exists():
        return "mlx"
    if model and "/" not in model and not model.endswith(".gguf"):
        entry = load_catalog().get(model)
        if entry is not None:
            return entry.backend
    return "llamacpp"


# --- what results are keyed by ------------------------------------------------------------


@dataclass(frozen=True)
class ModelIdentity:
    """Which weights produced a result: what stored results are keyed by and reported with."""

    model: str  # catalog id or file name; the spec of a model that is no local GGUF
    backend: str
    sha256: str | None = None
    path: str | None = None
    adapter: str | None = None
    adapter_sha256: str | None = None
    spec: str = field(default="", compare=False, repr=False)  # as given: older keys used it

    def key(self) -> list[str | None]:
        """The identity in a result key: the weights' sha256 (else backend:spec), the adapter's."""
        return [self.sha256 or f"{self.backend}:{self.model}", self.adapter_sha256 or self.adapter]

    def key_forms(self) -> list[Any]:
        """`key()`, then the forms older versions keyed results by (see `llamarch.store.KeyPart`)."""
        legacy_distill: dict[str, Any] = {"backend": self.backend, "model": self.spec}  # file name and size
        if Path(self.spec).is_file():
            legacy_distill.update(model=Path(self.spec).name, bytes=Path(self.spec).stat().st_size)
        if self.adapter_sha256:
            legacy_distill["lora_sha256"] = self.adapter_sha256
        legacy_fields = {k: v for k, v in asdict(self).items() if k != "spec"}  # distill --check python's adapters
        return [self.key(), legacy_distill, legacy_fields, self.spec]  # the spec: benchmarks' judge scores


def identify(
    model: str | os.PathLike[str] | None, backend: str | None = None, adapter: str | os.PathLike[str] | None = None
) -> ModelIdentity:
    """The identity of a catalog id, GGUF path or other model spec, with an optional adapter file."""
    spec = os.fspath(model) if model else ""
    backend = backend or infer_backend(spec)
    adapter = os.fspath(adapter) if adapter else None
    adapter_sha = sha256_file(Path(adapter)) if adapter and Path(adapter).is_file() else None
    if backend != "llamacpp":
        return ModelIdentity(spec, backend, adapter=adapter, adapter_sha256=adapter_sha, spec=spec)
    entry = load_catalog().get(spec)
    if entry is not None and entry.backend == "llamacpp" and entry.sha256:  # known without reading the file
        found = installed_path(entry)
        path = str(found[0]) if found else None
        return ModelIdentity(entry.id, backend, entry.sha256, path, adapter, adapter_sha, spec)
    resolved = resolve(spec or None)
    sha = resolved.entry.sha256 if resolved.entry else cached_sha256(resolved.path)
    return ModelIdentity(resolved.display_name, backend, sha, str(resolved.path), adapter, adapter_sha, spec)


@dataclass(frozen=True)
class BaseIdentity:
    """What an adapter was trained on: enough to refuse it on another base."""

    model: str  # catalog id, or the GGUF file name
    gguf_sha256: str
    architecture: str
    n_layers: int
    n_embd: int
    n_vocab: int
    n_head: int
    n_head_kv: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BaseIdentity:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def gguf_hparams(meta: dict[str, Any], arch: str) -> dict[str, Any]:
    def get(key: str, default: Any = None) -> Any:
        value = meta.get(f"{arch}.{key}", default)
        if value is None:
            raise ModelFileError(f"GGUF metadata lacks {arch}.{key}: the file is incomplete or not a {arch} model")
        return value

    n_head = int(get("attention.head_count"))
    return {
        "n_layers": int(get("block_count")),
        "n_embd": int(get("embedding_length")),
        "n_ff": int(get("feed_forward_length")),
        "n_head": n_head,
        "n_head_kv": int(get("attention.head_count_kv", n_head)),
        "eps": float(get("attention.layer_norm_rms_epsilon")),
        "rope_theta": float(get("rope.freq_base", 10000.0)),
        "n_ctx": int(get("context_length", 4096)),
        "head_dim": meta.get(f"{arch}.attention.key_length"),
        "rope_scaling": meta.get(f"{arch}.rope.scaling.type"),
    }


def base_identity(resolved: ResolvedModel, progress: ProgressFn | None = None) -> BaseIdentity:
    """The identity of a GGUF base model (its sha256 is cached per file version)."""
    meta = resolved.header.metadata
    arch = resolved.header.architecture or "?"
    check_architecture(arch, resolved.path)
    hp = gguf_hparams(meta, arch)
    sha = resolved.entry.sha256 if resolved.entry else cached_sha256(resolved.path, progress)
    embd = next((t for t in resolved.header.tensors if t.name == "token_embd.weight"), None)
    n_vocab = int(embd.shape[1]) if embd else len(meta.get("tokenizer.ggml.tokens") or [])
    return BaseIdentity(
        model=resolved.display_name,
        gguf_sha256=sha,
        architecture=arch,
        n_layers=hp["n_layers"],
        n_embd=hp["n_embd"],
        n_vocab=n_vocab,
        n_head=hp["n_head"],
        n_head_kv=hp["n_head_kv"],
    )


def check_architecture(arch: str | None, where: Path | str) -> None:
    if arch not in SUPPORTED_ARCHITECTURES:
        raise LlamarchError(
            f"{where}: architecture {arch!r} is not supported for MLX conversion and fine-tuning: "
            f"supported are {', '.join(SUPPORTED_ARCHITECTURES)}"
        )


def read_source(directory: Path) -> dict[str, Any] | None:
    """What `convert_gguf` recorded about a converted directory's GGUF origin, if anything."""
    try:
        return json.loads((Path(directory) / SOURCE_FILE).read_text())
    except (OSError, ValueError):
        return None


def mlx_identity(directory: Path, config: dict[str, Any]) -> BaseIdentity:
    """The base identity of an MLX directory: from its GGUF origin, else from config.json."""
    source = read_source(directory)
    if source and "base" in source:
        return BaseIdentity.from_dict(source["base"])
    return BaseIdentity(
        model=directory.name,
        gguf_sha256="",
        architecture=config.get("model_type", "?"),
        n_layers=int(config.get("num_hidden_layers", 0)),
        n_embd=int(config.get("hidden_size", 0)),
        n_vocab=int(config.get("vocab_size", 0)),
        n_head=int(config.get("num_attention_heads", 0)),
        n_head_kv=int(config.get("num_key_value_heads", config.get("num_attention_heads", 0))),
    )


# --- adapters ------------------------------------------------------------------------------

ADAPTER_META = "llamarch_adapter.json"
GGUF_KEY = "llamarch.base."
SHAPE_FIELDS = ("architecture", "n_layers", "n_embd", "n_vocab", "n_head", "n_head_kv")


class AdapterMismatchError(LlamarchError):
    """An adapter made for one base model, applied to another."""


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False))
    os.replace(tmp, path)


def read_adapter_meta(adapter_dir: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(adapter_dir) / ADAPTER_META
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelFileError(f"{adapter_dir} is not a llamarch adapter directory (no {ADAPTER_META})") from None
    except (OSError, ValueError) as e:
        raise ModelFileError(f"{path} cannot be read ({e}): train the adapter again") from None


def adapter_base(adapter_dir: str | os.PathLike[str]) -> BaseIdentity:
    return BaseIdentity.from_dict(read_adapter_meta(adapter_dir)["base"])


def gguf_identity_kv(identity: BaseIdentity) -> dict[str, Any]:
    """The identity as GGUF metadata (strings and integers)."""
    return {GGUF_KEY + k: v for k, v in identity.to_dict().items()}


def identity_from_gguf_metadata(meta: dict[str, Any]) -> dict[str, Any] | None:
    found = {k[len(GGUF_KEY) :]: v for k, v in meta.items() if k.startswith(GGUF_KEY)}
    return found or None


def mismatch(stored: dict[str, Any], actual: BaseIdentity) -> str | None:
    """Why an adapter made for `stored` does not fit `actual`, or None when it does."""
    diffs = [
        f"{k} {stored.get(k)} != {getattr(actual, k)}"
        for k in SHAPE_FIELDS
        if k in stored and str(stored[k]) != str(getattr(actual, k))
    ]
    if diffs:
        return ", ".join(diffs)
    if stored.get("gguf_sha256") and actual.gguf_sha256 and stored["gguf_sha256"] != actual.gguf_sha256:
        return f"weights differ (sha256 {str(stored['gguf_sha256'])[:12]}… != {actual.gguf_sha256[:12]}…)"
    return None


def check_adapter_base(
    adapter: str | os.PathLike[str], actual: BaseIdentity | None, *, stored: dict[str, Any] | None = None
) -> None:
    """Raise AdapterMismatchError when the adapter was made for another base than `actual`.

    `stored` is the adapter's recorded base (read from the adapter directory when omitted);
    an adapter without a record, or a base without an identity, is not checked.
    """
    if actual is None:
        return
    if stored is None:
        meta_file = Path(adapter) / ADAPTER_META
        if not meta_file.is_file():
            return
        stored = read_adapter_meta(adapter).get("base")
    if not stored:
        return
    if (why := mismatch(stored, actual)) is not None:
        raise AdapterMismatchError(
            f"adapter {adapter} was made for {stored.get('model')!r}, not {actual.model!r} ({why}): "
            f"load it on {stored.get('model')!r}, or train and export it again for this model"
        )


def check_gguf_adapter(
    adapter_path: str | os.PathLike[str], base_path: str | os.PathLike[str], base_model: str | None = None
) -> None:
    """Check a GGUF LoRA adapter's stored base against a GGUF base file, before llama.cpp loads it."""
    adapter = validate(adapter_path)
    stored = identity_from_gguf_metadata(adapter.metadata)
    base = validate(base_path)
    arch = adapter.metadata.get("general.architecture")
    if arch and base.architecture and arch != base.architecture:
        raise AdapterMismatchError(
            f"adapter {adapter_path} is for architecture {arch!r} but {Path(base_path).name} is "
            f"{base.architecture!r}: load it on the model it was trained for"
        )
    if not stored or base.architecture not in SUPPORTED_ARCHITECTURES:
        return
    entry = load_catalog().get(base_model) if base_model else None
    actual = base_identity(ResolvedModel(Path(base_path), entry, base))
    check_adapter_base(adapter_path, actual, stored=stored)
