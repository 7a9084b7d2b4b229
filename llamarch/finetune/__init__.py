"""Fine-tuning with MLX: GGUF -> MLX conversion, LoRA training, adapter export back to GGUF.

    from llamarch import LLM
    from llamarch.finetune import fine_tune

    tuned = fine_tune("qwen2.5-coder-0.5b", [{"messages": [...]}, ...], iters=50)
    with LLM("qwen2.5-coder-0.5b", lora_path=tuned.gguf_path) as llm:   # llama.cpp + adapter
        print(llm.generate("..."))

Nothing here imports MLX until a model is converted or trained.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..identity import SUPPORTED_ARCHITECTURES, AdapterMismatchError, BaseIdentity, adapter_base, check_gguf_adapter
from ..mlx_convert import convert_gguf, mlx_model_dir
from .data import DataError
from .export import export_adapter, export_fused_gguf, export_gguf_lora
from .soup import average_adapters
from .train import LoraConfig, TrainingInterrupted, TrainResult, has_checkpoint, train_lora


@dataclass
class FineTuned:
    """A trained adapter: the MLX directory, the GGUF adapter for llama.cpp, the run."""

    adapter_dir: Path
    gguf_path: Path
    result: TrainResult


def default_adapter_dir(model: Any) -> Path:
    from .. import paths
    from .train import model_spec

    name = Path(model_spec(model)).name.removesuffix(".gguf")
    return paths.user_dir() / "adapters" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def fine_tune(
    model: Any,
    data: str | os.PathLike[str] | Sequence[dict[str, Any]],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    gguf_path: str | os.PathLike[str] | None = None,
    config: LoraConfig | None = None,
    progress: Any = None,
    **options: Any,
) -> FineTuned:
    """Train a LoRA adapter on `data` and export it for llama.cpp, in one call: the way to train from Python.

    `model` is a catalog id, a GGUF path, an MLX directory or an `LLM`; `data` a directory
    with train.jsonl (and valid.jsonl), a .jsonl file or a list of examples. The MLX adapter
    goes to `out_dir` (default `<user dir>/adapters/<model>-<time>/`), the GGUF adapter to
    `gguf_path` (default: in `out_dir`, named after it). Options are `LoraConfig` fields, and
    `resume` / `overwrite` for an `out_dir` that already holds an adapter (refused by default).
    """
    out = Path(out_dir) if out_dir is not None else default_adapter_dir(model)
    options.setdefault("overwrite", False)
    result = train_lora(model, data, out, config=config, progress=progress, **options)
    return FineTuned(out, export_gguf_lora(out, gguf_path), result)


__all__ = [
    "SUPPORTED_ARCHITECTURES",
    "AdapterMismatchError",
    "BaseIdentity",
    "DataError",
    "FineTuned",
    "LoraConfig",
    "TrainResult",
    "TrainingInterrupted",
    "adapter_base",
    "average_adapters",
    "check_gguf_adapter",
    "convert_gguf",
    "export_adapter",
    "export_fused_gguf",
    "export_gguf_lora",
    "fine_tune",
    "has_checkpoint",
    "mlx_model_dir",
    "train_lora",
]
