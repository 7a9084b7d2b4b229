"""GGUF header checks on the real SmolLM2 file and damaged copies of it."""

import ctypes
import shutil
from pathlib import Path

import pytest

from llamarch.errors import ModelFileError
from llamarch.gguf_file import GGML_TYPE_SIZES, validate


def test_real_file_header(smollm_path: Path):
    header = validate(smollm_path)
    assert header.architecture == "llama"
    assert header.expected_size == smollm_path.stat().st_size
    assert "im_start" in header.chat_template
    assert len(header.tensors) > 100


def test_not_gguf(tmp_path: Path):
    bad = tmp_path / "model.gguf"
    bad.write_text("<html>not a model</html>")
    with pytest.raises(ModelFileError, match="not a GGUF"):
        validate(bad)


@pytest.mark.parametrize("keep", [100, 2_000_000, 60_000_000])
def test_truncated_file(smollm_path: Path, tmp_path: Path, keep: int):
    cut = tmp_path / "cut.gguf"
    with smollm_path.open("rb") as src, cut.open("wb") as dst:
        dst.write(src.read(keep))
    with pytest.raises(ModelFileError, match="truncated"):
        validate(cut)


def test_corrupt_header(smollm_path: Path, tmp_path: Path):
    bad = tmp_path / "bad.gguf"
    shutil.copy(smollm_path, bad)
    with bad.open("r+b") as f:
        f.seek(24)
        f.write(b"\xff" * 64)
    with pytest.raises(ModelFileError, match="corrupt|truncated"):
        validate(bad)


def test_missing_file(tmp_path: Path):
    with pytest.raises(ModelFileError, match="not found"):
        validate(tmp_path / "nope.gguf")


# --- the block-size table, against the two other sources of it ------------------------------


def test_type_sizes_match_the_gguf_package():
    gguf = pytest.importorskip("gguf")
    theirs = {int(t): tuple(v) for t, v in gguf.GGML_QUANT_SIZES.items()}
    # gguf-py gives Q8_1 (32, 40); ggml's block_q8_1 is two f16 scales + 32 int8 = 36 bytes,
    # as llama.cpp's own ggml says (next test). Q8_1 is a scratch type, never stored in files.
    theirs[9] = (32, 36)
    assert {t: GGML_TYPE_SIZES.get(t) for t in theirs} == theirs


def test_type_sizes_match_llama_cpp_ggml():
    """The sizes llama.cpp itself reads files with (ggml_blck_size, ggml_type_size)."""
    llama_cpp = pytest.importorskip("llama_cpp")
    libs = sorted((Path(llama_cpp.__file__).parent / "lib").glob("*ggml-base.*"))
    if not libs:
        pytest.skip("llama-cpp-python ships no libggml-base here")
    ggml = ctypes.CDLL(str(libs[0]))
    ggml.ggml_blck_size.restype, ggml.ggml_blck_size.argtypes = ctypes.c_int64, [ctypes.c_int]
    ggml.ggml_type_size.restype, ggml.ggml_type_size.argtypes = ctypes.c_size_t, [ctypes.c_int]
    assert {t: (ggml.ggml_blck_size(t), ggml.ggml_type_size(t)) for t in GGML_TYPE_SIZES} == GGML_TYPE_SIZES
