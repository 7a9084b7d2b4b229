"""The backend protocol: one required operation, `stream`; everything else loops over it."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

Message = dict[str, str]
"""A chat message: {"role": "system" | "user" | "assistant", "content": str}."""

Prompt = str | Sequence[Message]
"""To an engine, a plain string is completed as text and a list of messages goes through the
chat template. (`LLM` methods take a string as one user message unless `raw=True`.)"""

FINISH_REASONS = ("stop", "length", "cancelled", "dropped")


@dataclass
class GenerationOptions:
    """Sampling and stopping settings shared by every backend."""

    max_tokens: int | None = 512
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    seed: int | None = None
    seeds: Sequence[int] | None = None  # a batch's own seed per prompt (else each is derived from `seed`)
    stop: Sequence[str] = ()
    json_schema: dict[str, Any] | None = None  # constrain the output to this JSON schema
    cancel: threading.Event | None = field(default=None, repr=False)  # set() stops the reply
    # In a batch, drop(index) -> True stops that prompt's reply where it is (finish reason
    # "dropped"), or skips it if not started; asked before every step (llama.cpp) or request.
    drop: Callable[[int], bool] | None = field(default=None, repr=False)

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> GenerationOptions:
        """Build options from keyword arguments, ignoring those left as None."""
        known = cls.__dataclass_fields__
        unknown = sorted(set(kwargs) - set(known))
        if unknown:
            raise TypeError(f"unknown generation option(s): {', '.join(unknown)}")
        return cls(**{k: v for k, v in kwargs.items() if v is not None})

    @property
    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def dropped(self, index: int) -> bool:
        """Whether the batch's prompt `index` is no longer wanted (see `drop`)."""
        return self.drop is not None and self.drop(index)


def sequence_seed(seed: int, index: int) -> int:
    """The sampler seed of sequence `index` of a batch run with `seed`.

    Each sequence gets its own, so K samples of one prompt differ, while a seeded batch
    stays reproducible; sequence 0 keeps `seed` itself, so a batch of one samples as
    `stream` does.
    """
    if index == 0:
        return seed
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little") & 0x7FFFFFFF


def seed_for(options: GenerationOptions, index: int, batch_seed: int | None = None) -> int | None:
    """The sampler seed of prompt `index` of a batch: its own from `options.seeds`, else
    `sequence_seed` of the batch's seed (`options.seed`, or `batch_seed` when that is None).

    Per-prompt seeds let one batch hold several prompts' samples, each drawn as it would be
    in a batch of its own, so a result does not depend on what it was batched with.
    """
    if options.seeds is not None:
        return options.seeds[index]
    seed = options.seed if options.seed is not None else batch_seed
    return None if seed is None else sequence_seed(seed, index)


@dataclass(frozen=True)
class Stats:
    """Timing and token counts of one finished reply."""

    prompt_tokens: int  # tokens in the prompt
    completion_tokens: int  # tokens generated (end-of-generation token excluded)
    prompt_tps: float  # prompt tokens evaluated per second
    decode_tps: float  # generated tokens per second after the first
    ttft_s: float  # seconds from the call to the first token
    total_s: float
    finish_reason: str  # "stop" | "length" | "cancelled" | "dropped" (a batch's `drop` said so)
    cached_tokens: int = 0  # prompt tokens reused from the KV cache, not evaluated again

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Chunk:
    """A piece of streamed text; the last chunk of a reply carries its `stats`."""

    text: str
    token_ids: tuple[int, ...] = ()
    stats: Stats | None = None

    @property
    def done(self) -> bool:
        return self.stats is not None


@dataclass(frozen=True)
class Response:
    text: str
    stats: Stats

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, **self.stats.to_dict()}


def collect(chunks: Iterable[Chunk]) -> Response:
    """Drain a stream into one Response."""
    parts: list[str] = []
    stats = None
    for chunk in chunks:
        parts.append(chunk.text)
        if chunk.stats is not None:
            stats = chunk.stats
    if stats is None:
        raise RuntimeError("backend stream ended without stats")
    return Response("".join(parts), stats)


@runtime_checkable
class Backend(Protocol):
    """An engine that runs one model. Engines share no base class, only this shape."""

    name: str
    n_ctx: int

    def stream(self, prompt: Prompt, options: GenerationOptions) -> Iterator[Chunk]:
        """Yield the reply to `prompt` chunk by chunk; the last chunk carries Stats."""
        ...

    def tokenize(self, text: str, special: bool = False) -> list[int]: ...

    def detokenize(self, tokens: Sequence[int]) -> str: ...

    def close(self) -> None: ...


# --- optional capabilities: an engine has them or not; callers ask with isinstance() ---------


@runtime_checkable
class BatchStreaming(Protocol):
    """Decodes several sequences at once: yields (prompt index, chunk)."""

    def stream_batch(
        self, prompts: Sequence[Prompt], options: GenerationOptions, parallel: int | None = None
    ) -> Iterator[tuple[int, Chunk]]: ...


@runtime_checkable
class BatchPlanning(Protocol):
    """Says how `stream_batch` would run a batch (sequences at once, KV cache), allocating nothing."""

    def plan_batch(self, prompts: Sequence[Prompt], options: GenerationOptions, parallel: int | None = None) -> Any: ...


@runtime_checkable
class ChatTemplated(Protocol):
    """Knows whether its model has a chat template; an engine without this is taken to have one."""

    @property
    def has_chat_template(self) -> bool: ...


@runtime_checkable
class PromptTokens(Protocol):
    """Renders and tokenizes prompts itself, so a prompt's token count is exact."""

    def prompt_tokens(self, prompt: Prompt) -> tuple[list[int], list[str]]: ...


@runtime_checkable
class ChatPrefill(Protocol):
    """Evaluates the start of a conversation's next prompt ahead of time (an optimisation)."""

    def prefill_chat(self, messages: Sequence[Message]) -> int: ...


@runtime_checkable
class ContinuesAssistant(Protocol):
    """Can continue a final assistant message rather than open a new one."""

    continues_assistant_message: bool


@runtime_checkable
class ModelNamed(Protocol):
    """Knows its model's name: a catalog id, a file or directory name, a server's model id."""

    model_name: str


@runtime_checkable
class ModelFile(Protocol):
    """Runs a model from a local file."""

    model_path: Path
