"""Models through MLX (mlx-lm): Apple Silicon, and Linux CPU with an optimized BLAS.

A model is an MLX / Hugging Face directory, or a catalog id / GGUF file, converted once to
one (`llamarch convert`). An MLX LoRA adapter directory can be applied with `lora_path`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BackendError, ContextOverflowError
from ..mlx_runtime import bytes_to_unicode, import_mlx, load_model
from .base import Chunk, GenerationOptions, Message, Prompt, Stats
from .llamacpp import TRANSCRIPT_STOPS, render_transcript
from .textstream import StopMatcher, Utf8Stream

DEFAULT_N_CTX = 4096


@dataclass
class _Reply:
    """The state of one reply while it streams: text decoding, stops, timing."""

    n_prompt: int
    limit: int
    stops: StopMatcher
    utf8: Utf8Stream = field(default_factory=Utf8Stream)
    t_first: float | None = None
    t_last: float | None = None
    received: int = 0
    generated: int = 0
    finish: str | None = None


class MLXBackend:
    """One model in MLX. `stream` decodes one reply; `stream_batch` decodes several at once."""

    name = "mlx"

    def __init__(
        self,
        model_dir: str | Path,
        *,
        n_ctx: int | None = None,
        lora_path: str | Path | None = None,
        chat_template: str | None = None,
        use_chat_template: bool = True,
        seed: int | None = None,
        **_ignored: Any,  # llama.cpp's engine options (n_threads, n_gpu_layers, ...) do not apply
    ):
        self.mx = import_mlx()
        self.model_dir = Path(model_dir)
        self.model_name = self.model_dir.name
        adapter = self._adapter_dir(lora_path, self.model_dir)
        self.model, self.tokenizer = load_model(self.model_dir, adapter)
        self.lora_path = adapter
        config = getattr(self.model, "args", None)
        trained = getattr(config, "max_position_embeddings", None) or DEFAULT_N_CTX
        self.n_ctx_train = int(trained)
        self.n_ctx = int(n_ctx or min(DEFAULT_N_CTX, self.n_ctx_train))
        self._template = chat_template
        self._use_template = use_chat_template and (chat_template is not None or self.tokenizer.has_chat_template)
        self.eos_ids = set(self.tokenizer.eos_token_ids)
        self._special = set(getattr(self.tokenizer, "all_special_ids", ()) or ())
        self._pieces: dict[int, bytes] = {}
        self._byte_level = self._is_byte_level()
        self._cache: list[Any] | None = None
        self._cache_tokens: list[int] = []
        if seed is not None:
            self.mx.random.seed(seed)

    @classmethod
    def open(cls, model: str | Path | None, **options: Any) -> MLXBackend:
        """Load an MLX directory, or a catalog id / GGUF path (converted once, cached)."""
        from ..catalog import load_catalog
        from ..mlx_convert import mlx_model_dir

        directory = mlx_model_dir(model)
        entry = load_catalog().get(str(model)) if model else None
        if entry is not None:
            options.setdefault("chat_template", entry.chat_template)
            options.setdefault("use_chat_template", entry.chat_format != "none")
        backend = cls(directory, **options)
        backend.model_name = entry.id if entry else directory.name
        return backend

    @staticmethod
    def _adapter_dir(lora_path: str | Path | None, model_dir: Path) -> Path | None:
        if lora_path is None:
            return None
        path = Path(lora_path)
        if path.is_file() and path.suffix == ".gguf":
            raise BackendError(
                f"{path} is a GGUF adapter, which runs on llama.cpp: use --backend llamacpp, "
                "or give the MLX adapter directory (the output of `llamarch train`)"
            )
        if not (path / "adapter_config.json").is_file():
            raise BackendError(f"{path} is not an MLX adapter directory (no adapter_config.json)")
        import json

        from ..identity import check_adapter_base, mlx_identity

        config = json.loads((model_dir / "config.json").read_text())
        check_adapter_base(path, mlx_identity(model_dir, config))
        return path

    # --- prompt preparation -------------------------------------------------------

    @property
    def has_chat_template(self) -> bool:
        return self._use_template

    def render_chat(self, messages: Sequence[Message]) -> str:
        if not self._use_template:
            return render_transcript(messages)
        kwargs = {"chat_template": self._template} if self._template else {}
        try:
            return self.tokenizer.apply_chat_template(
                list(messages), add_generation_prompt=True, tokenize=False, **kwargs
            )
        except Exception as e:  # jinja errors: a template that rejects the conversation
            raise BackendError(f"the chat template of {self.model_name} rejected the messages: {e}") from None

    def prompt_tokens(self, prompt: Prompt) -> tuple[list[int], list[str]]:
        """Token ids for a prompt, and extra stop strings its format needs."""
        if isinstance(prompt, str):
            return list(self.tokenizer.encode(prompt, add_special_tokens=True)), []
        text = self.render_chat(prompt)
        stops = [] if self._use_template else list(TRANSCRIPT_STOPS)
        return list(self.tokenizer.encode(text, add_special_tokens=False)), stops

    def _sampling(self, options: GenerationOptions) -> tuple[Any, list[Any]]:
        from mlx_lm.sample_utils import make_logits_processors, make_sampler

        if options.json_schema is not None:
            raise BackendError("JSON-schema constrained output is not available on the mlx backend: use llamacpp")
        sampler = make_sampler(
            temp=options.temperature,
            top_p=options.top_p if options.top_p < 1 else 0.0,
            min_p=options.min_p,
            top_k=options.top_k,
        )
        penalty = options.repeat_penalty if options.repeat_penalty != 1.0 else None
        return sampler, make_logits_processors(repetition_penalty=penalty)

    def _start(self, tokens: list[int], options: GenerationOptions, format_stops: list[str]) -> _Reply:
        n_prompt = len(tokens)
        if n_prompt >= self.n_ctx:
            raise ContextOverflowError(n_prompt, self.n_ctx)
        room = self.n_ctx - n_prompt
        limit = room if options.max_tokens is None else min(options.max_tokens, room)
        return _Reply(n_prompt, limit, StopMatcher([*options.stop, *format_stops]))

    # --- token text ---------------------------------------------------------------------

    def _is_byte_level(self) -> bool:
        backend = getattr(self.tokenizer, "_tokenizer", None)
        inner = getattr(backend, "backend_tokenizer", None)
        decoder = getattr(inner, "decoder", None)
        return decoder is not None and type(decoder).__name__ == "ByteLevel"

    def _piece(self, token: int) -> bytes:
        """The bytes of one generated token; control tokens print nothing (as in llama.cpp)."""
        piece = self._pieces.get(token)
        if piece is None:
            if token in self._special:
                piece = b""
            elif self._byte_level:
                decoder = _BYTE_DECODER
                text = self.tokenizer.convert_ids_to_tokens(token) or ""
                piece = b"".join(bytes([decoder[c]]) if c in decoder else c.encode("utf-8") for c in text)
            else:
                piece = self.tokenizer.decode([token]).encode("utf-8")
            self._pieces[token] = piece
        return piece

    def _feed(self, reply: _Reply, token: int, options: GenerationOptions) -> str:
        """Account for one sampled token; return the text it releases (sets reply.finish)."""
        now = time.perf_counter()
        reply.t_last = now
        reply.t_first = reply.t_first or now
        reply.received += 1
        if token in self.eos_ids:
            reply.finish = "stop"
            return ""
        reply.generated += 1
        text = reply.stops.feed(reply.utf8.feed(self._piece(token)))
        if reply.stops.stopped:
            reply.finish = "stop"
        elif options.cancelled:
            reply.finish = "cancelled"
        elif reply.generated >= reply.limit:
            reply.finish = "length"
        return text

    @staticmethod
    def _finish(reply: _Reply, t_call: float, t_start: float, cached: int = 0) -> Chunk:
        t_end = time.perf_counter()
        tail = reply.stops.feed(reply.utf8.flush()) + reply.stops.flush()
        t_first = reply.t_first or t_end
        t_last = reply.t_last or t_end
        stats = Stats(
            prompt_tokens=reply.n_prompt,
            completion_tokens=reply.generated,
            prompt_tps=(reply.n_prompt - cached) / max(t_first - t_start, 1e-9),
            decode_tps=(reply.received - 1) / (t_last - t_first) if reply.received > 1 and t_last > t_first else 0.0,
            ttft_s=t_first - t_call,
            total_s=t_end - t_call,
            finish_reason=reply.finish or "length",
            cached_tokens=cached,
        )
        return Chunk(tail, stats=stats)

    # --- one reply ------------------------------------------------------------------------

    def _reuse_cache(self, tokens: list[int]) -> int:
        """Keep the KV cache's common prefix with `tokens`; return how many tokens it covers."""
        from mlx_lm.models.cache import can_trim_prompt_cache, make_prompt_cache, trim_prompt_cache

        if self._cache is None or not can_trim_prompt_cache(self._cache):
            self._cache, self._cache_tokens = make_prompt_cache(self.model), []
        prefix = 0
        for a, b in zip(self._cache_tokens, tokens):
            if a != b:
                break
            prefix += 1
        prefix = min(prefix, len(tokens) - 1)  # the last prompt token is always evaluated
        offset = self._cache[0].offset if self._cache else 0
        if offset > prefix:
            trim_prompt_cache(self._cache, offset - prefix)
        self._cache_tokens = self._cache_tokens[:prefix]
        return prefix

    def stream(self, prompt: Prompt, options: GenerationOptions) -> Iterator[Chunk]:
        from mlx_lm.generate import generate_step

        t_call = time.perf_counter()
        tokens, format_stops = self.prompt_tokens(prompt)
        reply = self._start(tokens, options, format_stops)
        sampler, processors = self._sampling(options)
        self.mx.random.seed(options.seed if options.seed is not None else random.randint(0, 2**31 - 1))
        cached = self._reuse_cache(tokens)
        t_start = time.perf_counter()
        steps = generate_step(
            self.mx.array(tokens[cached:]),
            self.model,
            max_tokens=reply.limit,
            sampler=sampler,
            logits_processors=processors,
            prompt_cache=self._cache,
        )
        fed = list(tokens)
        try:
            for token, _ in steps if reply.limit > 0 else ():
                fed.append(int(token))
                text = self._feed(reply, int(token), options)
                if text:
                    yield Chunk(text, (int(token),))
                if reply.finish:
                    break
        finally:
            steps.close()
            self._remember(fed)
        yield self._finish(reply, t_call, t_start, cached)

    def _remember(self, fed: list[int]) -> None:
        """Record which tokens the KV cache holds (generation runs one token ahead)."""
        offset = self._cache[0].offset if self._cache else 0
        if offset > len(fed):
            from mlx_lm.models.cache import trim_prompt_cache

            trim_prompt_cache(self._cache, offset - len(fed))
            offset = len(fed)
        self._cache_tokens = fed[:offset]

    # --- several replies at once ------------------------------------------------------------

    def stream_batch(
        self, prompts: Sequence[Prompt], options: GenerationOptions, parallel: int | None = None
    ) -> Iterator[tuple[int, Chunk]]:
        """Replies to several prompts decoded together (mlx-lm's BatchGenerator).

        Yields (index, chunk); each index's last chunk carries its stats. A prompt that
        `options.drop` names is removed from the batch (finish reason "dropped").
        """
        from mlx_lm.generate import BatchGenerator

        t_call = time.perf_counter()
        prepared = [self.prompt_tokens(p) for p in prompts]
        replies = [self._start(tokens, options, stops) for tokens, stops in prepared]
        if not prompts:
            return
        sampler, processors = self._sampling(options)
        # mlx-lm samples a batch from one random state: per-prompt seeds cannot apply, so the
        # first one seeds the batch (reproducible for the same batch, not for each prompt alone).
        seed = options.seeds[0] if options.seeds else options.seed
        self.mx.random.seed(seed if seed is not None else random.randint(0, 2**31 - 1))
        width = max(1, parallel or min(len(prompts), 8))
        gen = BatchGenerator(
            self.model,
            max_tokens=max(r.limit for r in replies) + 1,
            stop_tokens=[[t] for t in self.eos_ids],
            sampler=sampler,
            logits_processors=processors,
            completion_batch_size=width,
            prefill_batch_size=min(width, 8),
        )
        t_start = time.perf_counter()
        try:
            uids = gen.insert([tokens for tokens, _ in prepared], [r.limit + 1 for r in replies])
            index = {uid: i for i, uid in enumerate(uids)}
            pending = {i for i, r in enumerate(replies) if r.limit > 0}
            for i in sorted(set(range(len(replies))) - pending):
                yield i, self._finish(replies[i], t_call, t_start)
            if not pending:
                return
            while pending:
                dropped = sorted(i for i in pending if options.dropped(i))
                if dropped:  # ended where they are, or never started; the rest go on
                    gen.remove([uids[i] for i in dropped])
                    for i in dropped:
                        replies[i].finish = "dropped"
                        pending.discard(i)
                        yield i, self._finish(replies[i], t_call, t_start)
                    continue
                responses = gen.next_generated()
                if not responses:
                    break
                done = []
                for r in responses:
                    i = index.get(r.uid)
                    if i is None or i not in pending:
                        continue
                    reply = replies[i]
                    text = self._feed(reply, int(r.token), options)
                    if text:
                        yield i, Chunk(text, (int(r.token),))
                    if reply.finish or r.finish_reason is not None:
                        reply.finish = reply.finish or ("stop" if r.finish_reason == "stop" else "length")
                        if r.finish_reason is None:  # our stop (stop string, limit, cancel): retire it
                            done.append(r.uid)
                        pending.discard(i)
                        yield i, self._finish(reply, t_call, t_start)
                if done:
                    gen.remove(done)
        finally:
            gen.close()

    # --- tokens -------------------------------------------------------------------------

    def tokenize(self, text: str, special: bool = False, add_bos: bool = False) -> list[int]:
        ids = list(self.tokenizer.encode(text, add_special_tokens=False))
        bos = getattr(self.tokenizer, "bos_token_id", None)
        return [bos, *ids] if add_bos and bos is not None else ids

    def detokenize(self, tokens: Sequence[int]) -> str:
        return b"".join(self._piece(int(t)) for t in tokens).decode("utf-8", errors="replace")

    # --- lifetime -----------------------------------------------------------------------

    def close(self) -> None:
        self._cache = None
        self.model = None

    def __enter__(self) -> MLXBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_BYTE_DECODER = {c: b for b, c in bytes_to_unicode().items()}
