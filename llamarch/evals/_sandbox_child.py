"""Runs inside the sandbox's child process (`python -I _sandbox_child.py CONFIG`); stdlib only.

Order matters: everything that needs privileges or trusted code happens first (read the
program, leave the network, drop to an unprivileged user, lower the resource limits), then
the guard disables destructive calls, then the untrusted program runs. The outcome is
reported as one marked JSON line in a file the parent passes as an open descriptor; the program's own printing is
discarded.

The guard is a seatbelt against accidents (a model that writes `shutil.rmtree`), not a
security boundary: code that tries hard can undo Python-level patches. The process-level
parts (limits, unprivileged user, network namespace, the parent's timeout) are what hold.
"""

import json
import os
import sys

MARKER = "\x00llamarch-sandbox "
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000

# Calls that kill, spawn, delete, move, re-permission or escape; disabled by the guard.
OS_CALLS = (
    "kill",
    "killpg",
    "system",
    "popen",
    "fork",
    "forkpty",
    "execv",
    "execve",
    "execl",
    "execle",
    "execlp",
    "execlpe",
    "execvp",
    "execvpe",
    "spawnl",
    "spawnle",
    "spawnlp",
    "spawnlpe",
    "spawnv",
    "spawnve",
    "spawnvp",
    "spawnvpe",
    "posix_spawn",
    "posix_spawnp",
    "remove",
    "unlink",
    "rmdir",
    "removedirs",
    "rename",
    "renames",
    "replace",
    "truncate",
    "link",
    "symlink",
    "mknod",
    "mkfifo",
    "chmod",
    "fchmod",
    "lchmod",
    "chown",
    "fchown",
    "lchown",
    "chflags",
    "lchflags",
    "chroot",
    "chdir",
    "fchdir",
    "setuid",
    "seteuid",
    "setreuid",
    "setresuid",
    "setgid",
    "setegid",
    "setregid",
    "setresgid",
    "setgroups",
    "setsid",
    "setpgid",
    "setpgrp",
    "putenv",
    "unsetenv",
    "ftruncate",
)
SHUTIL_CALLS = ("rmtree", "move", "chown", "copytree", "make_archive", "unpack_archive")
# Modules a solution has no business importing: processes, network, native code, limits.
BLOCKED_MODULES = (
    "subprocess",
    "_posixsubprocess",
    "multiprocessing",
    "_multiprocessing",
    "concurrent.futures.process",
    "socket",
    "_socket",
    "ssl",
    "_ssl",
    "select",
    "selectors",
    "asyncio",
    "urllib.request",
    "http.client",
    "ftplib",
    "smtplib",
    "telnetlib",
    "ctypes",
    "_ctypes",
    "cffi",
    "resource",
    "pty",
    "signal",
    "psutil",
    "shutil._ntuple_diskusage",
    "tkinter",
    "webbrowser",
    "pdb",
    "ipdb",
)


class SandboxViolation(PermissionError):
    """Raised by a call the sandbox disables."""


def leave_network():
    """Move into a new, empty network namespace (root: directly; others: via a user namespace)."""
    unshare = getattr(os, "unshare", None)
    if unshare is None:  # Python < 3.12
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)

        def unshare(flags):
            if libc.unshare(flags) != 0:
                raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))

    try:
        if os.geteuid() == 0:
            unshare(CLONE_NEWNET)
            return "netns"
        uid, gid = os.getuid(), os.getgid()
        unshare(CLONE_NEWUSER | CLONE_NEWNET)
        # Map our own ids into the namespace, so files keep their owner.
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
        return "userns+netns"
    except (OSError, AttributeError):
        return "none"


def drop_privileges(uid, gid):
    """As root, become the unprivileged user the parent chose (it owns the work dir)."""
    if uid is None or os.geteuid() != 0:
        return False
    import resource  # noqa: F401 - loaded while the interpreter's files are surely readable

    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    return True


def lower_limits(limits):
    import resource

    for name, value in limits.items():
        which = getattr(resource, name, None)
        if which is None or value is None:
            continue
        hard = resource.getrlimit(which)[1]
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        # CPU: the soft limit sends SIGXCPU (reported as a timeout); the kernel's SIGKILL at the hard
        # limit would otherwise come at the same tick and read as a crash
        ceiling = value + 1 if name == "RLIMIT_CPU" and (hard == resource.RLIM_INFINITY or value < hard) else value
        try:
            resource.setrlimit(which, (value, ceiling))
        except (ValueError, OSError):  # a limit this platform does not enforce (RLIMIT_AS on macOS)
            pass


