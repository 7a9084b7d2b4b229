"""Errors a user can act on. Each one's message is a single line: what, where, what to do."""

from __future__ import annotations


class LlamarchError(Exception):
    """Base class: the CLI prints `Error: <message>` and exits non-zero, no traceback."""


class UnknownModelError(LlamarchError):
    def __init__(self, model_id: str, known: list[str]):
        self.model_id = model_id
        self.known = known
        super().__init__(
            f"unknown model {model_id!r}: known ids are {', '.join(known)} (or pass a path to a .gguf file)"
        )


class ModelNotInstalledError(LlamarchError):
    def __init__(self, model_id: str, hint: str | None = None):
        self.model_id = model_id
        super().__init__(hint or f"model {model_id!r} is not installed: run `llamarch models pull {model_id}`")


class ModelFileError(LlamarchError):
    """A model file that is missing, not GGUF, truncated or fails its checksum."""


class PullError(LlamarchError):
    """A download or assembly of model weights that failed."""


class ContextOverflowError(LlamarchError):
    def __init__(self, prompt_tokens: int, n_ctx: int, needed: int | None = None):
        self.prompt_tokens = prompt_tokens
        self.n_ctx = n_ctx
        super().__init__(
            f"prompt is {prompt_tokens} tokens but the context window is {n_ctx} tokens: "
            "shorten the prompt or raise --n-ctx"
        )


class MissingExtraError(LlamarchError):
    def __init__(self, what: str, extra: str):
        super().__init__(f"{what} is not installed: pip install 'llamarch[{extra}]'")


class BackendError(LlamarchError):
    """An engine that failed in a way the user can act on (load failure, server error)."""


class UnknownBackendError(LlamarchError):
    def __init__(self, name: str, known: list[str]):
        super().__init__(f"unknown backend {name!r}: choose one of {', '.join(known)}")
