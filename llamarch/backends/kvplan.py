"""Planning batched decoding: how many sequences at once, and the memory they need.

The KV cache of N sequences of C tokens is computed from the GGUF header before anything
is allocated (layers x KV heads x head size x bytes per element); N is lowered, with a
one-line notice, when the cache and the engine's work buffers would not fit in memory.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..hardware import available_memory_bytes, physical_cores

# Bytes per element of the KV cache types llama.cpp offers (ggml type ids as in gguf_file).
KV_TYPE_BYTES = {0: 4.0, 1: 2.0, 30: 2.0, 8: 34 / 32, 2: 18 / 32, 3: 20 / 32}
KV_PAD = 256  # llama.cpp sizes each sequence's cache in multiples of this many cells
MAX_PARALLEL = 64
# Leave this share of available memory to everything else (other programs, page cache).
MEMORY_HEADROOM = 0.25


@dataclass(frozen=True)
class ModelShape:
    """What the KV cache and work buffers of one model depend on."""

    n_layer: int
    n_head: int
    n_head_kv: tuple[int, ...]  # per layer
    key_length: int
    value_length: int
    n_embd: int
    n_vocab: int

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any], n_vocab: int | None = None) -> ModelShape:
        """Read the shape from GGUF metadata (`{arch}.block_count`, `.attention.*`)."""
        arch = metadata.get("general.architecture", "llama")

        def key(name: str, default: Any = None) -> Any:
            return metadata.get(f"{arch}.{name}", default)

        n_layer = int(key("block_count", 0))
        n_embd = int(key("embedding_length", 0))
        head = key("attention.head_count", 1)
        n_head = max(head) if isinstance(head, list) and head else int(head or 1)
        head_kv = key("attention.head_count_kv", n_head)
        if isinstance(head_kv, list) and len(head_kv) == n_layer:
            per_layer = tuple(int(h) for h in head_kv)
        else:
            per_layer = (int(head_kv if not isinstance(head_kv, list) else n_head),) * n_layer
        head_dim = n_embd // n_head if n_head else 0
        vocab = n_vocab or int(key("vocab_size", 0) or len(metadata.get("tokenizer.ggml.tokens", ())))
        return cls(
            n_layer=n_layer,
            n_head=n_head,
            n_head_kv=per_layer,
            key_length=int(key("attention.key_length", head_dim)),
            value_length=int(key("attention.value_length", head_dim)),
            n_embd=n_embd,
            n_vocab=vocab,
        )

    def kv_bytes_per_token(self, type_bytes: float = 2.0) -> int:
        """Bytes of K and V cache for one token of one sequence (all layers)."""
        return int(sum(h * (self.key_length + self.value_length) for h in self.n_head_kv) * type_bytes)


@dataclass(frozen=True)
class Plan:
    """How a batch will run: sequences at once, cache per sequence, memory needed."""

    n_parallel: int
    n_ctx_seq: int  # KV cells per sequence
    kv_bytes: int  # the whole KV cache
    work_bytes: int  # estimated engine buffers (attention scores, logits)
    available_bytes: int | None
    requested: int | None
    notice: str | None = None  # set when N was lowered to fit

    @property
    def total_bytes(self) -> int:
        return self.kv_bytes + self.work_bytes

    def summary(self) -> str:
        return (
            f"{self.n_parallel} sequences x {self.n_ctx_seq} tokens: KV cache {_size(self.kv_bytes)}"
            f" + buffers {_size(self.work_bytes)}"
            + (f" of {_size(self.available_bytes)} available" if self.available_bytes else "")
        )


def _size(n: int | None) -> str:
    value = float(n or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit in ("B", "KiB") else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover


def pad_ctx(n_tokens: int) -> int:
    return max(KV_PAD, -(-n_tokens // KV_PAD) * KV_PAD)


def work_bytes(shape: ModelShape, n_parallel: int, n_ctx_seq: int, n_batch: int, n_outputs: int = 1) -> int:
    """Engine buffers besides the cache, as llama.cpp sizes them on CPU.

    The compute buffer holds the largest tensor of a full batch: its logits (vocab x batch)
    or, for long contexts, the attention scores (heads x context x batch); the output buffer
    holds `n_outputs` logit rows per sequence (1, or 1 + draft tokens).
    """
    compute = max(shape.n_vocab, shape.n_head * n_ctx_seq) * n_batch * 4 + 4 * shape.n_embd * n_batch * 4
    output = shape.n_vocab * n_parallel * n_outputs * 4
    return compute + output


def auto_parallel(cores: int | None = None, gpu: bool = False) -> int:
    """How many sequences pay off on this machine before memory is considered.

    On a GPU, decoding is far from compute-bound: 16. On CPUs a single sequence reads all the
    weights per token and the cores idle on memory; batching reuses each read until the cores
    are busy. `benchmarks/batch.py --sweep 16,32` on 2 cores (Qwen-0.5B, 32 prompts): 8
    sequences 48.8 tok/s, 16 sequences 59.1, 32 sequences 58.6; so 16 from 2 cores up, and 4
    on a single core, where fewer rows already keep it busy.
    """
    if gpu:
        return 16
    cores = cores or physical_cores()
    return 16 if cores >= 2 else 4


def plan_parallel(
    shape: ModelShape,
    n_ctx_seq: int,
    requested: int | None = None,
    *,
    n_prompts: int | None = None,
    n_batch: int = 512,
    n_outputs: int = 1,
    kv_type_bytes: float = 2.0,
    available: int | None = -1,
    gpu: bool = False,
    notify: Callable[[str], None] | None = None,
) -> Plan:
    """Choose N, the sequences decoded together, and the per-sequence cache size.

    `requested` is the user's `--parallel` (None: `auto_parallel`); N never exceeds the number
    of prompts. When the KV cache plus buffers would not fit in `available` bytes (default:
    this machine's available memory less a headroom), N is lowered and `notify` is called
    with one line (default: printed to stderr).
    """
    n_ctx_seq = pad_ctx(n_ctx_seq)
    want = requested if requested is not None else auto_parallel(gpu=gpu)
    want = max(1, min(want, MAX_PARALLEL, n_prompts if n_prompts else MAX_PARALLEL))
    if available == -1:
        free = available_memory_bytes()
        available = int(free * (1 - MEMORY_HEADROOM)) if free else None
    per_token = shape.kv_bytes_per_token(kv_type_bytes)

    def cost(n: int) -> tuple[int, int]:
        return per_token * n * n_ctx_seq, work_bytes(shape, n, n_ctx_seq, n_batch, n_outputs)

    n = want
    if available is not None and not gpu:
        while n > 1 and sum(cost(n)) > available:
            n -= 1
    kv, work = cost(n)
    notice = None
    if available is not None and not gpu and kv + work > available:
        notice = (
            f"llamarch: even 1 sequence of {n_ctx_seq} tokens needs {_size(kv + work)} "
            f"and {_size(available)} is free: the run may fail (lower --n-ctx)"
        )
    elif n < want:
        notice = (
            f"llamarch: parallel lowered from {want} to {n}: the KV cache for {want} x {n_ctx_seq} tokens "
            f"needs {_size(cost(want)[0])} and {_size(available)} is free (lower --n-ctx or --max-tokens for more)"
        )
    if notice:
        (notify or _print_notice)(notice)
    return Plan(n, n_ctx_seq, kv, work, available, requested, notice)


def _print_notice(line: str) -> None:
    print(line, file=sys.stderr)
