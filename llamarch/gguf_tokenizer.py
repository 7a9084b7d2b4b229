"""Rebuild a Hugging Face tokenizer (tokenizer.json + tokenizer_config.json) from GGUF metadata.

A GGUF file carries everything a byte-level BPE tokenizer needs: the vocabulary, the merges,
each token's type (normal, control, user-defined...) and the name of the pre-tokenizer
(`tokenizer.ggml.pre`). The pre-tokenizers below are those of the original Hugging Face
tokenizers, which llama.cpp's regexes reproduce; the parity test checks token ids against
llama.cpp on a fixed set of texts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import LlamarchError

# GGUF token types (llama.cpp's llama_token_type).
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

GPT2_REGEX = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
QWEN2_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
LLAMA3_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def _split_then_bytes(regex: str) -> Callable[[], Any]:
    def build() -> Any:
        from tokenizers import Regex, pre_tokenizers

        return pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
                pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
            ]
        )

    return build


def _digits_then_gpt2() -> Any:
    from tokenizers import pre_tokenizers

    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
        ]
    )


def _gpt2() -> Any:
    from tokenizers import pre_tokenizers

    return pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)


# tokenizer.ggml.pre -> builder of the matching Hugging Face pre-tokenizer.
PRE_TOKENIZERS: dict[str, Callable[[], Any]] = {
    "default": _gpt2,
    "gpt-2": _gpt2,
    "gpt2": _gpt2,
    "smollm": _digits_then_gpt2,
    "starcoder": _digits_then_gpt2,
    "qwen2": _split_then_bytes(QWEN2_REGEX),
    "llama-bpe": _split_then_bytes(LLAMA3_REGEX),
    "llama3": _split_then_bytes(LLAMA3_REGEX),
}
IGNORE_MERGES = {"llama-bpe", "llama3"}


def _token(meta: dict[str, Any], key: str, tokens: list[str]) -> str | None:
    i = meta.get(f"tokenizer.ggml.{key}_token_id")
    return tokens[int(i)] if i is not None and 0 <= int(i) < len(tokens) else None


def build_tokenizer(meta: dict[str, Any]) -> Any:
    """A `tokenizers.Tokenizer` equal to the GGUF file's tokenizer (byte-level BPE only)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models

    kind = meta.get("tokenizer.ggml.model")
    pre = meta.get("tokenizer.ggml.pre", "default")
    if kind != "gpt2":
        raise LlamarchError(
            f"tokenizer type {kind!r} cannot be rebuilt for MLX yet: supported is byte-level BPE "
            "('gpt2', as in SmolLM2, Qwen2.5, Llama 3)"
        )
    if pre not in PRE_TOKENIZERS:
        raise LlamarchError(
            f"pre-tokenizer {pre!r} is not supported for MLX conversion: supported are "
            f"{', '.join(sorted(PRE_TOKENIZERS))}"
        )
    tokens: list[str] = list(meta["tokenizer.ggml.tokens"])
    types: list[int] = list(meta.get("tokenizer.ggml.token_type") or [NORMAL] * len(tokens))
    merges = []
    for m in meta.get("tokenizer.ggml.merges") or []:
        cut = m.find(" ", 1)
        merges.append((m[:cut], m[cut + 1 :]))
    vocab = {tok: i for i, tok in enumerate(tokens)}
    model = models.BPE(vocab=vocab, merges=merges, ignore_merges=pre in IGNORE_MERGES, byte_fallback=False)
    tok = Tokenizer(model)
    tok.pre_tokenizer = PRE_TOKENIZERS[pre]()
    tok.decoder = decoders.ByteLevel()
    added = [
        AddedToken(t, special=(ty == CONTROL), normalized=False, single_word=False, lstrip=False, rstrip=False)
        for t, ty in zip(tokens, types)
        if ty in (CONTROL, USER_DEFINED)
    ]
    tok.add_tokens(added)
    if meta.get("tokenizer.ggml.add_bos_token") and (bos := _token(meta, "bos", tokens)):
        from tokenizers import processors

        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, vocab[bos])]
        )
    return tok


def tokenizer_config(meta: dict[str, Any]) -> dict[str, Any]:
    """tokenizer_config.json: special tokens and the chat template from the GGUF file."""
    tokens = list(meta["tokenizer.ggml.tokens"])
    config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "clean_up_tokenization_spaces": False,
        "add_bos_token": bool(meta.get("tokenizer.ggml.add_bos_token", False)),
        "add_eos_token": bool(meta.get("tokenizer.ggml.add_eos_token", False)),
        "model_max_length": int(meta.get("context_length") or 131072),
    }
    for key in ("bos", "eos", "unknown", "padding"):
        if (text := _token(meta, key, tokens)) is not None:
            name = {"unknown": "unk", "padding": "pad"}.get(key, key)
            config[f"{name}_token"] = text
    if template := meta.get("tokenizer.chat_template"):
        config["chat_template"] = template
    return config


def write_tokenizer(meta: dict[str, Any], out_dir: Path) -> None:
    """Write tokenizer.json and tokenizer_config.json into `out_dir`."""
    build_tokenizer(meta).save(str(out_dir / "tokenizer.json"))
    (out_dir / "tokenizer_config.json").write_text(json.dumps(tokenizer_config(meta), indent=2, ensure_ascii=False))
