"""Read and validate a GGUF file's header without loading its weights.

llama.cpp can crash or misbehave on a damaged file; everything it needs to refuse one
early is in the header: the magic, the version, the metadata, and the tensor table
whose offsets and sizes must fit inside the file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .errors import ModelFileError

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32

# (elements per block, bytes per block) for each ggml tensor type id (ggml.h); tests compare
# it with the gguf package's GGML_QUANT_SIZES and with llama.cpp's own ggml.
GGML_TYPE_SIZES: dict[int, tuple[int, int]] = {
    0: (1, 4),  # F32
    1: (1, 2),  # F16
    2: (32, 18),  # Q4_0
    3: (32, 20),  # Q4_1
    6: (32, 22),  # Q5_0
    7: (32, 24),  # Q5_1
    8: (32, 34),  # Q8_0
    9: (32, 36),  # Q8_1
    10: (256, 84),  # Q2_K
    11: (256, 110),  # Q3_K
    12: (256, 144),  # Q4_K
    13: (256, 176),  # Q5_K
    14: (256, 210),  # Q6_K
    15: (256, 292),  # Q8_K
    16: (256, 66),  # IQ2_XXS
    17: (256, 74),  # IQ2_XS
    18: (256, 98),  # IQ3_XXS
    19: (256, 50),  # IQ1_S
    20: (32, 18),  # IQ4_NL
    21: (256, 110),  # IQ3_S
    22: (256, 82),  # IQ2_S
    23: (256, 136),  # IQ4_XS
    24: (1, 1),  # I8
    25: (1, 2),  # I16
    26: (1, 4),  # I32
    27: (1, 8),  # I64
    28: (1, 8),  # F64
    29: (256, 56),  # IQ1_M
    30: (1, 2),  # BF16
    34: (256, 54),  # TQ1_0
    35: (256, 66),  # TQ2_0
    39: (32, 17),  # MXFP4
    40: (64, 36),  # NVFP4
    41: (128, 18),  # Q1_0
    42: (64, 18),  # Q2_0
}

# Metadata value types.
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9
# Arrays longer than this are skipped over (their length is kept), not materialized.
_MAX_KEPT_ARRAY = 64


@dataclass
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def nbytes(self) -> int | None:
        sizes = GGML_TYPE_SIZES.get(self.ggml_type)
        if sizes is None:
            return None
        block, size = sizes
        return self.n_elements // block * size


@dataclass
class GGUFHeader:
    path: Path
    version: int
    metadata: dict[str, Any]
    tensors: list[TensorInfo] = field(default_factory=list)
    data_offset: int = 0
    expected_size: int | None = None  # bytes the tensor table says the file needs

    @property
    def architecture(self) -> str | None:
        return self.metadata.get("general.architecture")

    @property
    def chat_template(self) -> str | None:
        return self.metadata.get("tokenizer.chat_template")

    @property
    def context_length(self) -> int | None:
        arch = self.architecture
        return self.metadata.get(f"{arch}.context_length") if arch else None

    @property
    def file_type(self) -> str | None:
        return self.metadata.get("general.name")


class _Reader:
    def __init__(self, f: BinaryIO, path: Path):
        self.f = f
        self.path = path

    def read(self, n: int) -> bytes:
        data = self.f.read(n)
        if len(data) != n:
            raise ModelFileError(
                f"{self.path}: truncated GGUF header (file ends at byte {self.f.tell()}): download the model again"
            )
        return data

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        n = self.unpack("<Q")
        if n > 1 << 30:
            raise ModelFileError(f"{self.path}: corrupt GGUF header (string of {n} bytes)")
        return self.read(n).decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        n = self.unpack("<Q")
        self.f.seek(n, 1)

    def value(self, vtype: int) -> Any:
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            item_type = self.unpack("<I")
            count = self.unpack("<Q")
            if count > _MAX_KEPT_ARRAY:
                self._skip_array(item_type, count)
                return _SkippedArray(count)
            return [self.value(item_type) for _ in range(count)]
        raise ModelFileError(f"{self.path}: corrupt GGUF header (unknown value type {vtype})")

    def _skip_array(self, item_type: int, count: int) -> None:
        if item_type in _SCALARS:
            self.f.seek(struct.calcsize(_SCALARS[item_type]) * count, 1)
        elif item_type == _STRING:
            for _ in range(count):
                self.skip_string()
        else:
            for _ in range(count):
                self.value(item_type)


class _SkippedArray(list):
    """A long metadata array that was skipped; `len()` still reports its length."""

    def __init__(self, count: int):
        super().__init__()
        self.count = count

    def __len__(self) -> int:  # pragma: no cover - trivial
        return self.count


def read_header(path: str | Path) -> GGUFHeader:
    """Parse the header and tensor table of a GGUF file; raise ModelFileError if damaged."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelFileError(f"{path} is not a file")
    with path.open("rb") as f:
        r = _Reader(f, path)
        magic = f.read(4)
        if magic != MAGIC:
            raise ModelFileError(f"{path} is not a GGUF model file (starts with {magic!r}, expected b'GGUF')")
        version = r.unpack("<I")
        if version not in SUPPORTED_VERSIONS:
            raise ModelFileError(f"{path}: GGUF version {version} is not supported (2 or 3)")
        n_tensors = r.unpack("<Q")
        n_kv = r.unpack("<Q")
        if n_tensors > 1 << 20 or n_kv > 1 << 20:
            raise ModelFileError(f"{path}: corrupt GGUF header ({n_tensors} tensors, {n_kv} keys)")
        metadata: dict[str, Any] = {}
        for _ in range(n_kv):
            key = r.string()
            metadata[key] = r.value(r.unpack("<I"))
        tensors = []
        for _ in range(n_tensors):
            name = r.string()
            n_dims = r.unpack("<I")
            if n_dims > 8:
                raise ModelFileError(f"{path}: corrupt GGUF tensor table ({name}: {n_dims} dims)")
            shape = tuple(r.unpack("<Q") for _ in range(n_dims))
            tensors.append(TensorInfo(name, shape, r.unpack("<I"), r.unpack("<Q")))
        alignment = int(metadata.get("general.alignment", DEFAULT_ALIGNMENT)) or DEFAULT_ALIGNMENT
        pos = f.tell()
        data_offset = (pos + alignment - 1) // alignment * alignment
    expected = data_offset
    for t in tensors:
        nbytes = t.nbytes()
        end = data_offset + t.offset + (nbytes if nbytes is not None else 0)
        expected = max(expected, end)
    return GGUFHeader(path, version, metadata, tensors, data_offset, expected)


def validate(path: str | Path) -> GGUFHeader:
    """Check that `path` is a complete GGUF file: header, tensor table and size."""
    header = read_header(path)
    actual = header.path.stat().st_size
    if header.expected_size is not None and actual < header.expected_size:
        raise ModelFileError(
            f"{header.path} is truncated: {actual} bytes, its tensor table needs "
            f"{header.expected_size}: download the model again"
        )
    return header
