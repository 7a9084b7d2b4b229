"""Batched decoding on llama.cpp: several sequences in one `llama_decode`, continuous batching.

One llama.cpp context holds a KV cache with a stream per sequence id (`n_seq_max` = N).
Each step puts into one `llama_batch` the last sampled token of every sequence that is
generating (plus its draft tokens, when speculative decoding is on) and chunks of the
prompts still being read; one sampler chain per sequence (with its own grammar state)
picks the next tokens. When a sequence finishes, the next prompt takes its slot, reusing
whatever prefix the slot's cache already holds (shared system prompts, rubrics).
"""

from __future__ import annotations

import ctypes
import random
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import BackendError, ContextOverflowError
from .base import Chunk, GenerationOptions, Stats, seed_for
from .kvplan import Plan, plan_parallel
from .llamacpp_private import lora_adapter, model_ptr, vocab_ptr
from .llamacpp_sampling import SequenceSampler
from .textstream import StopMatcher, Utf8Stream


@dataclass
class Request:
    """One prompt, tokenized, with the stop strings its format adds and its token budget."""

    tokens: list[int]
    stops: Sequence[str] = ()
    limit: int = 512  # most tokens to generate


@dataclass
class _Job:
    index: int
    request: Request
    sampler: SequenceSampler
    stops: StopMatcher
    utf8: Utf8Stream = field(default_factory=Utf8Stream)
    pending: list[int] = field(default_factory=list)  # tokens to decode in the next step
    drafts: list[int] = field(default_factory=list)  # the tail of `pending` that is speculative
    history: list[int] = field(default_factory=list)  # prompt + generated, for drafting
    generating: bool = False
    draft_len: int = 2  # adapts: doubles while all drafts are taken, shrinks to what was taken
    cached: int = 0
    received: int = 0
    generated: int = 0
    t_admit: float = 0.0
    t_first: float | None = None
    t_last: float | None = None
    finish: str | None = None


@dataclass
class _Slot:
    seq_id: int
    cached: list[int] = field(default_factory=list)  # tokens whose K/V this sequence holds
    job: _Job | None = None


# Shorter shared prefixes are cheaper to read in each sequence than to copy between streams.
MIN_SHARED_PREFIX = 16


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


