"""Engine registry. Engines are imported only when used, so `llamarch --help` stays instant."""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import UnknownBackendError
from .base import (
    Backend,
    BatchPlanning,
    BatchStreaming,
    ChatPrefill,
    ChatTemplated,
    Chunk,
    ContinuesAssistant,
    GenerationOptions,
    Message,
    ModelFile,
    ModelNamed,
    Prompt,
    PromptTokens,
    Response,
    Stats,
    collect,
)

# name -> "module:Class"; every class has `open(model, **options)`.
BACKENDS: dict[str, str] = {
    "llamacpp": "llamarch.backends.llamacpp:LlamaCppBackend",
    "mlx": "llamarch.backends.mlx:MLXBackend",
    "openai": "llamarch.backends.openai:OpenAIBackend",
}
REMOTE = frozenset({"openai"})  # engines that talk to a server; the others run a local file
LOCAL = tuple(name for name in BACKENDS if name not in REMOTE)


def backend_class(name: str) -> Any:
    if name not in BACKENDS:
        raise UnknownBackendError(name, sorted(BACKENDS))
    module, _, attr = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), attr)


# Settings of a remote server; a local engine ignores them (a command may pass one set of
# options to a local student and a remote teacher).
REMOTE_OPTIONS = ("api_key", "base_url", "timeout", "connect_timeout", "retries")


def open_backend(name: str, model: Any, **options: Any) -> Backend:
    """Load `model` on the named engine."""
    if name not in REMOTE:
        options = {k: v for k, v in options.items() if k not in REMOTE_OPTIONS}
    return backend_class(name).open(model, **options)


__all__ = [
    "BACKENDS",
    "LOCAL",
    "REMOTE",
    "Backend",
    "BatchPlanning",
    "BatchStreaming",
    "ChatPrefill",
    "ChatTemplated",
    "Chunk",
    "ContinuesAssistant",
    "GenerationOptions",
    "Message",
    "ModelFile",
    "ModelNamed",
    "Prompt",
    "PromptTokens",
    "Response",
    "Stats",
    "backend_class",
    "collect",
    "open_backend",
]
