"""`LLM`: one model on one engine, behind a small, stable API."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from typing import Any

from .backends import (
    Backend,
    BatchPlanning,
    BatchStreaming,
    ChatTemplated,
    Chunk,
    GenerationOptions,
    Message,
    ModelNamed,
    Prompt,
    Response,
    Stats,
    collect,
    open_backend,
)
from .backends.base import seed_for


class LLM:
    """A language model: `LLM("qwen2.5-coder-0.5b")`, `LLM("/path/model.gguf")`.

    Options given here are the engine's (n_ctx, n_threads, n_gpu_layers, lora_path, ...);
    options given to a call are generation options (max_tokens, temperature, stop, ...).
    A string prompt means one user message, through the chat template, in every method
    (`generate`, `stream`, `respond`, the batch methods), unless `raw=True`: then it is
    completed as plain text. A list of messages always goes through the template.
    """

    def __init__(self, model: str | os.PathLike[str] | None = None, backend: str | None = None, **backend_options: Any):
        from .identity import infer_backend  # the catalog loads only when a spec needs it

        spec = os.fspath(model) if model is not None else None
        self.backend_name = backend or infer_backend(spec)
        self.backend: Backend = open_backend(self.backend_name, spec, **backend_options)
        self.model_id: str = self.backend.model_name if isinstance(self.backend, ModelNamed) else spec or ""

    def __repr__(self) -> str:
        return f"LLM({self.model_id!r}, backend={self.backend_name!r})"

    @property
    def n_ctx(self) -> int:
        return self.backend.n_ctx

    # --- generation -----------------------------------------------------------------

    def stream(self, prompt: Prompt, *, raw: bool = False, **options: Any) -> Iterator[Chunk]:
        """Yield the reply chunk by chunk; the last chunk carries `stats`."""
        opts = options.pop("options", None) or GenerationOptions.from_kwargs(**options)
        return self.backend.stream(self.prompt_for(prompt, raw), opts)

    def respond(self, prompt: Prompt, *, raw: bool = False, **options: Any) -> Response:
        """The whole reply with its stats."""
        return collect(self.stream(prompt, raw=raw, **options))

    def prompt_for(self, prompt: Prompt, raw: bool = False, system: str | None = None) -> Prompt:
        """What the engine is given: a string through `messages_for` unless `raw`; messages as they are."""
        return self.messages_for(prompt, system) if isinstance(prompt, str) and not raw else prompt

    def messages_for(self, prompt: str, system: str | None = None) -> Prompt:
        """What `generate` sends: chat messages, or plain text for models without a chat template."""
        if isinstance(self.backend, ChatTemplated) and not self.backend.has_chat_template:
            return f"{system}\n\n{prompt}" if system else prompt
        messages: list[Message] = [{"role": "system", "content": system}] if system else []
        return messages + [{"role": "user", "content": prompt}]

    def generate(self, prompt: str, *, system: str | None = None, raw: bool = False, **options: Any) -> str:
        """Answer `prompt` (through the chat template unless `raw` or the model has none)."""
        return self.respond(self.prompt_for(prompt, raw, system), raw=True, **options).text

    def chat(self, messages: Sequence[Message], **options: Any) -> str:
        return self.respond(list(messages), **options).text

    # --- batches --------------------------------------------------------------------

    def stream_batch(
        self, prompts: Sequence[Prompt], parallel: int | None = None, *, raw: bool = False, **options: Any
    ) -> Iterator[tuple[int, Chunk]]:
        """Replies to many prompts: yields (index, chunk); each index's last chunk has stats.

        Engines that decode several sequences at once (`stream_batch` on the backend) are
        given `parallel`; the others answer the prompts one after another.
        """
        opts = options.pop("options", None) or GenerationOptions.from_kwargs(**options)
        if opts.seeds is not None and len(opts.seeds) != len(prompts):
            raise ValueError(f"{len(opts.seeds)} seeds for {len(prompts)} prompts: give one seed per prompt")
        prompts = [self.prompt_for(p, raw) for p in prompts]
        if isinstance(self.backend, BatchStreaming):
            yield from self.backend.stream_batch(prompts, opts, parallel=parallel)
            return
        for i, prompt in enumerate(prompts):
            if opts.dropped(i):
                yield i, Chunk("", stats=Stats(0, 0, 0.0, 0.0, 0.0, 0.0, "dropped"))
                continue
            seed = seed_for(opts, i)
            for chunk in self.backend.stream(prompt, opts if seed is None else dataclasses.replace(opts, seed=seed)):
                yield i, chunk

    def plan_batch(
        self, prompts: Sequence[Prompt], parallel: int | None = None, *, raw: bool = False, **options: Any
    ) -> Any:
        """How `stream_batch` would run these prompts (sequences at once, KV cache bytes), or
        None for engines that do not plan; nothing is allocated. `plan.summary()` is one line."""
        opts = options.pop("options", None) or GenerationOptions.from_kwargs(**options)
        if not isinstance(self.backend, BatchPlanning):
            return None
        return self.backend.plan_batch([self.prompt_for(p, raw) for p in prompts], opts, parallel=parallel)

    def generate_batch(
        self, prompts: Sequence[Prompt], parallel: int | None = None, *, raw: bool = False, **options: Any
    ) -> list[Response]:
        """Whole replies to many prompts, in input order."""
        texts: dict[int, list[str]] = {i: [] for i in range(len(prompts))}
        stats: dict[int, Any] = {}
        for i, chunk in self.stream_batch(prompts, parallel=parallel, raw=raw, **options):
            texts[i].append(chunk.text)
            if chunk.stats is not None:
                stats[i] = chunk.stats
        return [Response("".join(texts[i]), stats[i]) for i in range(len(prompts))]

    # --- tokens ---------------------------------------------------------------------

    def tokenize(self, text: str, special: bool = False) -> list[int]:
        return self.backend.tokenize(text, special=special)

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self.backend.detokenize(tokens)

    # --- lifetime -------------------------------------------------------------------

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> LLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
