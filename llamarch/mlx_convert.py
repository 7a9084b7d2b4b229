"""GGUF -> MLX (Hugging Face layout): dequantize, rename, un-permute, rebuild the tokenizer.

The output is a plain Hugging Face model directory (config.json, model.safetensors,
tokenizer.json, tokenizer_config.json) that mlx-lm loads, plus `llamarch.json`, which
records the GGUF file it came from. It is cached under `<user dir>/mlx/<name>-<sha12>/`.
It sits below the engines: the MLX engine converts a GGUF model on first use.

Training on these weights means training on exactly what llama.cpp runs (the quantized
weights, dequantized), so an adapter exported back to GGUF fits its base.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from . import paths
from .catalog import ProgressFn, resolve
from .errors import LlamarchError, ModelFileError
from .identity import SOURCE_FILE, BaseIdentity, base_identity, gguf_hparams

CONVERTER_VERSION = 1
MLX_SNAPSHOT_FILES = ["*.json", "model*.safetensors"]  # config, tokenizer, weights

# GGUF tensor name (after `blk.N.`) -> Hugging Face name (after `model.layers.N.`).
BLOCK_TENSORS = {
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
GLOBAL_TENSORS = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "output": "lm_head",
}
# The inverse maps, for going back (adapters, fused models).
HF_BLOCK_TENSORS = {v: k for k, v in BLOCK_TENSORS.items()}
HF_GLOBAL_TENSORS = {v: k for k, v in GLOBAL_TENSORS.items()}


def hf_config(meta: dict[str, Any], arch: str, n_vocab: int, tied: bool) -> dict[str, Any]:
    """config.json for mlx-lm (the Hugging Face field names)."""
    hp = gguf_hparams(meta, arch)
    if hp["rope_scaling"] not in (None, "none"):
        raise LlamarchError(f"rope scaling {hp['rope_scaling']!r} is not supported by the MLX converter yet")
    config: dict[str, Any] = {
        "model_type": arch,
        "architectures": ["LlamaForCausalLM" if arch == "llama" else "Qwen2ForCausalLM"],
        "hidden_size": hp["n_embd"],
        "num_hidden_layers": hp["n_layers"],
        "intermediate_size": hp["n_ff"],
        "num_attention_heads": hp["n_head"],
        "num_key_value_heads": hp["n_head_kv"],
        "rms_norm_eps": hp["eps"],
        "rope_theta": hp["rope_theta"],
        "max_position_embeddings": hp["n_ctx"],
        "vocab_size": n_vocab,
        "tie_word_embeddings": tied,
    }
    if hp["head_dim"] and int(hp["head_dim"]) != hp["n_embd"] // hp["n_head"]:
        config["head_dim"] = int(hp["head_dim"])
    eos = meta.get("tokenizer.ggml.eos_token_id")
    bos = meta.get("tokenizer.ggml.bos_token_id")
    if eos is not None:
        config["eos_token_id"] = int(eos)
    if bos is not None:
        config["bos_token_id"] = int(bos)
    return config


# --- Q/K permutation ---------------------------------------------------------------------
# llama.cpp stores the `llama` architecture's Q and K rows reordered for its interleaved
# rotary embedding: per head, rows (0, d/2, 1, d/2+1, ...) instead of (0, 1, ..., d-1).


def permute_qk(w: Any, n_head: int) -> Any:
    """Hugging Face layout -> llama.cpp layout (rows of each head interleaved)."""
    shape = w.shape
    return w.reshape(n_head, 2, shape[0] // n_head // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


def unpermute_qk(w: Any, n_head: int) -> Any:
    """llama.cpp layout -> Hugging Face layout (the inverse of `permute_qk`)."""
    shape = w.shape
    return w.reshape(n_head, shape[0] // n_head // 2, 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


def qk_heads(name: str, arch: str, n_head: int, n_head_kv: int) -> int | None:
    """How many heads to (un)permute a Hugging Face tensor by, or None if it is not permuted."""
    if arch != "llama":
        return None
    if name.endswith(("self_attn.q_proj.weight", "self_attn.q_proj.bias")):
        return n_head
    if name.endswith(("self_attn.k_proj.weight", "self_attn.k_proj.bias")):
        return n_head_kv
    return None


def hf_name(gguf_name: str) -> str:
    """`blk.3.attn_q.weight` -> `model.layers.3.self_attn.q_proj.weight`."""
    parts = gguf_name.split(".")
    if parts[0] == "blk" and len(parts) == 4 and parts[2] in BLOCK_TENSORS:
        return f"model.layers.{parts[1]}.{BLOCK_TENSORS[parts[2]]}.{parts[3]}"
    if len(parts) == 2 and parts[0] in GLOBAL_TENSORS:
        return f"{GLOBAL_TENSORS[parts[0]]}.{parts[1]}"
    raise LlamarchError(f"GGUF tensor {gguf_name!r} has no Hugging Face counterpart in the MLX converter")


def gguf_name(hf: str) -> str:
    """`model.layers.3.self_attn.q_proj.weight` -> `blk.3.attn_q.weight` (the inverse of `hf_name`)."""
    stem, _, leaf = hf.rpartition(".")
    if stem.startswith("model.layers."):
        _, _, rest = stem.partition("model.layers.")
        layer, _, module = rest.partition(".")
        if module in HF_BLOCK_TENSORS:
            return f"blk.{layer}.{HF_BLOCK_TENSORS[module]}.{leaf}"
    if stem in HF_GLOBAL_TENSORS:
        return f"{HF_GLOBAL_TENSORS[stem]}.{leaf}"
    raise LlamarchError(f"tensor {hf!r} has no GGUF counterpart")


# --- reading GGUF ---------------------------------------------------------------------


def read_metadata(reader: Any) -> dict[str, Any]:
    """All metadata of a `gguf.GGUFReader`, as Python values (long arrays included)."""
    meta: dict[str, Any] = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        try:
            meta[key] = field.contents()
        except Exception:  # an exotic value type: not needed for conversion
            continue
    return meta


def open_reader(path: Path) -> Any:
    try:
        import gguf
    except ImportError:
        from .errors import MissingExtraError

        raise MissingExtraError("GGUF conversion (the gguf package)", "mlx") from None
    try:
        return gguf.GGUFReader(path)
    except Exception as e:
        raise ModelFileError(f"{path} cannot be read as GGUF ({e}): download the model again") from None


def dequantized_tensors(reader: Any, arch: str, hp: dict[str, Any], dtype: str, progress: ProgressFn | None):
    """Yield (Hugging Face name, numpy array) for every tensor, in the Hugging Face layout."""
    import numpy as np
    from gguf.quants import dequantize

    total = len(reader.tensors)
    for i, t in enumerate(reader.tensors, 1):
        name = hf_name(t.name)
        try:
            array = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
        except NotImplementedError as e:
            raise LlamarchError(
                f"tensor {t.name}: quantization {t.tensor_type.name} cannot be dequantized ({e})"
            ) from None
        heads = qk_heads(name, arch, hp["n_head"], hp["n_head_kv"])
        if heads is not None:
            array = unpermute_qk(array, heads)
        yield name, np.ascontiguousarray(array.astype(dtype))
        if progress:
            progress("converting tensors", i, total)


# --- the conversion ---------------------------------------------------------------------


def mlx_cache_dir(identity: BaseIdentity) -> Path:
    stem = identity.model.removesuffix(".gguf").replace("/", "_")
    return paths.user_dir() / "mlx" / f"{stem}-{identity.gguf_sha256[:12]}"


def is_converted(directory: Path) -> bool:
    marker = directory / SOURCE_FILE
    if not (directory / "config.json").is_file() or not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()).get("converter_version") == CONVERTER_VERSION
    except (OSError, ValueError):
        return False


def convert_gguf(
    model: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    dtype: str = "float16",
    force: bool = False,
    progress: ProgressFn | None = None,
) -> Path:
    """Convert a catalog id or GGUF path to an MLX model directory; return the directory.

    Without `out_dir` the result is cached in the user directory and reused.
    """
    resolved = resolve(model, progress)
    identity = base_identity(resolved, progress)
    target = Path(out_dir) if out_dir is not None else mlx_cache_dir(identity)
    if is_converted(target) and not force:
        return target
    reader = open_reader(resolved.path)
    meta = read_metadata(reader)
    arch = identity.architecture
    hp = gguf_hparams(meta, arch)
    names = {t.name for t in reader.tensors}
    tied = "output.weight" not in names
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        from safetensors.numpy import save_file

        from .gguf_tokenizer import write_tokenizer

        write_tokenizer({**meta, "context_length": hp["n_ctx"]}, tmp)
        weights = dict(dequantized_tensors(reader, arch, hp, dtype, progress))
        save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "mlx"})
        del weights
        config = hf_config(meta, arch, identity.n_vocab, tied)
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        source = {
            "converter_version": CONVERTER_VERSION,
            "gguf": str(resolved.path),
            "base": identity.to_dict(),
            "dtype": dtype,
        }
        (tmp / SOURCE_FILE).write_text(json.dumps(source, indent=2))
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def hub_mlx_snapshot(model: str) -> Path | None:
    """The catalog model's `[sources.mlx]` repo, if it is already in the Hugging Face cache."""
    from .catalog import load_catalog

    entry = load_catalog().get(model)
    if entry is None or not entry.mlx_repo:
        return None
    try:
        from huggingface_hub import snapshot_download

        # Only what MLX loads: huggingface_hub 2.x refuses a cached snapshot that lacks any file matched
        # (the whole repo by default), and the MLX files are all that `models pull` or mlx-lm fetch.
        return Path(snapshot_download(entry.mlx_repo, local_files_only=True, allow_patterns=MLX_SNAPSHOT_FILES))
    except Exception:  # not cached (or no hub library): the GGUF route is the answer
        return None


def mlx_model_dir(model: str | os.PathLike[str] | None, progress: ProgressFn | None = None) -> Path:
    """An MLX model directory for a model spec.

    A directory with config.json is used as it is; a catalog id or GGUF path is converted
    (once, cached); a catalog id whose GGUF is not installed falls back to its MLX repo
    in the Hugging Face cache.
    """
    from .catalog import DEFAULT_MODEL, MODEL_ENV
    from .errors import ModelNotInstalledError

    spec = os.fspath(model) if model else (os.environ.get(MODEL_ENV) or DEFAULT_MODEL)
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelFileError(f"{path} is not an MLX model directory (it has no config.json)")
        return path
    try:
        return convert_gguf(spec, progress=progress)
    except ModelNotInstalledError:
        snapshot = hub_mlx_snapshot(spec)
        if snapshot is not None:
            return snapshot
        raise
