"""The sandbox: hostile or broken programs end as failures, within their limits, harming nothing."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from llamarch.evals._sandbox_child import MARKER
from llamarch.evals.sandbox import Limits, isolation_report, run_program, run_programs

QUICK = Limits(timeout_s=3.0, memory_mb=256)
SLACK_S = 3.0  # process start and teardown on a loaded machine


def sandbox_processes() -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "_sandbox_child.py" in line]


def test_outcomes_are_classified() -> None:
    assert run_program("def f():\n    return 1\nassert f() == 1\n").status == "passed"
    failed = run_program("assert 1 + 1 == 3, 'arithmetic'\n")
    assert failed.status == "failed" and "arithmetic" in failed.detail and "line 1" in failed.detail
    error = run_program("x = undefined_name\n")
    assert error.status == "error" and "NameError" in error.detail
    assert run_program("def f(:\n").status == "error"


def test_exiting_before_the_tests_is_not_a_pass() -> None:
    assert run_program("import sys\nsys.exit(0)\nassert False\n").status == "error"
    assert run_program("import os\nos._exit(0)\n").status == "error"


def test_printing_a_forged_report_is_not_a_pass() -> None:
    forged = MARKER + '{"status": "passed", "detail": ""}\n'
    program = (
        f"import os\nprint({forged!r})\n"
        f"os.write(1, {forged.encode()!r})\nos.write(2, {forged.encode()!r})\nraise ValueError\n"
    )
    assert run_program(program).status == "error"


def test_infinite_loop_times_out() -> None:
    result = run_program("while True:\n    pass\n", QUICK)
    assert result.status == "timeout"
    assert result.duration_s < QUICK.timeout_s + SLACK_S


def test_busy_program_times_out_on_its_cpu_limit() -> None:
    """The CPU limit ends a spinning program as a timeout (SIGXCPU), not as a crash (SIGKILL)."""
    result = run_program("while True:\n    pass\n", Limits(timeout_s=30.0, cpu_s=1, memory_mb=256))
    assert result.status == "timeout" and "CPU limit" in result.detail
    assert result.duration_s < 1 + SLACK_S


def test_sleeping_program_times_out_on_the_wall_clock() -> None:
    result = run_program("import time\ntime.sleep(60)\n", QUICK)
    assert result.status == "timeout" and result.duration_s < QUICK.timeout_s + SLACK_S


@pytest.mark.parametrize(
    "program",
    [
        "import os\nwhile True:\n    os.fork()\n",
        "import posix\nwhile True:\n    posix.fork()\n",
        "import subprocess\nsubprocess.Popen(['sh', '-c', ':(){ :|:& };:'])\n",
        "import multiprocessing\nmultiprocessing.Process(target=print).start()\n",
        "import os\nos.system(':(){ :|:& };:')\n",
    ],
)
def test_fork_bomb_attempts_fail(program: str) -> None:
    result = run_program(program, QUICK)
    assert result.status == "error", result
    assert result.duration_s < QUICK.timeout_s + SLACK_S
    assert sandbox_processes() == []


def test_unguarded_fork_bomb_is_held_by_the_process_limit() -> None:
    # Only where RLIMIT_NPROC binds: root is exempt from it, so a root parent must have
    # dropped the program to an unprivileged user.
    if os.geteuid() == 0 and isolation_report().get("user") != "dropped":
        pytest.skip("running as root with an interpreter other users cannot read: no process limit to test")
    result = run_program("import os\nwhile True:\n    os.fork()\n", Limits(timeout_s=3.0, memory_mb=256, guard=False))
    assert not result.passed
    assert result.duration_s < 3.0 + SLACK_S
    assert sandbox_processes() == []


DELETIONS = [
    "import os\nos.remove(CANARY)\n",
    "import os\nos.unlink(CANARY)\n",
    "import pathlib\npathlib.Path(CANARY).unlink()\n",
    "import shutil\nshutil.rmtree(os.path.dirname(CANARY))\n",
    "import os\nos.rename(CANARY, CANARY + '.moved')\n",
    "open(CANARY, 'w').close()\n",
    "import os\nos.truncate(CANARY, 0)\n",
    "import os\nfd = os.open(CANARY, os.O_WRONLY | os.O_TRUNC)\n",
]


@pytest.mark.parametrize("attack", DELETIONS)
def test_files_outside_the_work_dir_survive(tmp_path: Path, attack: str) -> None:
    canary = tmp_path / "canary.txt"
    canary.write_text("still here")
    result = run_program(f"import os\nCANARY = {str(canary)!r}\n{attack}", QUICK)
    assert result.status == "error", result
    assert canary.read_text() == "still here"


def test_work_dir_is_writable_and_private() -> None:
    program = "import os\nopen('scratch.txt', 'w').write('x')\nassert open('scratch.txt').read() == 'x'\n"
    assert run_program(program).status == "passed"


@pytest.mark.parametrize(
    "program",
    [
        "x = bytearray(8 * 2**30)\n",
        "hog = []\nwhile True:\n    hog.append(bytearray(2**20))\n",
    ],
)
def test_memory_hog_is_stopped(program: str) -> None:
    result = run_program(program, QUICK)
    assert result.status == "memory", result
    assert result.duration_s < QUICK.timeout_s + SLACK_S


def test_no_network() -> None:
    assert run_program("import socket\n").status == "error"
    assert run_program("import urllib.request\n").status == "error"
    if isolation_report().get("network") == "none":
        pytest.skip("this kernel gives no network namespace: the guard alone blocks sockets")
    # Even with the guard off, the program sits in an empty network namespace: a server
    # listening on this machine's loopback is out of its reach.
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        reach = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2).close()\n"
        assert run_program(reach, Limits(timeout_s=5.0, guard=False)).status == "error"
        assert run_program(reach, Limits(timeout_s=5.0, guard=False, network=True)).status == "passed"


def test_run_programs_reports_each_index() -> None:
    programs = ["assert True\n", "assert False\n", "x = (\n"]
    results = dict(run_programs(programs, workers=2))
    assert [results[i].status for i in range(3)] == ["passed", "failed", "error"]
