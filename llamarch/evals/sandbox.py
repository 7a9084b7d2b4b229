"""Running untrusted (model-written) Python in an isolated child process.

Each program runs in a fresh `python -I` in its own temporary directory and process group,
with a wall-clock timeout that kills the whole group, resource limits (address space, CPU
seconds, processes, file size, open files, no core dumps), no network (a new, empty network
namespace where the kernel allows one; the socket modules are blocked in any case), as an
unprivileged user when started as root, and a guard that disables destructive calls
(`os.remove`, `os.fork`, `subprocess`, `shutil.rmtree`, writes outside the work dir...).

    result = run_program(code + "\\n" + tests)
    result.status  # passed | failed | error | timeout | memory | killed
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import secrets
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from . import _sandbox_child

STATUSES = ("passed", "failed", "error", "timeout", "memory", "killed")
"""passed: ran to the end; failed: an assertion failed; error: any other exception
(including a call the guard refused); timeout: over the wall-clock or CPU limit; memory:
over the memory limit; killed: ended by a signal (a crash, the file size limit...)."""

_CHILD = Path(_sandbox_child.__file__)
_OUTPUT_LIMIT = 64 * 1024  # bytes of the child's stdout/stderr read back


@dataclass(frozen=True)
class Limits:
    """What one program may use."""

    timeout_s: float = 10.0  # wall clock, from start to the end of its last process
    memory_mb: int = 1024  # address space per process
    cpu_s: int | None = None  # CPU seconds per process (default: the timeout, rounded up)
    max_processes: int = 16  # processes of the sandbox user (enforced for non-root users)
    max_file_mb: int = 16  # largest file it may write, its captured output included
    max_open_files: int = 64
    network: bool = False  # True leaves the network reachable (and the socket modules importable)
    guard: bool = True  # False skips the Python-level guard (tests of the process limits only)

    def rlimits(self) -> dict[str, int]:
        return {
            "RLIMIT_AS": self.memory_mb * 2**20,
            "RLIMIT_DATA": self.memory_mb * 2**20,
            "RLIMIT_CPU": self.cpu_s or max(1, math.ceil(self.timeout_s)),
            "RLIMIT_NPROC": self.max_processes,
            "RLIMIT_FSIZE": self.max_file_mb * 2**20,
            "RLIMIT_NOFILE": self.max_open_files,
            "RLIMIT_CORE": 0,
        }


@dataclass(frozen=True)
class ExecResult:
    """The outcome of one program."""

    status: str
    detail: str = ""
    duration_s: float = 0.0
    isolation: dict[str, str] = field(default_factory=dict)  # network: netns | userns+netns | none

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "detail": self.detail, "duration_s": round(self.duration_s, 3)}


@functools.lru_cache(maxsize=1)
def _unprivileged_ids() -> tuple[int, int] | tuple[None, None]:
    """The user a root parent runs programs as: `nobody`, where it exists and can run Python.

    An interpreter installed where other users cannot read (say pyenv under /root) keeps
    root: the program then relies on the guard and the limits that apply to root.
    """
    if os.geteuid() != 0:
        return None, None
    import pwd
    import sysconfig

    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        return None, None
    needed = {
        sysconfig.get_path("stdlib"),
        sysconfig.get_path("platstdlib"),
        os.path.dirname(json.__file__),
        os.path.dirname(_sandbox_child.__file__),
        os.path.dirname(os.path.realpath(sys.executable)),
    }
    if not all(_others_can_read(Path(p)) for p in needed if p):
        return None, None
    return entry.pw_uid, entry.pw_gid


def _others_can_read(path: Path) -> bool:
    """Whether a user with no special rights can list `path` and reach it."""
    try:
        path = path.resolve()
        if not path.stat().st_mode & stat.S_IROTH:
            return False
        return all(p.stat().st_mode & stat.S_IXOTH for p in (path, *path.parents))
    except OSError:
        return False


def run_program(source: str, limits: Limits = Limits()) -> ExecResult:
    """Run `source` as a Python program in the sandbox and report how it ended."""
    uid, gid = _unprivileged_ids()
    with (
        tempfile.TemporaryDirectory(prefix="llamarch-sandbox-", ignore_cleanup_errors=True) as workdir,
        tempfile.TemporaryFile() as report,
        tempfile.TemporaryFile() as err,
    ):
        work = Path(workdir)
        program = work / "program.py"
        program.write_text(source, encoding="utf-8")
        config = work / f".config-{secrets.token_hex(4)}.json"
        config.write_text(
            json.dumps(
                {
                    "program": str(program),
                    "rlimits": limits.rlimits(),
                    "guard": limits.guard,
                    "isolate_network": not limits.network,
                    "uid": uid,
                    "gid": gid,
                    "report_fd": report.fileno(),
                }
            )
        )
        if uid is not None:
            os.chown(work, uid, gid)  # the program's only writable place
        return _supervise(config, work, report, err, limits)


def _supervise(config: Path, work: Path, report_file: IO[bytes], err: IO[bytes], limits: Limits) -> ExecResult:
    env = {
        "PATH": os.defpath,
        "LC_ALL": "C.UTF-8",
        "HOME": str(work),
        "TMPDIR": str(work),
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-I", str(_CHILD), str(config)],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=err,
        start_new_session=True,
        pass_fds=(report_file.fileno(),),
    )
    timed_out = False
    try:
        proc.wait(timeout=limits.timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
    except BaseException:  # Ctrl-C: leave nothing running
        _kill_group(proc)
        raise
    _kill_group(proc)  # also whatever the program left behind
    duration = time.perf_counter() - start
    report, stderr = _read_report(report_file, proc.pid), _read_tail(err)
    isolation = report.get("isolation", {}) if report else {}
    if timed_out:
        return ExecResult("timeout", f"still running after {limits.timeout_s:g} s (wall clock)", duration, isolation)
    if report:
        return ExecResult(report["status"], report.get("detail", ""), duration, isolation)
    return ExecResult(*_classify_exit(proc.returncode, stderr, limits), duration, isolation)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the program and every process it started, and wait until they are gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # orphans are reaped by init, a moment later
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.01)


def _read_tail(f: IO[bytes]) -> str:
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - _OUTPUT_LIMIT))
    return f.read().decode("utf-8", "replace")


def _read_report(f: IO[bytes], pid: int) -> dict[str, Any] | None:
    """The outcome line the program's own process (not one it forked) wrote, if any."""
    text = _read_tail(f)
    marker = _sandbox_child.MARKER
    at = text.rfind(marker)
    if at < 0:
        return None
    try:
        report = json.loads(text[at + len(marker) :].splitlines()[0])
    except (ValueError, IndexError):
        return None
    return report if report.get("status") in STATUSES and report.get("pid") == pid else None


