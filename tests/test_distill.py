"""`llamarch distill` and `llamarch judge` end to end, as subprocesses on SmolLM2 (student and teacher)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from llamarch.cli import cli

PROMPTS = [
    {"prompt": "Write a Python function that returns the square of a number."},
    {"prompt": "Write a Python function that reverses a string."},
    {"messages": [{"role": "user", "content": "Write a Python function that adds two numbers."}]},
    {"prompt": "Write a Python function that returns the last item of a list."},
    {"prompt": "Write a Python function that counts the words in a string."},
]
OUTPUT_FILES = ("train.jsonl", "valid.jsonl", "report.json")


def write_prompts(path: Path, bad_lines: bool = False) -> Path:
    lines = [json.dumps(p) for p in PROMPTS]
    if bad_lines:
        lines.insert(1, '{"prompt": "unterminated')
        lines.insert(4, '{"text": "no prompt key"}')
    path.write_text("\n".join(lines) + "\n")
    return path


def distill_cmd(prompts: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-c",
        "from llamarch.cli import main; main()",
        "distill",
        "--student",
        "smollm2-135m",
        "--teacher",
        "smollm2-135m",
        "--prompts",
        str(prompts),
        "--out",
        str(out),
        "--no-train",
        "--max-tokens",
        "40",
        "--judge-max-tokens",
        "96",
        "--threads",
        "1",
        *extra,
    ]


def stored(db: Path, kind: str) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT count(*) FROM results WHERE kind=?", (kind,)).fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_distill_end_to_end_no_train(tmp_path, smollm_path):
    prompts = write_prompts(tmp_path / "prompts.jsonl", bad_lines=True)
    out = tmp_path / "run"
    proc = subprocess.run(distill_cmd(prompts, out), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    # malformed lines: reported by number, skipped, the run goes on
    assert f"{prompts}:2: not valid JSON" in proc.stderr
    assert f'{prompts}:5: expected a "prompt" string or a "messages" list' in proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert (report["prompts"]["train"], report["prompts"]["held_out"]) == (4, 1)
    skipped = report["prompts"]["skipped_lines"]
    assert len(skipped) == 2 and skipped[0].startswith(f"{prompts}:2: not valid JSON")
    verdicts = report["verdicts"]
    assert verdicts["count"] == 4 and verdicts["valid"] + verdicts["invalid"] == 4
    rows = [json.loads(line) for f in ("train.jsonl", "valid.jsonl") for line in (out / f).read_text().splitlines()]
    ts = report["training_set"]
    assert (
        ts["train_rows"] + ts["valid_rows"] == len(rows)
        and ts["rows"] == verdicts["valid"] - ts["skipped_no_improvement"]
    )
    for row in rows:  # mlx-lm chat format
        roles = [m["role"] for m in row["messages"]]
        assert roles == ["user", "assistant"] and all(m["content"] for m in row["messages"])
    evaluation = report["evaluation"]
    assert evaluation["prompts"] == 1 and evaluation["after"] is None and len(evaluation["items"]) == 1
    assert report["adapter"] is None
    assert "held-out evaluation on 1 prompts" in proc.stdout and "student" in proc.stdout
    timings = json.loads((out / "timings.json").read_text())
    assert timings["student answers"]["computed"] == 4 and timings["teacher verdicts"]["items"] == 4


def test_distill_resumes_after_sigkill_with_identical_files(tmp_path, smollm_path):
    prompts = write_prompts(tmp_path / "prompts.jsonl")
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"

    def run_cmd(out: Path) -> list[str]:
        # One sequence at a time: a resumed run batches fewer prompts together, and batch
        # composition may flip a near-tie token; this test is about what is stored and reused.
        return distill_cmd(prompts, out, "--parallel", "1")

    first = subprocess.run(run_cmd(whole), capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr

    proc = subprocess.Popen(run_cmd(resumed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = resumed / "distill.db"
    deadline = time.monotonic() + 600
    while stored(db, "verdict") < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    answers_before, verdicts_before = stored(db, "answer"), stored(db, "verdict")
    assert answers_before == 4 and verdicts_before >= 1
    assert not (resumed / "report.json").exists()

    second = subprocess.run(run_cmd(resumed), capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stderr
    timings = json.loads((resumed / "timings.json").read_text())
    assert timings["student answers"]["computed"] == 0  # nothing finished is recomputed
    assert timings["teacher verdicts"]["computed"] == 4 - verdicts_before
    for name in OUTPUT_FILES:
        assert (resumed / name).read_bytes() == (whole / name).read_bytes(), name


def test_distill_refuses_missing_inputs_in_one_line(tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        cli, ["distill", "--out", str(tmp_path / "o"), "--prompts", str(tmp_path / "none.jsonl"), "--no-train"]
    )
    assert result.exit_code == 1 and "Error: file not found" in result.output and "Traceback" not in result.output
    result = runner.invoke(cli, ["distill", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--prompts" in result.output
    empty = tmp_path / "bad.jsonl"
    empty.write_text("nonsense\n")
    result = runner.invoke(cli, ["distill", "--out", str(tmp_path / "o"), "--prompts", str(empty), "--no-train"])
    assert result.exit_code == 1 and "has no usable prompt" in result.output and f"{empty}:1" in result.output


def test_judge_cli_prints_one_verdict(qwen05_path):
    q = "Write a Python function is_even(n) that returns True when n is even."
    result = CliRunner().invoke(
        cli,
        ["judge", "-t", "qwen2.5-coder-0.5b", "--n-ctx", "2048", q, "def is_even(n):\n    return n % 2 == 0", "--json"],
    )
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.stdout)
    assert verdict["valid"] and 1 <= verdict["score"] <= 10 and verdict["critique"] and verdict["improved_answer"]


def test_judge_cli_over_a_pairs_file_resumes_from_the_store(tmp_path, smollm_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"question": "Add 1 and 1 in Python.", "answer": "1 + 1"}\nbroken\n')
    args = ["judge", "-t", "smollm2-135m", "--max-tokens", "64", "--pairs", str(pairs)]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    lines = [line for line in first.output.splitlines() if line.startswith("{")]
    assert len(lines) == 1 and json.loads(lines[0])["line"] == 1
    assert f"{pairs}:2: not valid JSON" in first.output
    assert stored(Path(os.environ["LLAMARCH_HOME"]) / "llamarch.db", "verdict") == 1  # kept for a rerun


def test_judge_cli_student_run_prints_one_line_per_prompt(tmp_path, smollm_path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "Reverse a string in Python."}\n{"prompt": "Sum a list in Python."}\n')
    result = CliRunner().invoke(
        cli,
        [
            "judge",
            "-t",
            "smollm2-135m",
            "--max-tokens",
            "48",
            "--student",
            "smollm2-135m",
            "--student-max-tokens",
            "24",
            "--prompts",
            str(prompts),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [r["prompt"] for r in rows] == ["Reverse a string in Python.", "Sum a list in Python."]
    assert all(r["answer"] and r["verdict"]["raw"] and r["student_s"] > 0 for r in rows)


@pytest.fixture(scope="module")
def served_teacher(smollm_path: Path, tmp_path_factory):
    """SmolLM2 behind `llamarch serve`: a teacher reached through the openai backend."""
    from openai_servers import start_llamarch_serve

    server = start_llamarch_serve(smollm_path, tmp_path_factory.mktemp("serve"))
    yield server
    server.stop()


def test_judge_and_distill_with_a_teacher_on_an_openai_server(served_teacher, tmp_path, smollm_path):
    teacher = f"openai:@{served_teacher.url}"
    result = CliRunner().invoke(
        cli, ["judge", "-t", teacher, "--max-tokens", "96", "Add 2 and 2 in Python.", "2 + 2", "--json"]
    )
    verdict = json.loads(result.stdout.splitlines()[-1])
    assert verdict["raw"] and verdict["valid"] == (verdict["score"] is not None)

    prompts = tmp_path / "p.jsonl"
    prompts.write_text("\n".join(json.dumps(p) for p in PROMPTS[:3]) + "\n")
    cmd = distill_cmd(prompts, tmp_path / "run", "--eval-split", "0", "--parallel", "2")
    cmd[cmd.index("--teacher") + 1] = teacher
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["teacher"] == teacher and report["verdicts"]["count"] == 3 and report["evaluation"] is None


def test_distill_trains_the_student_and_compares_it_with_the_adapter_on_llama_cpp(tmp_path, smollm_path, qwen05_path):
    """SmolLM2 learns from the 0.5B's verdicts (SmolLM2's own verdicts loop until they are cut off)."""
    prompts = write_prompts(tmp_path / "prompts.jsonl")
    out = tmp_path / "run"
    cmd = [a for a in distill_cmd(prompts, out) if a != "--no-train"]
    cmd[cmd.index("--teacher") + 1] = "qwen2.5-coder-0.5b"
    cmd += [
        "--judge-max-tokens",
        "320",
        "--min-score",
        "11",
        "--iters",
        "2",
        "--train-option",
        "batch_size=1",
        "--train-option",
        "max_seq_length=128",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["training_set"]["rows"] >= 1, report["training_set"]
    adapter = out / report["adapter"] if not Path(report["adapter"]).is_absolute() else Path(report["adapter"])
    assert adapter.is_file() and adapter.read_bytes()[:4] == b"GGUF"
    evaluation = report["evaluation"]
    assert (
        evaluation["after"] is not None
        and evaluation["win"] + evaluation["tie"] + evaluation["loss"] + evaluation["unjudged"] == 1
    )
    assert "training" in json.loads((out / "timings.json").read_text())

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=900)  # everything is stored: nothing retrains
    assert again.returncode == 0, again.stderr
    assert "training" not in json.loads((out / "timings.json").read_text())
    assert json.loads((out / "report.json").read_text())["adapter"] == report["adapter"]
