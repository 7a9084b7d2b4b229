"""MLX on Linux CPU: an optimized BLAS loaded before MLX, a one-line hint without one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("mlx.core")

from llamarch.mlx_runtime import BLAS_ENV, blas_candidates  # noqa: E402


def run_py(code: str, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in (BLAS_ENV, "OPENBLAS_CORETYPE")}
    full.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=120)


@pytest.mark.skipif(sys.platform != "linux" or not blas_candidates(), reason="needs Linux with OpenBLAS (make blas)")
def test_openblas_is_loaded_before_mlx():
    out = run_py(
        "import os\n"
        "from llamarch.mlx_runtime import import_mlx, blas_path, openblas_coretype\n"
        "mx = import_mlx()\n"
        "a = mx.ones((64, 64)); print(blas_path(), float((a @ a)[0, 0]))\n"
        "print(os.environ.get('OPENBLAS_CORETYPE') == openblas_coretype())"
    )
    assert out.returncode == 0, out.stderr
    first, same_core = out.stdout.strip().splitlines()
    path, value = first.split()
    assert "blas" in path.lower() and float(value) == 64.0
    assert same_core == "True"  # kernels chosen from the CPU flags, not OpenBLAS's model table
    assert "slow bundled BLAS" not in out.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="Linux only")
def test_hint_when_no_blas_is_found():
    out = run_py(
        "import llamarch.mlx_runtime as r\n"
        "r.blas_candidates = lambda: []\n"
        "r.import_mlx(); r.import_mlx(); print(r.blas_path())"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "None"
    hints = [line for line in out.stderr.splitlines() if "slow bundled BLAS" in line]
    assert len(hints) == 1 and "libopenblas0-pthread" in hints[0]


def test_blas_env_override():
    off = run_py(
        "from llamarch.mlx_runtime import import_mlx, blas_path; import_mlx(); print(blas_path())", **{BLAS_ENV: "off"}
    )
    assert off.stdout.strip() == "None" and "slow bundled" not in off.stderr
    if sys.platform == "linux":
        bad = run_py(
            "from llamarch.mlx_runtime import import_mlx; import_mlx()", **{BLAS_ENV: "/nonexistent/libblas.so"}
        )
        assert bad.returncode != 0 and "LLAMARCH_BLAS=/nonexistent/libblas.so cannot be loaded" in bad.stderr


def test_cli_help_does_not_import_mlx():
    out = run_py(
        "import sys\n"
        "from llamarch.cli import cli\n"
        "for cmd in ([], ['train'], ['convert'], ['export']):\n"
        "    try: cli(cmd + ['--help'], standalone_mode=False)\n"
        "    except SystemExit: pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mlx', 'mlx_lm', 'numpy', 'llama_cpp', 'gguf')))"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.skipif(sys.platform != "linux" or not blas_candidates(), reason="needs Linux with OpenBLAS")
def test_mlx_imported_first_is_reported():
    out = run_py(
        "import mlx.core\nfrom llamarch.mlx_runtime import import_mlx, blas_path\nimport_mlx(); print(blas_path())"
    )
    assert out.stdout.strip() == "None"
    assert "mlx was imported before llamarch" in out.stderr
