"""The adapter checks, at their old import path: they live in `llamarch.identity`, below the
engines, which check an adapter's base before loading it. (Processes started before the move
still import them from here.)"""

from ..identity import (
    ADAPTER_META,
    AdapterMismatchError,
    adapter_base,
    check_adapter_base,
    check_gguf_adapter,
    gguf_identity_kv,
    read_adapter_meta,
    write_json_atomic,
)

__all__ = [
    "ADAPTER_META",
    "AdapterMismatchError",
    "adapter_base",
    "check_adapter_base",
    "check_gguf_adapter",
    "gguf_identity_kv",
    "read_adapter_meta",
    "write_json_atomic",
]
