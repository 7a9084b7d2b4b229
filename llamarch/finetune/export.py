"""MLX LoRA adapter -> GGUF, for llama.cpp: a LoRA adapter file, or a fused f16 model.

llama.cpp's adapter format: `general.type=adapter`, `adapter.type=lora`,
`adapter.lora.alpha` (llama.cpp scales by alpha / rank), and for each adapted base tensor
`blk.N.<name>.weight` a pair `blk.N.<name>.weight.lora_a` (ggml shape [n_in, r]) and
`.lora_b` ([r, n_out]). MLX keeps `lora_a` as (n_in, r) and `lora_b` as (r, n_out) and
computes x @ a @ b * scale, so the numpy arrays written are a.T (r, n_in) and b.T (n_out, r).
For the `llama` architecture llama.cpp's Q and K rows are permuted for its rotary
embedding; lora_b's rows (the output side) get the same permutation.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..catalog import ProgressFn
from ..errors import LlamarchError, ModelFileError
from ..identity import adapter_base, gguf_identity_kv, read_adapter_meta, read_source
from ..mlx_convert import gguf_name, open_reader, permute_qk, qk_heads

FORMATS = ("gguf-lora", "gguf")


def load_adapter(adapter_dir: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(lora weights as numpy, adapter_config.json, llamarch_adapter.json) of an adapter dir."""
    from safetensors.numpy import load_file

    weights_file = adapter_dir / "adapters.safetensors"
    config_file = adapter_dir / "adapter_config.json"
    if not weights_file.is_file() or not config_file.is_file():
        raise ModelFileError(
            f"{adapter_dir} is not an adapter directory (needs adapters.safetensors and adapter_config.json)"
        )
    config = json.loads(config_file.read_text())
    if config.get("fine_tune_type", "lora") != "lora":
        raise LlamarchError(
            f"{adapter_dir}: only LoRA adapters can be exported (this one is {config.get('fine_tune_type')!r})"
        )
    return load_file(str(weights_file)), config, read_adapter_meta(adapter_dir)


