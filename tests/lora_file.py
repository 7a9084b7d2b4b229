"""Write a small random LoRA adapter in GGUF, the format llama.cpp loads with `lora_path`."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

ALIGN = 32


def _string(s: str) -> bytes:
    data = s.encode()
    return struct.pack("<Q", len(data)) + data


def write_lora(
    path: Path,
    architecture: str,
    targets: dict[str, tuple[int, int]],
    rank: int = 8,
    scale: float = 0.05,
    seed: int = 0,
) -> Path:
    """An adapter with lora_a/lora_b pairs for `targets` ({tensor name: (n_in, n_out)})."""
    rng = np.random.default_rng(seed)
    tensors: list[tuple[str, np.ndarray]] = []
    for name, (n_in, n_out) in targets.items():
        # numpy shape is (ne1, ne0): lora_a has ne = [n_in, rank], lora_b ne = [rank, n_out]
        tensors.append((f"{name}.lora_a", (rng.standard_normal((rank, n_in)) * scale).astype(np.float32)))
        tensors.append((f"{name}.lora_b", (rng.standard_normal((n_out, rank)) * scale).astype(np.float32)))
    kv = [
        ("general.architecture", 8, _string(architecture)),
        ("general.type", 8, _string("adapter")),
        ("adapter.type", 8, _string("lora")),
        ("adapter.lora.alpha", 6, struct.pack("<f", float(rank))),
    ]
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv))
    for key, vtype, value in kv:
        head += _string(key) + struct.pack("<I", vtype) + value
    offset, infos, blobs = 0, b"", []
    for name, array in tensors:
        ne = array.shape[::-1]
        infos += _string(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
        infos += struct.pack("<IQ", 0, offset)  # F32
        blob = array.tobytes()
        blob += b"\0" * (-len(blob) % ALIGN)
        blobs.append(blob)
        offset += len(blob)
    body = head + infos
    body += b"\0" * (-len(body) % ALIGN)
    path.write_bytes(body + b"".join(blobs))
    return path
