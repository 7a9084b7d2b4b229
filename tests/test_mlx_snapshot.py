"""A catalog model's MLX repo in the hub cache is found even when only MLX's files were fetched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llamarch.mlx_convert import hub_mlx_snapshot

REPO = "HuggingFaceTB/SmolLM2-135M-Instruct"  # smollm2-135m's [sources.mlx]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_a_pattern_filtered_snapshot_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    repo = tmp_path / ("models--" + REPO.replace("/", "--"))
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    fetched = ["config.json", "tokenizer.json", "model.safetensors"]
    for name in fetched:
        (snapshot / name).write_text("{}")
    # The tree listing huggingface_hub 2.x caches: the repo also has files nobody fetched.
    listing = [*fetched, "pytorch_model.bin", "onnx/model.onnx", "README.md"]
    files = {name: {"size": 2, "blob_id": "0" * 40} for name in listing}
    (repo / "trees").mkdir()
    (repo / "trees" / f"{COMMIT}.json").write_text(json.dumps({"format_version": 1, "files": files}))

    assert hub_mlx_snapshot("smollm2-135m") == snapshot
    (snapshot / "model.safetensors").unlink()  # the weights missing: not a usable snapshot
    assert hub_mlx_snapshot("smollm2-135m") is None
