"""Draft tokens for speculative decoding: prompt lookup, or a smaller model of the same family.

A drafter proposes the next few tokens of a sequence; the engine then decodes them all in
one pass of the large model and keeps the longest prefix that its own sampler agrees with,
so greedy output is the same as without drafting. Drafting pays when most proposals are
taken and a proposal costs much less than a decode step of the large model.
"""

from __future__ import annotations

import array
import os
from collections.abc import Sequence
from typing import Any

from ..errors import BackendError
from .llamacpp_private import model_ptr, vocab_ptr

DEFAULT_LOOKUP_DRAFT = 8
DEFAULT_MODEL_DRAFT = 4


class PromptLookup:
    """Drafts by finding the latest n-gram of a sequence earlier in it (prompt or reply).

    Code edits, quoting and structured output repeat long runs of the prompt; the tokens
    that followed the last match are proposed. No model, no memory, near-zero cost.
    """

    name = "prompt-lookup"

    def __init__(self, max_ngram: int = 3, min_ngram: int = 2):
        self.max_ngram = max_ngram
        self.min_ngram = min_ngram

    def propose(self, seq_id: int, history: Sequence[int], n: int) -> list[int]:
        if n <= 0 or len(history) <= self.min_ngram:
            return []
        data = array.array("i", history).tobytes()
        width = array.array("i").itemsize
        for size in range(min(self.max_ngram, len(history) - 1), self.min_ngram - 1, -1):
            needle = data[-size * width :]
            end = len(data) - width  # a match must end before the last token
            while True:
                at = data.rfind(needle, 0, end)
                if at < 0:
                    break
                if at % width == 0:
                    start = at // width + size
                    return list(history[start : start + n])
                end = at + len(needle) - 1
        return []

    def close(self) -> None:
        pass


class DraftModel:
    """Drafts greedily with a small model that shares the target's tokenizer.

    The draft model keeps a KV cache per sequence id, so each proposal only decodes the
    tokens appended since the last one. A proposal stops early when the draft model's
    top token is less likely than `p_min`.
    """

    name = "draft-model"

    def __init__(self, backend: Any, n_parallel: int, n_ctx_seq: int, p_min: float = 0.5):
        import numpy as np

        self._np = np
        self.backend = backend
        lc = self._lc = backend._llama_cpp
        params = lc.llama_context_default_params()
        params.n_ctx = n_parallel * n_ctx_seq
        params.n_batch = params.n_ubatch = 512
        params.n_seq_max = n_parallel
        params.n_threads = params.n_threads_batch = backend.n_threads
        params.no_perf = True
        params.flash_attn_type = backend._llm.context_params.flash_attn_type
        self.ctx = lc.llama_init_from_model(model_ptr(backend._llm), params)
        if not self.ctx:
            raise BackendError(f"llama.cpp could not allocate a context for the draft model {backend.model_name}")
        self.mem = lc.llama_get_memory(self.ctx)
        self.n_vocab = lc.llama_vocab_n_tokens(vocab_ptr(backend._llm))
        self.n_parallel = n_parallel
        self.n_ctx_seq = n_ctx_seq
        self.p_min = p_min
        self._batch = lc.llama_batch_init(512, 0, 1)
        self._cached: dict[int, list[int]] = {}

    def fits(self, n_parallel: int, n_ctx_seq: int) -> bool:
        return n_parallel <= self.n_parallel and n_ctx_seq <= self.n_ctx_seq

    def _decode(self, seq_id: int, tokens: Sequence[int], pos: int) -> None:
        """Decode `tokens` of one sequence from position `pos`, logits for the last one."""
        b = self._batch
        for start in range(0, len(tokens), 512):
            part = tokens[start : start + 512]
            for j, tok in enumerate(part):
                b.token[j] = tok
                b.pos[j] = pos + start + j
                b.n_seq_id[j] = 1
                b.seq_id[j][0] = seq_id
                b.logits[j] = start + j == len(tokens) - 1
            b.n_tokens = len(part)
            if self._lc.llama_decode(self.ctx, b) != 0:
                self._lc.llama_memory_seq_rm(self.mem, seq_id, -1, -1)
                self._cached[seq_id] = []
                raise BackendError("llama.cpp failed to decode with the draft model")

    def propose(self, seq_id: int, history: Sequence[int], n: int) -> list[int]:
        np = self._np
        if n <= 0 or len(history) + n >= self.n_ctx_seq:
            return []
        cached = self._cached.setdefault(seq_id, [])
        keep = 0
        for a, b in zip(cached, history):
            if a != b:
                break
            keep += 1
        keep = min(keep, len(history) - 1)
        self._lc.llama_memory_seq_rm(self.mem, seq_id, keep, -1)
        del cached[keep:]
        self._decode(seq_id, history[keep:], keep)
        cached.extend(history[keep:])
        drafts: list[int] = []
        while True:
            logits = np.ctypeslib.as_array(self._lc.llama_get_logits_ith(self.ctx, -1), shape=(self.n_vocab,))
            token = int(logits.argmax())
            p_top = 1.0 / float(np.exp(logits - logits[token]).sum())
            if p_top < self.p_min:
                break
            drafts.append(token)
            if len(drafts) >= n:
                break
            self._decode(seq_id, [token], len(cached))
            cached.append(token)
        return drafts

    def close(self) -> None:
        if getattr(self, "ctx", None):
            self._lc.llama_batch_free(self._batch)
            self._lc.llama_free(self.ctx)
            self.ctx = None