def lora_pairs(weights: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Hugging Face module name -> (lora_a, lora_b)."""
    pairs: dict[str, dict[str, Any]] = {}
    for name, value in weights.items():
        module, _, leaf = name.rpartition(".")
        if leaf not in ("lora_a", "lora_b"):
            raise LlamarchError(f"adapter tensor {name!r} is not a LoRA matrix (lora_a/lora_b)")
        pairs.setdefault(module, {})[leaf] = value
    incomplete = [m for m, p in pairs.items() if len(p) != 2]
    if incomplete:
        raise LlamarchError(f"adapter misses lora_a or lora_b for {incomplete[0]}")
    return {m: (p["lora_a"], p["lora_b"]) for m, p in pairs.items()}


def _out_path(adapter_dir: Path, out: str | os.PathLike[str] | None, suffix: str) -> Path:
    path = Path(out) if out is not None else adapter_dir / f"{adapter_dir.name}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _write_gguf(writer: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    writer.write_header_to_file(path=tmp)
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, path)


def export_gguf_lora(
    adapter_dir: str | os.PathLike[str], out_path: str | os.PathLike[str] | None = None, *, outtype: str = "f32"
) -> Path:
    """Write the adapter as a GGUF LoRA adapter for llama.cpp; return its path.

    Load it with `LLM(base_model, lora_path=path)` (or `Llama(model_path=base.gguf, lora_path=path)`).
    """
    import gguf
    import numpy as np

    adapter_dir = Path(adapter_dir)
    weights, config, meta = load_adapter(adapter_dir)
    base = adapter_base(adapter_dir)
    params = config["lora_parameters"]
    rank, scale = int(params["rank"]), float(params["scale"])
    dtype = {"f32": np.float32, "f16": np.float16}.get(outtype)
    if dtype is None:
        raise LlamarchError(f"unknown outtype {outtype!r}: choose f32 or f16")
    path = _out_path(adapter_dir, out_path, ".gguf")
    writer = gguf.GGUFWriter(path=None, arch=base.architecture)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", scale * rank)
    writer.add_name(f"{base.model} LoRA ({adapter_dir.name})")
    for key, value in gguf_identity_kv(base).items():
        (writer.add_uint32 if isinstance(value, int) else writer.add_string)(key, value)
    writer.add_uint32("llamarch.lora.rank", rank)
    writer.add_uint32("llamarch.lora.steps", int(meta.get("steps") or 0))
    for module, (a, b) in sorted(lora_pairs(weights).items()):
        target = gguf_name(f"{module}.weight")
        lora_a = np.ascontiguousarray(a.T.astype(dtype))  # (r, n_in): ggml [n_in, r]
        lora_b = b.T  # (n_out, r): ggml [r, n_out]
        heads = qk_heads(f"{module}.weight", base.architecture, base.n_head, base.n_head_kv)
        if heads is not None:
            lora_b = permute_qk(lora_b, heads)
        writer.add_tensor(f"{target}.lora_a", lora_a)
        writer.add_tensor(f"{target}.lora_b", np.ascontiguousarray(lora_b.astype(dtype)))
    _write_gguf(writer, path)
    return path


# --- fused model ---------------------------------------------------------------------------


def _copy_metadata(writer: Any, reader: Any, skip: set[str]) -> None:
    """Copy every metadata key of a GGUF reader into a writer, except `skip`."""
    import gguf

    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key in skip:
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, field.contents(), vtype, sub_type=sub)


def export_fused_gguf(
    adapter_dir: str | os.PathLike[str],
    out_path: str | os.PathLike[str] | None = None,
    *,
    progress: ProgressFn | None = None,
) -> Path:
    """Write base + adapter fused into one f16 GGUF model (norms stay f32); return its path."""
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    adapter_dir = Path(adapter_dir)
    weights, config, meta = load_adapter(adapter_dir)
    base = adapter_base(adapter_dir)
    model_dir = Path(meta.get("model_dir") or config.get("model", ""))
    source = read_source(model_dir)
    if source is None or not Path(source.get("gguf", "")).is_file():
        raise LlamarchError(
            f"the base of {adapter_dir} ({model_dir}) was not converted from a GGUF file that is still "
            "here, so its tokenizer and metadata cannot be carried over: use --to gguf-lora"
        )
    scale = float(config["lora_parameters"]["scale"])
    deltas = {f"{m}.weight": scale * (a @ b).T for m, (a, b) in lora_pairs(weights).items()}
    base_weights = load_file(str(model_dir / "model.safetensors"))
    reader = open_reader(Path(source["gguf"]))
    path = _out_path(adapter_dir, out_path, "-fused-f16.gguf")
    writer = gguf.GGUFWriter(path=None, arch=base.architecture)
    _copy_metadata(
        writer,
        reader,
        skip={"general.architecture", "general.name", "general.file_type", "general.quantization_version"},
    )
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_string("general.name", f"{base.model} + {adapter_dir.name} (fused)")
    names = sorted(base_weights)
    for i, name in enumerate(names, 1):
        w = base_weights[name].astype(np.float32)
        if name in deltas:
            w = w + deltas[name]
        heads = qk_heads(name, base.architecture, base.n_head, base.n_head_kv)
        if heads is not None:
            w = permute_qk(w, heads)
        dtype = np.float32 if w.ndim == 1 else np.float16
        writer.add_tensor(gguf_name(name), np.ascontiguousarray(w.astype(dtype)))
        if progress:
            progress("fusing tensors", i, len(names))
    _write_gguf(writer, path)
    return path


def export_adapter(
    adapter_dir: str | os.PathLike[str], to: str, out_path: str | os.PathLike[str] | None = None, **kwargs: Any
) -> Path:
    """`llamarch export`: dispatch on the target format."""
    if to == "gguf-lora":
        return export_gguf_lora(adapter_dir, out_path, **kwargs)
    if to == "gguf":
        return export_fused_gguf(adapter_dir, out_path, **kwargs)
    raise LlamarchError(f"unknown export format {to!r}: choose one of {', '.join(FORMATS)}")
