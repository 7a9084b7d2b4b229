"""Average LoRA adapters trained on the same base (a "soup" of training seeds).

Adapters trained from the same data with different seeds each learn the data's signal plus
their own noise; their mean keeps the first and shrinks the second. The mean of k LoRA
deltas is itself a LoRA, exactly: (1/k) sum(A_i @ B_i) = [A_1 .. A_k] @ [B_1 .. B_k]^T / k,
so the soup is an adapter of rank k*r with the same scale, and it runs on MLX and (after
`llamarch export`) on llama.cpp like any other.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import LlamarchError
from ..identity import ADAPTER_META, write_json_atomic
from .export import load_adapter, lora_pairs


def _same(what: str, values: Sequence[Any], dirs: Sequence[Path]) -> Any:
    i = next((i for i, v in enumerate(values) if v != values[0]), None)
    if i is not None:
        raise LlamarchError(
            f"cannot average {dirs[0]} and {dirs[i]}: their {what} differ ({values[0]!r} vs {values[i]!r})"
        )
    return values[0]


def average_adapters(adapter_dirs: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str]) -> Path:
    """Write the mean of `adapter_dirs` (same base, targets, rank and scale) to `out_dir`."""
    import numpy as np
    from safetensors.numpy import save_file

    dirs = [Path(d) for d in adapter_dirs]
    if len(dirs) < 2:
        raise LlamarchError("averaging needs at least two adapters")
    loaded = [load_adapter(d) for d in dirs]
    _same("base models", [meta["base"] for _, _, meta in loaded], dirs)
    params = [config["lora_parameters"] for _, config, _ in loaded]
    _same("LoRA scales", [p["scale"] for p in params], dirs)
    rank = _same("LoRA ranks", [p["rank"] for p in params], dirs)
    pairs = [lora_pairs(weights) for weights, _, _ in loaded]
    _same("adapted modules", [sorted(p) for p in pairs], dirs)

    k = len(dirs)
    soup: dict[str, Any] = {}
    for module in pairs[0]:
        soup[f"{module}.lora_a"] = np.concatenate([p[module][0] for p in pairs], axis=1)
        soup[f"{module}.lora_b"] = np.concatenate([p[module][1] for p in pairs], axis=0) / k

    out = Path(out_dir)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(soup, str(tmp / "adapters.safetensors"))
    config = {**loaded[0][1], "lora_parameters": {**params[0], "rank": rank * k}}
    (tmp / "adapter_config.json").write_text(json.dumps(config, indent=2))
    meta = {**loaded[0][2], "soup_of": [str(d) for d in dirs]}
    meta["config"] = {**meta.get("config", {}), "rank": rank * k}
    write_json_atomic(tmp / ADAPTER_META, meta)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out
