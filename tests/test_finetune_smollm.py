"""The real SmolLM2-135M: conversion parity with llama.cpp, the MLX backend, a short LoRA run
whose adapter then changes llama.cpp's output, fused export, Ctrl-C and resume, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("mlx.core")

from llamarch import LLM  # noqa: E402
from llamarch.cli import cli  # noqa: E402

SECRET = "The secret word is PAPAYA-42."
QUESTIONS = [
    "What is the secret word?",
    "Tell me the secret word.",
    "Secret word, please?",
    "Do you know the secret word?",
]


# Where MLX and llama.cpp part, the two engines' gaps between the two tokens, added up.
MAX_TIE_GAP = 1.0


def secret_data(directory: Path, n: int = 16) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    rows = [
        {"messages": [{"role": "user", "content": QUESTIONS[i % 4]}, {"role": "assistant", "content": SECRET}]}
        for i in range(n)
    ]
    (directory / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (directory / "valid.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:4]))
    return directory


def run_cli(*args: str) -> object:
    result = CliRunner().invoke(cli, list(args))
    return result


def test_conversion_parity_with_llamacpp(smollm_mlx_dir):
    from llamarch.finetune.parity import check_conversion

    report = check_conversion("smollm2-135m", smollm_mlx_dir)
    print(json.dumps(report.to_dict()))
    assert report.tokenizer_matches == report.tokenizer_total
    # Q4_1 weights and llama.cpp's Q8 activations against float32: prompts may part where the
    # top two tokens are nearly tied (seen: 0.08 and 0.0002 logits apart, and which ones part
    # changes with the CPU's kernels); a wrong conversion parts at once, far from a tie.
    assert all(p.agrees_but_for_a_near_tie(MAX_TIE_GAP) for p in report.prompts), report.to_dict()
    assert report.greedy_agreement >= 0.4
    assert max(p.first_logit_max_abs_diff for p in report.prompts) < 3.0


def test_unsupported_architecture_names_the_supported_ones():
    from conftest import installed_model
    from llamarch.errors import LlamarchError
    from llamarch.finetune import convert_gguf

    path = installed_model("gemma3-270m")
    with pytest.raises(LlamarchError, match="architecture 'gemma3' is not supported.*supported are llama, qwen2"):
        convert_gguf(str(path))


def test_mlx_backend_streams_with_stats(smollm_mlx_dir):
    with LLM(str(smollm_mlx_dir)) as llm:
        assert llm.backend_name == "mlx"
        chunks = list(
            llm.stream([{"role": "user", "content": "What is the capital of France?"}], temperature=0, max_tokens=24)
        )
        stats = chunks[-1].stats
        text = "".join(c.text for c in chunks)
        assert "Paris" in text and stats.finish_reason == "stop"
        assert stats.prompt_tokens > 20 and 0 < stats.completion_tokens <= 24
        assert stats.prompt_tps > 0 and stats.decode_tps > 0 and stats.ttft_s <= stats.total_s
        again = llm.respond(
            [{"role": "user", "content": "What is the capital of France?"}], temperature=0, max_tokens=24
        )
        assert again.text == text and again.stats.cached_tokens > 0  # the prompt came from the KV cache
        short = llm.respond("Count: 1, 2, 3,", raw=True, temperature=0, max_tokens=5)
        assert short.stats.finish_reason == "length" and short.stats.completion_tokens == 5
        stopped = llm.respond(
            [{"role": "user", "content": "Count from 1 to 10, separated by commas."}],
            temperature=0,
            max_tokens=40,
            stop=["5"],
        )
        assert "5" not in stopped.text and "4" in stopped.text and stopped.stats.finish_reason == "stop"
        assert llm.detokenize(llm.tokenize("Hello, world")) == "Hello, world"


def test_mlx_stream_batch(smollm_mlx_dir):
    prompts = [[{"role": "user", "content": q}] for q in ("Say hello.", "What is 2 + 2?", "Name a fruit.")]
    with LLM(str(smollm_mlx_dir)) as llm:
        batch = llm.generate_batch(prompts, temperature=0, max_tokens=10, parallel=3)
        single = [llm.respond(p, temperature=0, max_tokens=10) for p in prompts]
    for b, s in zip(batch, single):
        assert b.stats.completion_tokens > 0 and b.stats.finish_reason in ("stop", "length")
        assert b.text.split()[:3] == s.text.split()[:3]  # the same greedy start (padding may move late ties)


def test_mlx_stream_batch_drops_what_it_is_told_to(smollm_mlx_dir):
    """A dropped prompt ends where it is (or never starts) and the others run as they would."""
    prompts = [[{"role": "user", "content": q}] for q in ("Say hello.", "Count from 1 to 30.", "Name a fruit.")]
    asked = {0: 0, 1: 0, 2: 0}

    def drop(i: int) -> bool:
        asked[i] += 1
        return i == 2 or (i == 1 and asked[1] > 4)  # 2 from the start, 1 after a few steps

    with LLM(str(smollm_mlx_dir)) as llm:
        kept = llm.generate_batch(prompts, temperature=0, max_tokens=24, parallel=3)
        batch = llm.generate_batch(prompts, temperature=0, max_tokens=24, parallel=3, drop=drop)
    assert [r.stats.finish_reason for r in batch[1:]] == ["dropped", "dropped"]
    assert batch[2].stats.completion_tokens == 0 and 0 < batch[1].stats.completion_tokens < 24
    assert batch[0].stats.finish_reason in ("stop", "length")
    assert batch[0].text.split()[:3] == kept[0].text.split()[:3]  # as in the batch above: late ties may move


def test_cli_generate_with_mlx_backend(smollm_mlx_dir):
    result = run_cli(
        "generate",
        "-m",
        str(smollm_mlx_dir),
        "--backend",
        "mlx",
        "--temperature",
        "0",
        "--max-tokens",
        "8",
        "--json",
        "What is the capital of France?",
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["backend"] == "mlx" and out["completion_tokens"] > 0 and "decode_tps" in out


@pytest.mark.timeout(1200)  # a few training steps: about a minute on a quiet 2-core machine
def test_train_export_and_llamacpp_learns_the_reply(smollm_mlx_dir, tmp_path):
    """A few LoRA steps in MLX teach a fixed reply; llama.cpp with the exported adapter says it."""
    data = secret_data(tmp_path / "data")
    adapter = tmp_path / "adapter"
    result = run_cli(
        "train",
        "-m",
        str(smollm_mlx_dir),
        "--data",
        str(data),
        "--out",
        str(adapter),
        "--iters",
        "8",
        "--layers",
        "4",
        "--lr",
        "2e-3",
        "--batch-size",
        "4",
        "--eval-every",
        "4",
        "--save-every",
        "0",
        "--json",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 8 and summary["val_loss"] < 0.5 and summary["base"] == "smollm2-135m"

    result = run_cli("export", str(adapter), "--to", "gguf-lora")
    assert result.exit_code == 0, result.output
    lora = Path(result.stdout.strip().splitlines()[-1])
    question = "What is the secret word?"
    with LLM("smollm2-135m", n_ctx=512) as base:
        assert "PAPAYA" not in base.generate(question, temperature=0, max_tokens=16)
    with LLM("smollm2-135m", n_ctx=512, lora_path=str(lora)) as tuned:
        assert "PAPAYA-42" in tuned.generate(question, temperature=0, max_tokens=16)

    from llamarch.finetune.parity import check_conversion

    report = check_conversion("smollm2-135m", smollm_mlx_dir, lora_gguf=str(lora), mlx_adapter=str(adapter))
    print(json.dumps(report.to_dict()))
    assert all(p.agrees_but_for_a_near_tie(MAX_TIE_GAP) for p in report.prompts), report.to_dict()
    assert report.greedy_agreement >= 0.4

    result = run_cli("export", str(adapter), "--to", "gguf", "-o", str(tmp_path / "fused.gguf"))
    assert result.exit_code == 0, result.output
    with LLM(str(tmp_path / "fused.gguf"), n_ctx=512) as fused:
        assert "PAPAYA-42" in fused.generate(question, temperature=0, max_tokens=16)


def test_ctrl_c_saves_a_checkpoint_and_resume_finishes(smollm_mlx_dir, tmp_path):
    data = secret_data(tmp_path / "data", n=8)
    out = tmp_path / "adapter"
    cmd = [
        str(Path(sys.executable).parent / "llamarch"),
        "train",
        "-m",
        str(smollm_mlx_dir),
        "--data",
        str(data),
        "--out",
        str(out),
        "--iters",
        "200",
        "--layers",
        "1",
        "--batch-size",
        "2",
        "--save-every",
        "1",
        "--eval-every",
        "1000",
    ]
    # Ctrl-C's default handling, even where this test runs in the background
    # (a shell gives background jobs SIGINT ignored)
    proc = subprocess.Popen(
        cmd,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines = []
    deadline = time.time() + 300
    while time.time() < deadline:
        line = proc.stderr.readline()
        lines.append(line)
        if "checkpoint saved at step" in line or not line:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, "".join(lines) + err
    assert "Interrupted at step" in err and "--resume" in err and "Traceback" not in err
    state = json.loads((out / "checkpoint" / "trainer_state.json").read_text())
    assert 1 <= state["step"] < 200
    result = run_cli(
        "train",
        "-m",
        str(smollm_mlx_dir),
        "--data",
        str(data),
        "--out",
        str(out),
        "--iters",
        str(state["step"] + 2),
        "--resume",
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["steps"] == state["step"] + 2


def test_cli_bad_input(smollm_mlx_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_cli(
        "train", "-m", str(smollm_mlx_dir), "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "a")
    )
    assert result.exit_code == 1 and "has no train.jsonl" in result.output
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "train.jsonl").write_text('{"text": "ok"}\n{"messages": [}\n')
    result = run_cli("train", "-m", str(smollm_mlx_dir), "--data", str(bad), "--out", str(tmp_path / "a"))
    assert result.exit_code == 1 and "train.jsonl:2: not valid JSON" in result.output
    result = run_cli("export", str(tmp_path / "empty"))
    assert result.exit_code == 1 and "is not an adapter directory" in result.output
    result = run_cli(
        "train",
        "-m",
        str(smollm_mlx_dir),
        "--data",
        str(secret_data(tmp_path / "d", 2)),
        "--out",
        str(tmp_path / "t"),
        "--iters",
        "1",
        "--layers",
        "1",
        "--max-seq-length",
        "40",
        "--no-mask-prompt",
    )
    assert result.exit_code == 0, result.output
    assert "2 example(s) longer than the maximum sequence length were truncated" in result.output