def check_same_vocab(target: Any, draft: Any) -> None:
    """Refuse a draft model whose tokens do not mean the same as the target's."""
    lc = target._llama_cpp
    tv, dv = vocab_ptr(target._llm), vocab_ptr(draft._llm)
    n_t, n_d = lc.llama_vocab_n_tokens(tv), lc.llama_vocab_n_tokens(dv)
    probe = "def main():\n    print('héllo, wörld') # 123 <|im_start|>"
    same = abs(n_t - n_d) <= 128 and target.tokenize(probe, special=True) == draft.tokenize(probe, special=True)
    if same:  # spot-check the token table
        step = max(1, min(n_t, n_d) // 512)
        same = all(target._piece(tok) == draft._piece(tok) for tok in range(0, min(n_t, n_d), step))
    if not same:
        raise BackendError(
            f"draft model {draft.model_name} does not share the tokenizer of {target.model_name} "
            f"({n_d} vs {n_t} tokens): choose a smaller model of the same family"
        )


class Speculative:
    """Speculative decoding settings of a backend: prompt lookup and/or a draft model."""

    def __init__(
        self,
        target: Any,
        draft_model: Any = None,
        prompt_lookup: bool = False,
        n_draft: int | None = None,
        n_gpu_layers: int | None = None,
    ):
        self.lookup = PromptLookup() if prompt_lookup else None
        self.draft_backend = None
        self._owned = False
        self._model_drafter: DraftModel | None = None
        if draft_model is not None:
            draft = getattr(draft_model, "backend", draft_model)  # an LLM, a backend, or a spec
            if isinstance(draft, (str, os.PathLike)):
                draft = type(target).open(
                    os.fspath(draft),
                    n_ctx=min(target.n_ctx, 2048),
                    n_threads=target.n_threads,
                    n_gpu_layers=n_gpu_layers,
                )
                self._owned = True
            if getattr(draft, "name", None) != "llamacpp":
                raise BackendError("a draft model must run on llama.cpp too (a .gguf file or catalog id)")
            self.draft_backend = draft
            try:
                check_same_vocab(target, draft)
            except BackendError:
                self.close()
                raise
        default = DEFAULT_MODEL_DRAFT if self.draft_backend is not None else DEFAULT_LOOKUP_DRAFT
        self.n_draft = max(1, int(n_draft or default))

    def drafter(self, n_parallel: int, n_ctx_seq: int) -> Speculative:
        if self.draft_backend is not None:
            if self._model_drafter is None or not self._model_drafter.fits(n_parallel, n_ctx_seq):
                if self._model_drafter is not None:
                    self._model_drafter.close()
                self._model_drafter = DraftModel(self.draft_backend, n_parallel, n_ctx_seq)
        return self

    def propose(self, seq_id: int, history: Sequence[int], n: int) -> list[int]:
        """Prompt lookup first (free); the draft model where lookup finds nothing."""
        drafts = self.lookup.propose(seq_id, history, n) if self.lookup is not None else []
        if not drafts and self._model_drafter is not None:
            drafts = self._model_drafter.propose(seq_id, history, n)
        return drafts

    def close(self) -> None:
        if self._model_drafter is not None:
            self._model_drafter.close()
            self._model_drafter = None
        if self._owned and self.draft_backend is not None:
            self.draft_backend.close()
        self.draft_backend = None