class BatchEngine:
    """A llama.cpp context for `n_parallel` sequences of up to `n_ctx_seq` tokens each.

    `backend` is a loaded `LlamaCppBackend`; the engine shares its model weights and LoRA
    adapter and owns only the context (KV cache) and batch. Close it to free them.
    `unified=True` puts all sequences in one cache (llama.cpp's default): every token then
    attends over all of them (masked), which costs more and changes the summation order.
    """

    def __init__(self, backend: Any, n_parallel: int, n_ctx_seq: int, *, n_batch: int = 512, unified: bool = False):
        lc = backend._llama_cpp
        self._lc = lc
        self._backend = backend
        self.model = model_ptr(backend._llm)
        self.vocab = vocab_ptr(backend._llm)
        self.n_vocab = lc.llama_vocab_n_tokens(self.vocab)
        self.n_parallel = n_parallel
        self.n_ctx_seq = n_ctx_seq
        self.n_batch = n_batch
        params = lc.llama_context_default_params()
        params.n_ctx = n_parallel * n_ctx_seq
        params.n_batch = n_batch
        params.n_ubatch = n_batch
        params.n_seq_max = n_parallel
        params.n_threads = backend.n_threads
        params.n_threads_batch = backend.n_threads
        params.kv_unified = unified
        params.no_perf = True
        # Same attention kernels as the single-sequence context, so greedy replies match it.
        params.flash_attn_type = backend._llm.context_params.flash_attn_type
        params.type_k = backend._llm.context_params.type_k
        params.type_v = backend._llm.context_params.type_v
        self.ctx = lc.llama_init_from_model(self.model, params)
        if not self.ctx:
            raise BackendError(
                f"llama.cpp could not allocate a context for {n_parallel} sequences x {n_ctx_seq} tokens: "
                "lower --parallel or --n-ctx"
            )
        adapter = lora_adapter(backend._llm)
        if adapter is not None:
            adapters = (lc.llama_adapter_lora_p_ctypes * 1)(adapter)
            scales = (ctypes.c_float * 1)(backend._llm.lora_scale)
            if lc.llama_set_adapters_lora(self.ctx, adapters, 1, scales):
                self.close()
                raise BackendError("llama.cpp could not apply the LoRA adapter to the batch context")
        self.mem = lc.llama_get_memory(self.ctx)
        self.n_ctx_seq = lc.llama_n_ctx(self.ctx) if unified else lc.llama_n_ctx_seq(self.ctx)
        # Partial cache removal (prefix reuse, rejected drafts) needs a plain attention cache.
        self.can_trim = not (
            lc.llama_model_is_recurrent(self.model)
            or lc.llama_model_is_hybrid(self.model)
            or lc.llama_model_n_swa(self.model) > 0
        )
        self._batch = lc.llama_batch_init(n_batch, 0, 1)
        self._slots = [_Slot(i) for i in range(n_parallel)]
        self._running = False
        self.last_run: dict[str, Any] = {}

    # --- public -------------------------------------------------------------------------

    def fits(self, n_parallel: int, n_ctx_seq: int) -> bool:
        return self.ctx is not None and n_parallel <= self.n_parallel and n_ctx_seq <= self.n_ctx_seq

    def run(
        self,
        requests: Sequence[Request],
        options: GenerationOptions,
        *,
        parallel: int | None = None,
        drafter: Any = None,
        n_draft: int = 0,
    ) -> Iterator[tuple[int, Chunk]]:
        """Yield (index, chunk) for every request; each index's last chunk carries Stats.

        Sequences stop at an end-of-generation token, a stop string, their token limit,
        `options.drop` (that request only: finish_reason "dropped", its slot taken by the next
        prompt at once) or `options.cancel`; on cancel (or Ctrl-C) every unfinished request
        gets a final chunk with finish_reason "cancelled" (then KeyboardInterrupt is raised again).
        """
        if self._running:
            raise BackendError("this model is already running a batch: finish (or close) that one first")
        n_slots = min(parallel or self.n_parallel, self.n_parallel)
        slots = self._slots[:n_slots]
        queue = deque(range(len(requests)))
        seed = options.seed if options.seed is not None else random.randint(0, 2**31 - 1)
        grammar = self._backend._grammar(options.json_schema)
        n_draft = min(n_draft, self.n_batch // n_slots - 1) if drafter is not None else 0
        interrupted = consistent = False
        self._running = True
        steps = decoded = 0
        self._drafted = self._accepted = self._moved = 0
        t0 = time.perf_counter()
        try:
            try:
                decoded += self._share_prefix(slots, [requests[i].tokens for i in list(queue)[:n_slots]])
                while queue or any(s.job for s in slots):
                    if options.cancelled:
                        break
                    yield from self._drop(slots, options)
                    free = [s for s in slots if s.job is None]
                    while queue and free:
                        index = queue.popleft()
                        if options.dropped(index):
                            yield index, self._cancelled_chunk(requests[index], "dropped")
                            continue
                        # The free slot whose cache shares the longest prefix with this prompt.
                        slot = max(free, key=lambda s: common_prefix(s.cached, requests[index].tokens))
                        free.remove(slot)
                        self._admit(slot, index, requests, options, seed, grammar)
                    if not any(s.job for s in slots):
                        continue  # every request left was dropped: nothing to decode
                    if not queue:
                        self._compact(slots)
                    if n_draft:
                        for slot in slots:
                            if slot.job is not None and slot.job.generating:
                                self._draft(slot, drafter, n_draft)
                    plan = self._fill(slots)
                    rc = self._lc.llama_decode(self.ctx, self._batch)
                    if rc != 0:
                        raise BackendError(
                            f"llama.cpp failed to decode a batch (code {rc}): lower --parallel or --n-ctx"
                        )
                    steps += 1
                    decoded += self._batch.n_tokens
                    for slot, n_added, first_out in plan:
                        yield from self._advance(slot, n_added, first_out)
            except KeyboardInterrupt:
                interrupted = True
            consistent = not interrupted
            # Cancelled or interrupted: every request not finished gets its final chunk.
            for slot in slots:
                if slot.job is not None:
                    slot.job.finish = "cancelled"
                    yield self._finish(slot)
            for index in queue:
                yield index, self._cancelled_chunk(requests[index])
            queue.clear()
        finally:
            self._running = False
            for slot in slots:
                if slot.job is not None:
                    slot.job.sampler.close()
                    slot.job = None
            if not consistent:  # stopped between a decode and its bookkeeping: forget the caches
                self._reset(slots)
            self.last_run = {
                "steps": steps,
                "decoded_tokens": decoded,
                "drafted": self._drafted,
                "accepted": self._accepted,
                "moved": self._moved,
                "wall_s": time.perf_counter() - t0,
            }
        if interrupted:
            raise KeyboardInterrupt

    def clear(self) -> None:
        """Forget every cached prompt (the next run evaluates all prompts in full)."""
        self._reset(self._slots)

    def close(self) -> None:
        if getattr(self, "ctx", None):
            self._lc.llama_batch_free(self._batch)
            self._lc.llama_free(self.ctx)
            self.ctx = None

    # --- steps --------------------------------------------------------------------------

    def _admit(
        self, slot: _Slot, index: int, requests: Sequence[Request], options: GenerationOptions, seed: int, grammar: Any
    ) -> None:
        """Give request `index` to the free `slot`, keeping the cached prefix it shares."""
        request = requests[index]
        tokens = request.tokens
        keep = common_prefix(slot.cached, tokens) if self.can_trim else 0
        keep = min(keep, len(tokens) - 1)  # the last prompt token is decoded again for its logits
        if not self._lc.llama_memory_seq_rm(self.mem, slot.seq_id, keep, -1):
            self._lc.llama_memory_seq_rm(self.mem, slot.seq_id, -1, -1)
            keep = 0
        del slot.cached[keep:]
        sampler = SequenceSampler(self._lc, self.vocab, self.n_vocab, options, seed_for(options, index, seed), grammar)
        job = _Job(index, request, sampler, StopMatcher([*options.stop, *request.stops]))
        job.pending = tokens[keep:]
        job.history = list(tokens)
        job.cached = keep
        job.t_admit = time.perf_counter()
        slot.job = job

    def _share_prefix(self, slots: Sequence[_Slot], prompts: Sequence[Sequence[int]]) -> int:
        """Evaluate the prefix the first wave of prompts shares (chat template, system
        prompt, rubric) once, and copy its cache to every slot instead of reading it in
        each. Returns the tokens decoded."""
        if not self.can_trim or len(prompts) < 2:
            return 0
        shared = min(len(p) for p in prompts) - 1  # each prompt keeps a last token to decode
        for other in prompts[1:]:
            shared = min(shared, common_prefix(prompts[0], other))
        prefix = list(prompts[0][:shared])
        missing = [s for s in slots if common_prefix(s.cached, prefix) < shared]
        if shared < MIN_SHARED_PREFIX or len(missing) < 2:
            return 0
        source = max(slots, key=lambda s: common_prefix(s.cached, prefix))
        have = common_prefix(source.cached, prefix)
        if have < shared:
            self._lc.llama_memory_seq_rm(self.mem, source.seq_id, have, -1)
            del source.cached[have:]
        b = self._batch
        for start in range(have, shared, self.n_batch):
            chunk = prefix[start : start + self.n_batch]
            for j, token in enumerate(chunk):
                b.token[j], b.pos[j], b.n_seq_id[j], b.logits[j] = token, start + j, 1, False
                b.seq_id[j][0] = source.seq_id
            b.n_tokens = len(chunk)
            rc = self._lc.llama_decode(self.ctx, b)
            if rc != 0:
                raise BackendError(f"llama.cpp failed to decode a batch (code {rc}): lower --parallel or --n-ctx")
            source.cached.extend(chunk)
        for slot in missing:
            if slot is source:
                continue
            # A cache stream is copied whole; the copy is then cut back to the prefix.
            self._lc.llama_memory_seq_rm(self.mem, slot.seq_id, -1, -1)
            self._lc.llama_memory_seq_cp(self.mem, source.seq_id, slot.seq_id, -1, -1)
            self._lc.llama_memory_seq_rm(self.mem, slot.seq_id, shared, -1)
            slot.cached[:] = prefix
        return shared - have

    def _compact(self, slots: Sequence[_Slot]) -> None:
        """Move sequences down into free slots so the busy ones have consecutive ids.

        llama.cpp cuts a batch at every gap in the sequence ids, and each piece is another
        pass over the weights; once no prompt is waiting to fill a freed slot, the last
        sequences are moved (a copy of their cache stream) instead.
        """
        busy = [s for s in slots if s.job is not None]
        if not self.can_trim or not busy or busy[-1].seq_id == len(busy) - 1:
            return
        free = [s for s in slots[: len(busy)] if s.job is None]
        for src, dst in zip(reversed([s for s in busy if s.seq_id >= len(busy)]), free):
            self._lc.llama_memory_seq_rm(self.mem, dst.seq_id, -1, -1)
            self._lc.llama_memory_seq_cp(self.mem, src.seq_id, dst.seq_id, -1, -1)
            self._lc.llama_memory_seq_rm(self.mem, src.seq_id, -1, -1)
            dst.job, src.job = src.job, None
            dst.cached, src.cached = src.cached, []
            self._moved += 1

    def _draft(self, slot: _Slot, drafter: Any, n_draft: int) -> None:
        """Append up to `n_draft` proposed tokens to the sequence's next step."""
        job = slot.job
        assert job is not None
        room = min(job.draft_len, n_draft, job.request.limit - job.generated - 1, self.n_ctx_seq - len(slot.cached) - 2)
        if room <= 0:
            return
        drafts = list(drafter.propose(slot.seq_id, job.history, room))[:room]
        job.drafts = drafts
        job.pending = job.pending[:1] + drafts
        self._drafted += len(drafts)

    def _fill(self, slots: Sequence[_Slot]) -> list[tuple[_Slot, int, int]]:
        """Fill the batch: every generating sequence whole, then prompt chunks in what is left.

        Tokens are written in sequence-id order: llama.cpp splits a batch for a cache with
        one stream per sequence into micro-batches of consecutive sequence ids, so this keeps
        a decode step to one pass over the weights. Returns, per slot that contributed,
        (slot, tokens added, batch index of its first output or -1).
        """
        active = [s for s in slots if s.job is not None]
        room = self.n_batch - sum(len(s.job.pending) for s in active if s.job.generating)
        take: dict[int, int] = {}
        for slot in active:
            job = slot.job
            if job.generating:
                take[slot.seq_id] = len(job.pending)
            elif room > 0:
                take[slot.seq_id] = min(room, len(job.pending))
                room -= take[slot.seq_id]
        b = self._batch
        n = 0
        plan = []
        for slot in active:
            count = take.get(slot.seq_id, 0)
            if not count:
                continue
            job = slot.job
            pos = len(slot.cached)
            last_prompt = not job.generating and count == len(job.pending)
            first_out = -1
            for j in range(count):
                out = job.generating or (last_prompt and j == count - 1)
                b.token[n] = job.pending[j]
                b.pos[n] = pos + j
                b.n_seq_id[n] = 1
                b.seq_id[n][0] = slot.seq_id
                b.logits[n] = out
                if out and first_out < 0:
                    first_out = n
                n += 1
            plan.append((slot, count, first_out))
        b.n_tokens = n
        return plan

    def _advance(self, slot: _Slot, n_added: int, first_out: int) -> Iterator[tuple[int, Chunk]]:
        """Book the decoded tokens of `slot`, then sample its outputs and emit text."""
        job = slot.job
        assert job is not None
        slot.cached.extend(job.pending[:n_added])
        job.pending = job.pending[n_added:]
        if first_out < 0:
            return
        drafts, job.drafts = job.drafts, []
        job.generating = True
        for i in range(len(drafts) + 1):
            token = job.sampler.sample(self.ctx, first_out + i)
            text = self._emit(job, token)
            if text:
                yield job.index, Chunk(text, (token,))
            if job.finish is None and i < len(drafts) and token == drafts[i]:
                self._accepted += 1
                continue
            # Drop the cache of drafts that were not taken.
            valid = len(slot.cached) - len(drafts) + i
            if valid < len(slot.cached):
                self._lc.llama_memory_seq_rm(self.mem, slot.seq_id, valid, -1)
                del slot.cached[valid:]
            job.pending = [token]
            break
        if drafts:  # a draft fully taken earns a longer one; a miss, one just past the hits
            job.draft_len = min(2 * job.draft_len, 64) if i == len(drafts) else i + 1
        if job.finish is not None:
            yield self._finish(slot)

    def _emit(self, job: _Job, token: int) -> str:
        now = time.perf_counter()
        job.t_first = job.t_first or now
        job.t_last = now
        job.received += 1
        if self._lc.llama_vocab_is_eog(self.vocab, token):
            job.finish = "stop"
            return ""
        job.generated += 1
        job.history.append(token)
        text = job.stops.feed(job.utf8.feed(self._backend._piece(token)))
        if job.stops.stopped:
            job.finish = "stop"
        elif job.generated >= job.request.limit:
            job.finish = "length"
        return text

    def _finish(self, slot: _Slot) -> tuple[int, Chunk]:
        job = slot.job
        assert job is not None
        slot.job = None
        job.sampler.close()
        t_end = time.perf_counter()
        tail = job.stops.feed(job.utf8.flush()) + job.stops.flush()
        t_first = job.t_first or t_end
        t_last = job.t_last or t_end
        n_prompt = len(job.request.tokens)
        stats = Stats(
            prompt_tokens=n_prompt,
            completion_tokens=job.generated,
            prompt_tps=(n_prompt - job.cached) / max(t_first - job.t_admit, 1e-9),
            decode_tps=(job.received - 1) / (t_last - t_first) if job.received > 1 and t_last > t_first else 0.0,
            ttft_s=t_first - job.t_admit,
            total_s=t_end - job.t_admit,
            finish_reason=job.finish or "cancelled",
            cached_tokens=job.cached,
        )
        return job.index, Chunk(tail, stats=stats)

    def _drop(self, slots: Sequence[_Slot], options: GenerationOptions) -> Iterator[tuple[int, Chunk]]:
        """End the running requests that `options.drop` no longer wants, freeing their slots."""
        if options.drop is None:
            return
        for slot in slots:
            if slot.job is not None and options.dropped(slot.job.index):
                slot.job.finish = "dropped"
                yield self._finish(slot)

    @staticmethod
    def _cancelled_chunk(request: Request, reason: str = "cancelled") -> Chunk:
        n = len(request.tokens)
        return Chunk("", stats=Stats(n, 0, 0.0, 0.0, 0.0, 0.0, reason))

    def _reset(self, slots: Sequence[_Slot]) -> None:
        """Forget the caches of `slots` (after an error the bookkeeping may not match them)."""
        for slot in slots:
            self._lc.llama_memory_seq_rm(self.mem, slot.seq_id, -1, -1)
            slot.cached.clear()


# --- the backend's batch entry point --------------------------------------------------------


def prepare_requests(backend: Any, prompts: Sequence[Any], options: GenerationOptions) -> list[Request]:
    """Tokenize every prompt as `LlamaCppBackend.stream` does, and give each its token budget."""
    requests = []
    for i, prompt in enumerate(prompts):
        tokens, format_stops = backend.prompt_tokens(prompt)
        if not tokens:
            raise BackendError(f"prompt {i} is empty: there is nothing to continue from")
        if len(tokens) >= backend.n_ctx:
            err = ContextOverflowError(len(tokens), backend.n_ctx)
            err.args = (f"prompt {i}: {err}",)
            raise err
        room = backend.n_ctx - len(tokens)
        limit = room if options.max_tokens is None else min(options.max_tokens, room)
        requests.append(Request(tokens, format_stops, limit))
    return requests


def plan_for(
    backend: Any, requests: Sequence[Request], parallel: int | None, n_draft: int = 0, notify: Any = None
) -> Plan:
    """The plan for these requests on this backend: per-sequence cache sized to the longest need."""
    need = max(len(r.tokens) + r.limit for r in requests) + n_draft + 1
    return plan_parallel(
        backend.shape,
        min(need, backend.n_ctx + n_draft + 1),
        parallel,
        n_prompts=len(requests),
        n_outputs=1 + n_draft,
        gpu=backend.on_gpu,
        notify=notify,
    )


def engine_for(backend: Any, plan: Plan) -> BatchEngine:
    """The backend's batch engine, rebuilt only when the plan needs more than the one it has."""
    engine = backend._batch_engine
    if engine is not None and engine.fits(plan.n_parallel, plan.n_ctx_seq):
        return engine
    if engine is not None:
        engine.close()
        backend._batch_engine = None
    n = plan.n_parallel
    while True:
        try:
            backend._batch_engine = BatchEngine(backend, n, plan.n_ctx_seq, n_batch=backend._llm.n_batch)
            return backend._batch_engine
        except BackendError:
            if n == 1:
                raise
            print(
                f"llamarch: llama.cpp could not allocate {n} sequences x {plan.n_ctx_seq} tokens; trying {n // 2}",
                file=sys.stderr,
            )
            n //= 2


def stream_batch(
    backend: Any, prompts: Sequence[Any], options: GenerationOptions, parallel: int | None = None
) -> Iterator[tuple[int, Chunk]]:
    """`LlamaCppBackend.stream_batch`: plan, then run the prompts through the batch engine."""
    if not prompts:
        return
    if backend._llm is None:
        raise BackendError(f"{backend.model_name} is closed: load it again")
    requests = prepare_requests(backend, prompts, options)
    spec = backend._speculative
    n_draft = spec.n_draft if spec is not None else 0
    plan = plan_for(backend, requests, parallel, n_draft)
    engine = engine_for(backend, plan)
    drafter = spec.drafter(engine.n_parallel, engine.n_ctx_seq) if spec is not None else None
    backend.last_plan = plan
    yield from engine.run(
        requests, options, parallel=min(plan.n_parallel, engine.n_parallel), drafter=drafter, n_draft=n_draft
    )
