"""One sequence's sampler on llama.cpp: the chain `Llama` builds, and a cheaper grammar check.

A JSON-schema grammar applied to the whole vocabulary costs milliseconds per token (151k
tokens for Qwen), once per sequence per step. As llama.cpp's own `common_sampler` does,
the chain first picks a token without the grammar and the grammar checks only that token;
the whole vocabulary is constrained only when the pick is rejected. For greedy decoding
the result is the token the grammar-first chain would pick.
"""

from __future__ import annotations

import ctypes
from typing import Any

from ..errors import BackendError
from .base import GenerationOptions
from .llamacpp_private import grammar_text

PENALTY_LAST_N = 64  # as llama-cpp-python's Llama (last_n_tokens_size)


def sampler_chain(lc: Any, n_vocab: int, options: GenerationOptions, seed: int) -> Any:
    """The chain llama-cpp-python's `Llama._init_sampler` builds for these options, grammar aside."""
    chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())

    def add(sampler: Any) -> None:
        lc.llama_sampler_chain_add(chain, sampler)

    add(lc.llama_sampler_init_penalties(n_vocab, PENALTY_LAST_N, options.repeat_penalty, 0.0, 0.0))
    temp = options.temperature
    if temp < 0:
        add(lc.llama_sampler_init_dist(seed))
    elif temp == 0:
        add(lc.llama_sampler_init_greedy())
    else:
        add(lc.llama_sampler_init_top_k(options.top_k))
        add(lc.llama_sampler_init_typical(1.0, 1))
        add(lc.llama_sampler_init_top_p(options.top_p, 1))
        add(lc.llama_sampler_init_min_p(options.min_p, 1))
        add(lc.llama_sampler_init_temp(temp))
        add(lc.llama_sampler_init_dist(seed))
    return chain


class SequenceSampler:
    """Picks the tokens of one sequence; holds its own penalty, RNG and grammar state."""

    def __init__(self, lc: Any, vocab: Any, n_vocab: int, options: GenerationOptions, seed: int, grammar: Any = None):
        self._lc = lc
        self.n_vocab = n_vocab
        self.chain = sampler_chain(lc, n_vocab, options, seed)
        self.grammar = None
        if grammar is not None:
            text, root = grammar_text(grammar)
            self.grammar = lc.llama_sampler_init_grammar(vocab, text.encode(), root.encode())
            if not self.grammar:
                self.close()
                raise BackendError("llama.cpp rejected the grammar built from the JSON schema")
            import numpy as np

            self._np = np
            dtype = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])
            self._ids = np.arange(n_vocab, dtype=np.int32)
            self._data = np.zeros(n_vocab, dtype=dtype)
            self._all = lc.llama_token_data_array(self._data.ctypes.data_as(lc.llama_token_data_p), n_vocab, -1, False)
            self._one = (lc.llama_token_data * 1)()
            self._one_arr = lc.llama_token_data_array(self._one, 1, -1, False)

    def sample(self, ctx: Any, idx: int) -> int:
        """The next token from the logits of batch position `idx` (accepted into the state)."""
        lc = self._lc
        if self.grammar is None:
            return lc.llama_sampler_sample(self.chain, ctx, idx)
        logits = self._np.ctypeslib.as_array(lc.llama_get_logits_ith(ctx, idx), shape=(self.n_vocab,))
        token = self._pick(logits, constrained=False)
        if not self._allowed(token):
            token = self._pick(logits, constrained=True)
        lc.llama_sampler_accept(self.grammar, token)
        lc.llama_sampler_accept(self.chain, token)
        return token

    def _pick(self, logits: Any, constrained: bool) -> int:
        data, arr = self._data, self._all
        data["id"] = self._ids
        data["logit"] = logits
        data["p"] = 0.0
        arr.data = self._data.ctypes.data_as(self._lc.llama_token_data_p)
        arr.size, arr.selected, arr.sorted = self.n_vocab, -1, False
        if constrained:
            self._lc.llama_sampler_apply(self.grammar, ctypes.byref(arr))
        self._lc.llama_sampler_apply(self.chain, ctypes.byref(arr))
        if arr.selected < 0:
            raise BackendError("the sampler chose no token")
        return int(arr.data[arr.selected].id)

    def _allowed(self, token: int) -> bool:
        one, arr = self._one, self._one_arr
        one[0].id, one[0].logit, one[0].p = token, 0.0, 0.0
        arr.size, arr.selected, arr.sorted = 1, -1, False
        self._lc.llama_sampler_apply(self.grammar, ctypes.byref(arr))
        return one[0].logit != float("-inf")

    def close(self) -> None:
        for attr in ("chain", "grammar"):
            sampler = getattr(self, attr, None)
            if sampler:
                self._lc.llama_sampler_free(sampler)
                setattr(self, attr, None)