def _classify_exit(returncode: int, stderr: str, limits: Limits) -> tuple[str, str]:
    """How a child that wrote no outcome ended."""
    last = next((ln.strip() for ln in reversed(stderr.splitlines()) if ln.strip()), "")
    if "MemoryError" in stderr or "Cannot allocate memory" in stderr or "std::bad_alloc" in stderr:
        return "memory", f"over the {limits.memory_mb} MB memory limit"
    if returncode < 0:
        sig = -returncode
        if sig == signal.SIGXCPU:
            return "timeout", f"over the {limits.rlimits()['RLIMIT_CPU']} s CPU limit"
        if sig == signal.SIGXFSZ:
            return "killed", f"wrote more than the {limits.max_file_mb} MB file size limit"
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return "killed", f"killed by {name}" + (f": {last[:200]}" if last else "")
    if returncode == 0:
        return "error", "the program exited before its tests finished"
    return "error", last[:300] or f"the sandbox exited with code {returncode}"


def run_programs(
    sources: Sequence[str], limits: Limits = Limits(), workers: int = 2
) -> Iterator[tuple[int, ExecResult]]:
    """Run many programs, `workers` at a time; yields (index, result) as each finishes."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(run_program, s, limits): i for i, s in enumerate(sources)}
        for future in as_completed(futures):
            yield futures[future], future.result()


def isolation_report(limits: Limits = Limits()) -> dict[str, str]:
    """What this machine's sandbox achieves (network namespace, user drop), from a trivial run."""
    return run_program("pass", limits).isolation
