"""`llamarch distill --check python`: tasks with tests, answers kept only when the tests pass.

The pure parts (reading tasks, choosing rows, the overlap check) on plain objects; one run
end to end with real models (SmolLM2 the student, the 0.5B the teacher) and the real sandbox.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from llamarch.errors import LlamarchError
from llamarch.evals.humaneval import Problem
from llamarch.patterns.student_teacher.verified_code import drop_overlap, load_tasks, training_rows

TASKS = [
    {
        "prompt": 'def add(a: int, b: int) -> int:\n    """Return the sum of a and b."""\n',
        "entry_point": "add",
        "tests": "assert add(2, 3) == 5\nassert add(-1, 1) == 0",
    },
    {
        "prompt": 'def is_even(n: int) -> bool:\n    """Return True when n is even."""\n',
        "entry_point": "is_even",
        "tests": "assert is_even(4) is True\nassert is_even(7) is False",
    },
    {
        "prompt": "def reverse_words(text: str) -> str:\n"
        '    """Return the words of text in reverse order, joined by one space."""\n',
        "entry_point": "reverse_words",
        "tests": "assert reverse_words('a b  c') == 'c b a'",
    },
    {
        "prompt": 'def square(x: int) -> int:\n    """Return x squared."""\n',
        "entry_point": "square",
        "tests": "assert square(3) == 9",
    },
]
HELD_OUT = [
    {
        "prompt": 'def maximum(xs: list) -> int:\n    """Return the largest number of a non-empty list."""\n',
        "entry_point": "maximum",
        "test": "def check(candidate):\n    assert candidate([3, 9, 2]) == 9\n",
    },
    {
        "prompt": "def count_vowels(s: str) -> int:\n"
        '    """Return how many of the letters of s are vowels (aeiou)."""\n',
        "entry_point": "count_vowels",
        "test": "def check(candidate):\n    assert candidate('banana') == 3\n",
    },
    {
        "prompt": 'def square(x: int) -> int:\n    """Return x squared."""\n',
        "entry_point": "square",  # also a training task
        "test": "def check(candidate):\n    assert candidate(4) == 16\n",
    },
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@dataclass
class Answer:
    passed: bool
    completion: str
    solution: str = ""


def test_tasks_load_with_asserts_or_a_check_function_and_bad_lines_are_named(tmp_path):
    tasks = load_tasks(write_jsonl(tmp_path / "t.jsonl", TASKS + HELD_OUT[:1]))
    assert [t.entry_point for t in tasks] == ["add", "is_even", "reverse_words", "square", "maximum"]
    assert tasks[0].test.startswith("assert add(2, 3) == 5") and "def check(candidate)" in tasks[0].test
    assert tasks[4].test == HELD_OUT[0]["test"]
    assert load_tasks(tmp_path / "t.jsonl", limit=2)[-1].entry_point == "is_even"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(TASKS[0]) + "\n{not json\n")
    with pytest.raises(LlamarchError, match=r"bad.jsonl:2: not a JSON object"):
        load_tasks(bad)
    bad.write_text(json.dumps({**TASKS[0], "tests": ""}) + "\n")
    with pytest.raises(LlamarchError, match=r":1: no tests"):
        load_tasks(bad)
    bad.write_text(json.dumps({**TASKS[0], "entry_point": "not a name"}) + "\n")
    with pytest.raises(LlamarchError, match=r":1: entry_point"):
        load_tasks(bad)
    with pytest.raises(LlamarchError, match="not found"):
        load_tasks(tmp_path / "missing.jsonl")


def test_rows_keep_only_passing_answers_in_the_harness_prompt():
    tasks = [Problem(f"t/{i}", f"def f{i}():\n    pass\n", f"f{i}", "") for i in range(3)]
    student = [Answer(True, "own 0"), Answer(False, "own 1"), Answer(False, "own 2")]
    teacher = [
        [Answer(True, "teacher 0")],
        [Answer(False, "bad"), Answer(True, "long good", "x" * 9), Answer(True, "short good", "x")],
        [Answer(False, "bad")],
    ]
    rows, counts = training_rows("corrected", tasks, student, teacher)
    assert [r["messages"][-1]["content"] for r in rows] == ["own 0", "short good"]
    assert counts == {"rows": 2, "student_answers": 1, "teacher_answers": 1, "unverified": 1}
    assert "def f0()" in rows[0]["messages"][0]["content"] and rows[0]["messages"][0]["role"] == "user"
    rows, counts = training_rows("verified", tasks, student, teacher)
    assert [r["messages"][-1]["content"] for r in rows] == ["teacher 0", "short good"]


def test_a_training_task_that_is_a_held_out_task_is_left_out(tmp_path):
    tasks = load_tasks(write_jsonl(tmp_path / "t.jsonl", TASKS))
    held = load_tasks(write_jsonl(tmp_path / "h.jsonl", HELD_OUT))
    kept, overlap = drop_overlap(tasks, held)
    assert [t.entry_point for t in kept] == ["add", "is_even", "reverse_words"] and overlap == {"same_task": 1}


def llamarch(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from llamarch.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_distill_check_python_end_to_end_trains_on_passing_answers_and_scores_by_tests(
    tmp_path, smollm_path, qwen05_path
):
    tasks = write_jsonl(tmp_path / "tasks.jsonl", TASKS)
    held = write_jsonl(tmp_path / "held.jsonl", HELD_OUT)
    out = tmp_path / "run"
    cmd = [
        "distill",
        "--check",
        "python",
        "--prompts",
        str(tasks),
        "--eval-questions",
        str(held),
        "--student",
        "smollm2-135m",
        "--teacher",
        "qwen2.5-coder-0.5b",
        "--samples",
        "2",
        "--max-tokens",
        "160",
        "--iters",
        "2",
        "--train-option",
        "batch_size=1",
        "--train-option",
        "max_seq_length=320",
        "--threads",
        "2",
        "--out",
        str(out),
    ]
    done = llamarch(*cmd)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert report["check"] == "python" and report["judged_by"] == "execution"
    assert report["questions"] == {"train": 3, "held_out": 3, "overlap_dropped": {"same_task": 1}}
    t = report["training_set"]
    assert t["rows"] == t["student_answers"] + t["teacher_answers"] and t["rows"] + t["unverified"] == 3
    assert t["rows"] >= 1, report  # the 0.5B passes at least `add` or `is_even`
    rows = [
        json.loads(line) for name in ("train.jsonl", "valid.jsonl") for line in (out / name).read_text().splitlines()
    ]
    assert len(rows) == t["rows"]
    assert all("```" in r["messages"][-1]["content"] for r in rows)  # replies as the harness words them
    ev = report["evaluation"]
    assert set(ev["models"]) == {"student", "student + adapter", "teacher greedy"}
    assert all(len(v) == 3 for v in ev["results"].values())
    assert ev["results"]["teacher greedy"][0]["matched"] is True  # the 0.5B writes max() of a list
    assert "adapter vs student" in done.stdout and "pass@1 on 3 tasks" in done.stdout
    assert (out / "adapter" / "adapter.gguf").is_file()
    again = llamarch(*cmd)  # everything is stored: the rerun reports the same figures
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((out / "report.json").read_text())["evaluation"]["models"] == {
        k: {**v, "tok_per_s": None} for k, v in ev["models"].items()
    }


def test_distill_check_python_bad_input_is_one_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(TASKS[0]) + "\nnot json\n")
    done = llamarch("distill", "--check", "python", "--prompts", str(bad), "--out", str(tmp_path / "run"))
    assert done.returncode != 0 and "bad.jsonl:2: not a JSON object" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    done = llamarch("distill", "--check", "python", "--out", str(tmp_path / "run"))
    assert done.returncode != 0 and "--prompts" in done.stderr and "Traceback" not in done.stderr
