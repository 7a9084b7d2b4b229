"""The read-reply loop around a ChatSession: line editing, Ctrl-C, and what goes where.

Replies go to stdout; prompts, notices and errors to stderr, so a script that pipes
messages in (`printf 'hi\\n/exit\\n' | llamarch chat`) reads only replies and command output.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from ..errors import LlamarchError
from . import commands
from .render import ReplyWriter
from .session import ChatSession

PROMPT = ">>> "
CONTINUATION = "... "
FENCE = '"""'
EXIT_INTERRUPTED = 130


@contextlib.contextmanager
def sigint_cancels(cancel: threading.Event) -> Iterator[None]:
    """While a reply streams, Ctrl-C sets `cancel`; a second Ctrl-C interrupts for real."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class LineReader:
    """Typed lines: readline editing and a history file at a terminal, plain lines otherwise."""

    def __init__(self, stdin: TextIO, interactive: bool, prompt_out: TextIO, history_file: Path | None):
        self.stdin = stdin
        self.interactive = interactive
        self.prompt_out = prompt_out
        self.history_file = history_file
        self._readline: Any = None
        if interactive:
            self._setup_readline()

    def _setup_readline(self) -> None:
        try:
            import readline
        except ImportError:  # Python built without it: input() still works
            return
        self._readline = readline
        readline.set_history_length(2000)
        if self.history_file is not None:
            with contextlib.suppress(OSError):
                self.history_file.parent.mkdir(parents=True, exist_ok=True)
                self.history_file.touch()
                readline.read_history_file(self.history_file)

    def _remember(self, line: str) -> None:
        if self._readline is None or self.history_file is None or not line.strip():
            return
        with contextlib.suppress(OSError, AttributeError):  # AttributeError: libedit without it
            self._readline.append_history_file(1, self.history_file)

    def _line(self, prompt: str) -> str | None:
        """One line without its newline; None at end of input."""
        if not self.interactive:
            line = self.stdin.readline()
            return line.rstrip("\r\n") if line else None
        try:
            if self.prompt_out is sys.stdout:
                line = input(prompt)
            else:
                self.prompt_out.write(prompt)
                self.prompt_out.flush()
                line = input()
        except EOFError:
            return None
        self._remember(line)
        return line

    def read(self) -> str | None:
        """The next message or command; a `\"\"\"` block at a terminal is one multi-line message."""
        line = self._line(PROMPT)
        if line is None or not self.interactive or not line.lstrip().startswith(FENCE):
            return line
        body = line.lstrip()[len(FENCE) :]
        if body.rstrip().endswith(FENCE) and body.strip() != "":
            return body.rstrip()[: -len(FENCE)]
        lines = [body] if body else []
        while (more := self._line(CONTINUATION)) is not None:
            if more.rstrip().endswith(FENCE):
                lines.append(more.rstrip()[: -len(FENCE)])
                break
            lines.append(more)
        return "\n".join(lines).strip("\n")


class Repl:
    def __init__(
        self,
        session: ChatSession,
        *,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        markdown: bool = True,
        history_file: Path | None = None,
    ):
        self.session = session
        self.stdin = stdin or sys.stdin
        self.out = stdout or sys.stdout
        self.err = stderr or sys.stderr
        self.interactive = self.stdin.isatty()
        self.out_terminal = self.out.isatty()
        self.markdown = markdown
        prompt_out = self.out if self.out_terminal else self.err
        self.reader = LineReader(self.stdin, self.interactive, prompt_out, history_file)

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def note(self, text: str) -> None:
        self.err.write(text + "\n")
        self.err.flush()

    def run(self) -> int:
        """Read and answer until /exit, end of input or Ctrl-C at the prompt; the exit status."""
        try:
            while True:
                line = self.reader.read()
                if line is None:
                    break
                if not line.strip():
                    continue
                parsed = commands.parse(line.strip())
                try:
                    if parsed is None:
                        if not self.reply(commands.message_text(line)):
                            self.note("Interrupted.")
                            return EXIT_INTERRUPTED
                        continue
                    result = commands.run(self.session, *parsed)
                except LlamarchError as e:
                    self.note(f"Error: {e}")
                    continue
                if result.text:
                    self.say(result.text)
                if result.exit:
                    return 0
        except KeyboardInterrupt:  # Ctrl-C anywhere but in a reply: leave quietly
            pass
        if self.interactive:
            self.note("")
        return 0

    def reply(self, text: str) -> bool:
        """Stream the reply to one message; Ctrl-C stops it and keeps what was written.

        False when a second Ctrl-C interrupted the reply (the partial turn is stored).
        """
        writer = ReplyWriter(self.out, self.out_terminal, self.markdown)
        cancel = threading.Event()
        try:
            with sigint_cancels(cancel):
                for piece in self.session.stream(text, cancel):
                    writer.write(piece)
        except KeyboardInterrupt:
            writer.finish()
            return False
        except BaseException:
            if writer.parts:
                writer.finish()
            raise
        writer.finish()
        turn = self.session.last_turn
        if turn is not None and turn.cancelled:
            self.note("[reply cancelled: the part written is kept in the conversation]")
        return True
