"""Every reach into llama-cpp-python's private attributes, in one place.

llama-cpp-python has no public handle on the native model, context, KV cache or grammar
text that batched decoding, draft models, prefill and parity checks need. Each function
below names the attribute it reads, checked against 0.3.x: the `<0.4` pin in pyproject
is for them, and on an upgrade this is the file to check (`llama_cpp/llama.py`,
`llama_cpp/_internals.py`, `llama_cpp/llama_grammar.py`). `llm` is a `llama_cpp.Llama`.
"""

from __future__ import annotations

from typing import Any


def model_ptr(llm: Any) -> Any:
    """The `llama_model *`: `Llama._model` is an `_internals.LlamaModel`, `.model` its pointer."""
    return llm._model.model


def vocab_ptr(llm: Any) -> Any:
    """The `llama_vocab *` (`LlamaModel.vocab`), for token pieces, end-of-generation and samplers."""
    return llm._model.vocab


def token_text(llm: Any, token: int) -> str:
    """A token's text as the chat formatter wants it (`LlamaModel.token_get_text`)."""
    return llm._model.token_get_text(token)


def context_ptr(llm: Any) -> Any:
    """The `llama_context *`: `Llama._ctx` is an `_internals.LlamaContext`, `.ctx` its pointer."""
    return llm._ctx.ctx


def logits_ith(llm: Any, i: int) -> Any:
    """Pointer to the logits of batch position `i` of the last evaluation (`LlamaContext.get_logits_ith`)."""
    return llm._ctx.get_logits_ith(i)


def kv_cache_seq_rm(llm: Any, seq_id: int, p0: int, p1: int) -> bool:
    """Drop cached positions [p0, p1) of a sequence (`LlamaContext.kv_cache_seq_rm`); False when
    the cache cannot remove part of a sequence."""
    return llm._ctx.kv_cache_seq_rm(seq_id, p0, p1)


def input_ids(llm: Any) -> Any:
    """The tokens in the KV cache, of which the first `llm.n_tokens` are valid (`Llama._input_ids`)."""
    return llm._input_ids


def lora_adapter(llm: Any) -> Any:
    """The `llama_adapter_lora *` loaded with `lora_path`, or None (`Llama._lora_adapter`)."""
    return getattr(llm, "_lora_adapter", None)


def grammar_text(grammar: Any) -> tuple[str, str]:
    """(GBNF text, root rule) of a `LlamaGrammar` (`._grammar`, `._root`), for a native sampler."""
    return grammar._grammar, grammar._root
