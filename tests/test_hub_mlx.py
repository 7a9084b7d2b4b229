"""`llamarch models pull OWNER/REPO --backend mlx`: an MLX (safetensors) model from the fake hub,
fetched through huggingface_hub and run with the MLX engine from its hub snapshot.

The served model is SmolLM2 converted to MLX (float16) by llamarch's own converter.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub_server import env, hub, llamarch, one_line_error, pulled_entry, repo_cache  # noqa: F401

pytest.importorskip("mlx.core")

REPO = "mlx-community/SmolLM2-135M-Instruct"
MLX_ID = "smollm2-135m-instruct-mlx"


@pytest.fixture(scope="module")
def mlx_repo_files(smollm_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | bytes]:
    """What an mlx-community repo holds: the model, plus files an MLX model does not need."""
    from llamarch.finetune.convert import convert_gguf

    model = convert_gguf(str(smollm_path), tmp_path_factory.mktemp("mlx") / "smollm2", dtype="float16")
    config = json.loads((model / "config.json").read_text())
    files: dict[str, Path | bytes] = {
        p.name: p for p in model.iterdir() if p.name not in ("llamarch.json", "config.json")
    }
    files["config.json"] = json.dumps({**config, "torch_dtype": "float16"}, indent=2).encode()
    files.update(
        {
            "README.md": b"# SmolLM2-135M-Instruct (MLX)\n",
            ".gitattributes": b"*.safetensors filter=lfs\n",
            "figures/banner.png": b"\x89PNG\r\n\x1a\n" + bytes(256),
        }
    )
    return files


def test_mlx_pull_takes_the_model_files_and_the_mlx_engine_runs_them_offline(hub, env, mlx_repo_files):
    repo = hub.add_repo(REPO, mlx_repo_files)
    r = llamarch(env, "models", "pull", REPO, "--backend", "mlx")
    assert r.returncode == 0, r.stderr
    assert f"{MLX_ID}: installed at" in r.stderr

    e = pulled_entry(env, MLX_ID)
    assert (e["backend"], e["architecture"], e["context_length"], e["quantization"]) == (
        "mlx",
        "llama",
        8192,
        "float16",
    )
    assert e["source"] == f"hf.co/{REPO}" and e["sources"]["mlx"]["revision"] == repo.commit
    wanted = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}
    assert {f["file"] for f in e["sources"]["mlx"]["files"]} == wanted
    assert all(f["sha256"] == repo.files[f["file"]].sha256 for f in e["sources"]["mlx"]["files"])
    snapshot = repo_cache(env, REPO) / "snapshots" / repo.commit
    assert {p.name for p in snapshot.iterdir()} == wanted  # no README, .gitattributes or figures/
    rows = {row["id"]: row for row in json.loads(llamarch(env, "models", "list", "--json").stdout)}
    assert rows[MLX_ID]["installed"] and rows[MLX_ID]["path"] == str(snapshot)

    seen = len(hub.requests)
    gen = llamarch(
        env, "generate", "-m", MLX_ID, "--max-tokens", "6", "--temperature", "0", "Say hello", HF_HUB_OFFLINE="1"
    )  # the entry's backend is mlx: no --backend needed
    assert gen.returncode == 0 and gen.stdout.strip(), gen.stderr
    line = one_line_error(llamarch(env, "generate", "-m", f"hf.co/{REPO}", "hi", HF_HUB_OFFLINE="1"))
    assert f"is an MLX model (safetensors, no GGUF): run it as `-m {MLX_ID} --backend mlx`" in line
    assert len(hub.requests) == seen


def test_mlx_pull_of_a_gguf_repo_or_with_a_quant_is_one_line(hub, env, smollm_path):
    hub.add_repo("test-org/SmolLM2-GGUF", {"SmolLM2.Q4_1.gguf": smollm_path})
    line = one_line_error(llamarch(env, "models", "pull", "hf.co/test-org/SmolLM2-GGUF", "--backend", "mlx"))
    assert (
        "is not an MLX model (no config.json and .safetensors weights): "
        "it has GGUF files, pull it without --backend mlx" in line
    )
    line = one_line_error(llamarch(env, "models", "pull", f"hf.co/{REPO}:4bit", "--backend", "mlx"))
    assert "an MLX repo is one model" in line
