"""Importing MLX the fast way: an optimized BLAS under `mlx-cpu` on Linux.

The `mlx-cpu` wheel links a bundled reference BLAS (a few GFLOP/s). Its CBLAS symbols are
resolved through the dynamic linker, so a library loaded process-wide (RTLD_GLOBAL) *before*
`mlx` is imported takes their place: with OpenBLAS a float32 matmul runs about 20x faster.
`import_mlx()` does that on Linux; on macOS (Accelerate, Metal) it imports MLX as it is.

Override with `LLAMARCH_BLAS=/path/to/libblas.so` (a library exporting `cblas_sgemm`), or
`LLAMARCH_BLAS=off` to keep the bundled one. OpenBLAS's kernel family is chosen from the
CPU's feature flags (`OPENBLAS_CORETYPE`, unless already set), since its own detection
falls back to slow generic code on CPUs it does not recognize.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import sys
import sysconfig
from pathlib import Path
from typing import Any

from .errors import LlamarchError, MissingExtraError

BLAS_ENV = "LLAMARCH_BLAS"
HINT = (
    "llamarch: MLX is using its slow bundled BLAS; for ~20x faster MLX on this CPU install "
    "OpenBLAS (Debian/Ubuntu: apt-get install libopenblas0-pthread; Fedora: dnf install "
    "openblas-threads) or set LLAMARCH_BLAS=/path/to/libopenblas.so"
)

LATE_HINT = (
    "llamarch: mlx was imported before llamarch could load OpenBLAS, so MLX keeps its slow bundled "
    "BLAS: import llamarch.mlx_runtime (or call llamarch.mlx_runtime.preload_blas()) before mlx"
)

_state: dict[str, Any] = {"done": False, "path": None, "hinted": False}


def _multiarch() -> str:
    return sysconfig.get_config_var("MULTIARCH") or f"{platform.machine()}-linux-gnu"


def blas_candidates() -> list[Path]:
    """System libraries, best first, that export standard CBLAS symbols."""
    arch = _multiarch()
    names = [
        f"/usr/lib/{arch}/openblas-pthread/libblas.so.3",  # Debian, Ubuntu
        f"/usr/lib/{arch}/openblas-pthread/libopenblas.so.0",
        f"/usr/lib/{arch}/openblas-openmp/libblas.so.3",
        f"/usr/lib/{arch}/libopenblas.so.0",
        "/usr/lib64/libopenblasp.so.0",  # Fedora (pthreads build)
        "/usr/lib64/libopenblas.so.0",
        "/usr/lib/libopenblas.so.0",  # Arch
        f"/usr/lib/{arch}/blis-pthread/libblas.so.3",
    ]
    found = [Path(n) for n in names if Path(n).is_file()]
    name = ctypes.util.find_library("openblas")
    if name and not found:
        found.append(Path(name))
    return found


def openblas_coretype() -> str | None:
    """The OpenBLAS kernel family this CPU supports, from its feature flags.

    OpenBLAS picks its kernels from the CPU model number; on CPUs it does not know (new
    models, virtual machines reporting a generic model) it falls back to "Prescott", plain
    SSE3 code about 6x slower than its AVX-512 kernels. The flags tell what really runs.
    """
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    flags = set(line.partition(":")[2].split())
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"} <= flags:
        return "SkylakeX"
    if {"avx2", "fma"} <= flags:
        return "Haswell"
    return None


def _exports_sgemm(lib: ctypes.CDLL) -> bool:
    try:
        lib.cblas_sgemm  # noqa: B018 - a lookup that raises when the symbol is missing
        return True
    except AttributeError:
        return False


def preload_blas() -> Path | None:
    """Load an optimized BLAS process-wide (Linux only, once); return its path or None."""
    if _state["done"]:
        return _state["path"]
    _state["done"] = True
    if sys.platform != "linux":
        return None
    choice = os.environ.get(BLAS_ENV, "").strip()
    if choice.lower() in {"off", "0", "none", "bundled"}:
        return None
    if "mlx.core" in sys.modules:  # too late: MLX already bound its BLAS
        if blas_candidates() or choice:
            print(LATE_HINT, file=sys.stderr)
        return None
    candidates = [Path(choice).expanduser()] if choice else blas_candidates()
    if "OPENBLAS_CORETYPE" not in os.environ and platform.machine() in ("x86_64", "AMD64"):
        core = openblas_coretype()  # read by OpenBLAS when it loads: set it first
        if core:
            os.environ["OPENBLAS_CORETYPE"] = core
    for path in candidates:
        try:
            lib = ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
        except OSError as e:
            if choice:
                raise LlamarchError(
                    f"{BLAS_ENV}={choice} cannot be loaded ({e}): unset it or point it at a BLAS library"
                ) from None
            continue
        if _exports_sgemm(lib):
            _state["path"] = path
            return path
        if choice:
            raise LlamarchError(f"{BLAS_ENV}={choice} has no cblas_sgemm symbol: point it at an OpenBLAS/BLIS library")
    if not _state["hinted"]:
        _state["hinted"] = True
        print(HINT, file=sys.stderr)
    return None


def blas_path() -> Path | None:
    """The optimized BLAS in use, if one was loaded."""
    return _state["path"]


def import_mlx() -> Any:
    """`mlx.core`, with a fast BLAS underneath on Linux; a clear error when MLX is missing."""
    preload_blas()
    try:
        import mlx.core as mx
    except ImportError:
        raise MissingExtraError("the MLX engine (mlx, mlx-lm)", "mlx") from None
    return mx


def import_mlx_lm() -> Any:
    import_mlx()
    try:
        import mlx_lm
    except ImportError:
        raise MissingExtraError("the MLX engine (mlx-lm)", "mlx") from None
    return mlx_lm


def is_linux_cpu() -> bool:
    """True where MLX runs on the CPU only (Linux): float32 is its fast type there."""
    return sys.platform == "linux"


def load_model(
    directory: str | os.PathLike[str], adapter_path: str | os.PathLike[str] | None = None
) -> tuple[Any, Any]:
    """(model, tokenizer) of an MLX / Hugging Face model directory, optionally with an MLX adapter.

    On Linux the weights are cast to float32: MLX's CPU matmuls are fast only in float32
    (through BLAS); float16/bfloat16 fall back to slow loops.
    """
    mx = import_mlx()
    from mlx_lm.utils import load

    try:
        model, tokenizer = load(str(directory), adapter_path=str(adapter_path) if adapter_path else None)
    except (FileNotFoundError, ValueError, KeyError) as e:
        raise LlamarchError(f"MLX could not load {directory}: {e}") from None
    if is_linux_cpu():
        model.set_dtype(mx.float32)
    return model, tokenizer


def bytes_to_unicode() -> dict[int, str]:
    """The byte <-> printable character table of byte-level BPE tokenizers (GPT-2's)."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars)}
