"""Soft targets for distillation: the teacher's next-token probabilities on the training answers.

Training on the teacher's answers (or on the student's answers the teacher approved) gives
the student one right token per position. The teacher's distribution over the next token
says more: which other tokens it finds likely, and how sure it is. For each position the
loss covers, the teacher's top-k tokens and their probabilities (renormalized over those k)
are kept; `train.distill_loss` mixes the cross-entropy against them with the usual one.

Teacher and student must share a tokenizer (Qwen2.5-Coder 0.5B and 1.5B do): the teacher
reads the very token ids the student is trained on. Computed once per training set and
stored beside the adapter as it goes, so a killed pass resumes where it stopped and a
finished one is not run again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import LlamarchError
from .data import Tokenized, trained_span
from .losses import answer_logits

CACHE_FILE = "soft-targets.npz"
SAVE_EVERY = 8  # answers between partial saves of the teacher's pass


def vocabulary_digest(tokenizer: Any) -> str:
    """A fingerprint of a tokenizer's vocabulary (token string -> id)."""
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    return hashlib.sha256(json.dumps(vocab, ensure_ascii=False).encode()).hexdigest()


def items_digest(items: Sequence[Tokenized], teacher: str, k: int) -> str:
    """What a cache of soft targets depends on."""
    data = [teacher, k, [(t.tokens, t.offset) for t in items]]
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()


def teacher_soft_targets(
    teacher: str,
    student_tokenizer: Any,
    sets: Sequence[Sequence[Tokenized]],
    k: int,
    cache_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[list[tuple[Any, Any]]]:
    """For each set of items, per item: (ids, probs), arrays of shape (trained positions, k),
    the teacher's k likeliest next tokens at each trained position, most likely first, and
    their probabilities renormalized to sum to 1. Stored in `cache_dir` and reused."""
    import numpy as np

    everything = [item for items in sets for item in items]
    key = items_digest(everything, teacher, k)
    cache = cache_dir / CACHE_FILE if cache_dir is not None else None
    flat = _load_cache(cache, key) if cache is not None else []
    if len(flat) < len(everything):
        save = (lambda done: _save_cache(cache, key, done)) if cache is not None else None
        flat = _compute(teacher, student_tokenizer, everything, k, flat, progress, save)
    out, start = [], 0
    for items in sets:
        out.append(flat[start : start + len(items)])
        start += len(items)
    assert all(ids.shape == probs.shape and ids.dtype == np.int32 for part in out for ids, probs in part)
    return out


def _compute(
    teacher: str,
    student_tokenizer: Any,
    items: Sequence[Tokenized],
    k: int,
    done: list[tuple[Any, Any]],
    progress: Callable[[int, int], None] | None,
    save: Callable[[list[tuple[Any, Any]]], None] | None,
) -> list[tuple[Any, Any]]:
    """The soft targets of `items`, continuing after the first len(done) (already computed);
    `save` is called with everything so far every SAVE_EVERY answers and at the end."""
    from ..mlx_convert import mlx_model_dir
    from ..mlx_runtime import import_mlx, load_model

    mx = import_mlx()
    model, tokenizer = load_model(mlx_model_dir(teacher))
    if vocabulary_digest(tokenizer) != vocabulary_digest(student_tokenizer):
        raise LlamarchError(
            f"teacher {teacher} does not share the student's tokenizer, so its next-token "
            "probabilities cannot be its soft targets: choose a teacher of the same family, "
            "or train without distill_weight"
        )
    model.eval()
    results = list(done)
    for count, item in enumerate(items[len(done) :], len(done) + 1):
        results.append(top_k_targets(model, item, k))
        if save is not None and (count % SAVE_EVERY == 0 or count == len(items)):
            save(results)
        if progress is not None:
            progress(count, len(items))
    del model
    mx.clear_cache()
    return results


def top_k_targets(model: Any, item: Tokenized, k: int) -> tuple[Any, Any]:
    """(ids, probs) of one item: the model's k likeliest next tokens at each trained position,
    most likely first, with their probabilities renormalized over the k (numpy arrays)."""
    import mlx.core as mx
    import numpy as np

    start, end = trained_span(item)  # one row: its flattened positions are its own
    logits = answer_logits(model, mx.array([item.tokens[:-1]]), mx.arange(start, end)).astype(mx.float32)
    k = min(k, logits.shape[-1])
    ids = mx.argpartition(-logits, kth=k - 1, axis=-1)[:, :k]  # the top k, unordered
    ids = mx.take_along_axis(ids, mx.argsort(-mx.take_along_axis(logits, ids, axis=-1), axis=-1), axis=-1)
    top = mx.softmax(mx.take_along_axis(logits, ids, axis=-1), axis=-1)  # renormalized over the k
    mx.eval(ids, top)
    return np.array(ids, dtype=np.int32), np.array(top, dtype=np.float32)


def _load_cache(path: Path, key: str) -> list[tuple[Any, Any]]:
    """What a stored pass with this key holds (all of it, or the part done before a kill); [] if none."""
    import numpy as np

    if not path.is_file():
        return []
    try:
        with np.load(path) as data:
            if str(data["key"]) != key:
                return []
            n = int(data["count"])
            return [(data[f"ids{i}"], data[f"probs{i}"]) for i in range(n)]
    except (OSError, KeyError, ValueError):
        return []  # an unreadable cache is recomputed


def _save_cache(path: Path, key: str, flat: Sequence[tuple[Any, Any]]) -> None:
    import numpy as np

    arrays: dict[str, Any] = {"key": np.array(key), "count": np.array(len(flat))}
    for i, (ids, probs) in enumerate(flat):
        arrays[f"ids{i}"], arrays[f"probs{i}"] = ids, probs
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