def install_guard(workdir):
    import builtins
    import io
    import posix
    import shutil

    def refuse(name):
        def refused(*args, **kwargs):
            raise SandboxViolation(f"{name}() is disabled in the sandbox")

        return refused

    for module, names in ((os, OS_CALLS), (posix, OS_CALLS), (shutil, SHUTIL_CALLS)):
        for name in names:
            if hasattr(module, name):
                setattr(module, name, refuse(f"{module.__name__}.{name}"))
    for name in BLOCKED_MODULES:
        sys.modules[name] = None  # `import name` now raises ImportError

    inside = workdir.rstrip(os.sep) + os.sep

    def check_write(path):
        if isinstance(path, int):
            return
        real = os.path.realpath(os.fsdecode(path))
        if real != workdir and not real.startswith(inside):
            raise SandboxViolation(f"writing {real} is disabled in the sandbox (only its work dir is writable)")

    real_open, real_os_open = builtins.open, os.open
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def guarded_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+"):
            check_write(file)
        return real_open(file, mode, *args, **kwargs)

    def guarded_os_open(path, flags, *args, **kwargs):
        if flags & write_flags:
            check_write(path)
        return real_os_open(path, flags, *args, **kwargs)

    builtins.open = io.open = guarded_open
    os.open = posix.open = guarded_os_open


class _Discard:
    """Where the program's prints go."""

    def write(self, text):
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False


def describe(exc, filename):
    """`Type: message (line N: source)` for the innermost frame in the program."""
    import linecache
    import traceback

    text = f"{type(exc).__name__}: {exc}".rstrip(": ") if str(exc) else type(exc).__name__
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    if frames:
        line = (linecache.getline(filename, frames[-1].lineno) or "").strip()
        text += f" (line {frames[-1].lineno}: {line[:160]})" if line else f" (line {frames[-1].lineno})"
    return text[:600]


def classify(exc):
    if isinstance(exc, AssertionError):
        return "failed"
    if isinstance(exc, MemoryError):
        return "memory"
    return "error"


def make_reporter(fd, isolation):
    """report(status, detail): write the outcome and end the process at once.

    Built before the program runs, from references it cannot patch away. The report goes to
    its own file, emptied first, so nothing the program wrote there can mask it.
    """
    write, truncate, seek, exit_now, dumps, getpid = os.write, os.ftruncate, os.lseek, os._exit, json.dumps, os.getpid

    def report(status, detail=""):
        # The pid lets the parent ignore reports from processes the program forked.
        line = MARKER + dumps({"status": status, "detail": detail, "isolation": isolation, "pid": getpid()}) + "\n"
        truncate(fd, 0)
        seek(fd, 0, os.SEEK_SET)
        write(fd, line.encode("utf-8", "replace"))
        exit_now(0)

    return report


def main():
    with open(sys.argv[1]) as f:
        config = json.load(f)
    filename = config["program"]
    with open(filename) as f:
        source = f.read()
    workdir = os.getcwd()
    isolation = {"network": leave_network() if config["isolate_network"] else "allowed"}
    isolation["user"] = "dropped" if drop_privileges(config.get("uid"), config.get("gid")) else "same"
    lower_limits(config["rlimits"])
    report = make_reporter(config["report_fd"], isolation)
    import linecache  # noqa: F401 - describe() needs them after the guard is in place
    import traceback  # noqa: F401

    if config["guard"]:
        install_guard(workdir)
    sys.stdout = sys.stderr = _Discard()
    try:
        code = compile(source, filename, "exec")
        exec(code, {"__name__": "__sandbox__", "__file__": filename, "__builtins__": __builtins__})
    except SystemExit as e:
        report("error", f"the program exited (code {e.code}) before its tests finished")
    except BaseException as e:  # noqa: BLE001 - every failure of untrusted code is an outcome
        try:
            detail = describe(e, filename)
        except BaseException:  # noqa: BLE001 - the program may have broken what describe uses
            detail = type(e).__name__
        report(classify(e), detail)
    report("passed")


if __name__ == "__main__":
    main()
