"""Training sets in mlx-lm's chat format: what the recipes and `Student.fine_tune` train on."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

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


def training_data(data: Any, out_dir: str | os.PathLike[str]) -> Path:
    """The directory to train on: `data` when it is one in mlx-lm's format, else `out_dir`
    with the examples written there as train.jsonl and valid.jsonl."""
    if isinstance(data, (str, os.PathLike)) and Path(data).is_dir():
        if not (Path(data) / TRAIN_FILE).is_file():
            raise LlamarchError(
                f"{data} has no {TRAIN_FILE}: give a directory in mlx-lm's format or a list of examples"
            )
        return Path(data)
    rows = normalize_examples(data)
    if not rows:
        raise LlamarchError("no training examples given")
    write_training_set(rows, out_dir)
    return Path(out_dir)
