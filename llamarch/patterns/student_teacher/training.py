"""Training sets in mlx-lm's chat format, and the one door to LoRA training (`llamarch.finetune`)."""

from __future__ import annotations

import hashlib
import importlib
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ... import paths
from ...errors import LlamarchError
from ...jsonl import write_jsonl

TRAIN_FILE, VALID_FILE = "train.jsonl", "valid.jsonl"
VALID_FRACTION = 0.1


def chat_row(messages: Sequence[Mapping[str, str]], answer: str) -> dict[str, Any]:
    """One mlx-lm chat example: the prompt's messages, then the answer to learn."""
    return {
        "messages": [
            *({"role": m["role"], "content": m["content"]} for m in messages),
            {"role": "assistant", "content": answer},
        ]
    }


def normalize_examples(data: Iterable[Any]) -> list[dict[str, Any]]:
    """Chat rows from `{"messages"}` rows, `{"prompt", "completion"}` rows or (prompt, answer) pairs."""
    rows = []
    for n, example in enumerate(data, 1):
        if isinstance(example, Mapping) and isinstance(example.get("messages"), list):
            rows.append({"messages": list(example["messages"])})
        elif isinstance(example, Mapping) and {"prompt", "completion"} <= example.keys():
            rows.append(chat_row([{"role": "user", "content": example["prompt"]}], example["completion"]))
        elif isinstance(example, (tuple, list)) and len(example) == 2 and all(isinstance(x, str) for x in example):
            rows.append(chat_row([{"role": "user", "content": example[0]}], example[1]))
        else:
            raise LlamarchError(
                f"training example {n} is not a {{'messages': [...]}} row, a {{'prompt', 'completion'}} row "
                "or a (prompt, answer) pair"
            )
    return rows


def split_valid(rows: Sequence[dict[str, Any]], fraction: float = VALID_FRACTION) -> tuple[list, list]:
    """(train, valid) by a stable hash of each row; valid is never empty (mlx-lm needs one).

    A single row is used for both: too few examples to hold one out.
    """
    if len(rows) < 2:
        return list(rows), list(rows)
    n_valid = max(1, round(len(rows) * fraction))

    def digest(i: int) -> str:
        return hashlib.sha256(repr(rows[i]["messages"]).encode("utf-8")).hexdigest()

    chosen = set(sorted(range(len(rows)), key=lambda i: (digest(i), i))[:n_valid])
    return ([r for i, r in enumerate(rows) if i not in chosen], [r for i, r in enumerate(rows) if i in chosen])


def write_training_set(rows: Sequence[dict[str, Any]], out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write train.jsonl and valid.jsonl (mlx-lm's chat format) into `out_dir`, atomically."""
    out = Path(out_dir)
    train, valid = split_valid(rows)
    return write_jsonl(out / TRAIN_FILE, train), write_jsonl(out / VALID_FILE, valid)


def train_student_adapter(
    student: str,
    train_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    settings: Mapping[str, Any] | None = None,
    *,
    run_key: str | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """LoRA-train `student` on `train_dir` (train.jsonl, valid.jsonl); returns a GGUF adapter.

    The training itself is `llamarch.finetune` (MLX LoRA on the student converted from
    GGUF, then export of the adapter to GGUF so llama.cpp can apply it with `lora_path`).
    With a `run_key` (what the run depends on), an interrupted run with the same key resumes
    from its last checkpoint; anything else left in `out_dir` is replaced. `progress` hears
    the trainer's events (start, step, eval, save).
    """
    try:
        finetune = importlib.import_module("llamarch.finetune")
    except ModuleNotFoundError as e:
        if e.name not in ("llamarch.finetune", "llamarch"):
            raise
        raise LlamarchError(
            "training the student needs llamarch.finetune (MLX LoRA training and GGUF adapter "
            "export), which this llamarch does not include: rerun with --no-train to build the "
            "training set only"
        ) from None
    out = paths.ensure_dir(Path(out_dir))
    mlx_dir, key_file = out / "mlx-adapter", out / "run-key"
    resume = (
        run_key is not None
        and finetune.has_checkpoint(mlx_dir)
        and key_file.is_file()
        and key_file.read_text(encoding="utf-8") == run_key
    )
    if run_key is not None and not resume:
        key_file.write_text(run_key, encoding="utf-8")
    result = finetune.train_lora(
        student,
        Path(train_dir),
        mlx_dir,
        resume=resume,
        overwrite=not resume,
        progress=progress,
        **dict(settings or {}),
    )
    return Path(finetune.export_gguf_lora(result.adapter_dir, out / "adapter.gguf"))


def fine_tune_student(
    student: str, data: Any, out_dir: str | os.PathLike[str] | None, settings: Mapping[str, Any] | None = None
) -> Path:
    """`Student.fine_tune`: write `data` as a training set (unless it is one already), train."""
    out = (
        Path(out_dir)
        if out_dir
        else paths.user_dir() / "adapters" / f"{Path(student).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    if isinstance(data, (str, os.PathLike)) and Path(data).is_dir():
        train_dir = Path(data)
        if not (train_dir / TRAIN_FILE).is_file():
            raise LlamarchError(
                f"{train_dir} has no {TRAIN_FILE}: give a directory in mlx-lm's format or a list of examples"
            )
    else:
        rows = normalize_examples(data)
        if not rows:
            raise LlamarchError("no training examples given")
        train_dir = out / "data"
        write_training_set(rows, train_dir)
    return train_student_adapter(student, train_dir, out, settings)
