"""GGUF header checks on the real SmolLM2 file and damaged copies of it."""

import shutil
from pathlib import Path

import pytest

from llamarch.errors import ModelFileError
from llamarch.gguf_file import validate


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
