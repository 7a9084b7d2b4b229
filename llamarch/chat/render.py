"""Writing a streamed reply: plain text while it arrives, then Markdown at a terminal."""

from __future__ import annotations

import math
import re
import shutil
from typing import TextIO

# C0/C1 control characters a model could use to move the cursor or recolour the terminal;
# newlines and tabs are kept.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def sanitize(text: str) -> str:
    """Text safe to write to a terminal: no escape sequences from the model."""
    return _CONTROL.sub("", text)


def rows_taken(text: str, columns: int) -> int:
    """Terminal rows that `text` fills when written from column 0 of an empty row."""
    from rich.cells import cell_len

    rows = 0
    for line in text.split("\n"):
        width = cell_len(line.expandtabs(8))
        rows += max(1, math.ceil(width / columns))
    return rows


class ReplyWriter:
    """Streams a reply to `out`; at a terminal, redraws it as Markdown once complete.

    The plain text is replaced only when all of it is still on the screen (a reply taller
    than the terminal stays as streamed: the rows that scrolled away cannot be redrawn).
    """

    def __init__(self, out: TextIO, terminal: bool, markdown: bool):
        self.out = out
        self.terminal = terminal
        self.markdown = markdown and terminal
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)
        self.out.write(sanitize(text) if self.terminal else text)
        self.out.flush()

    def finish(self) -> None:
        text = "".join(self.parts)
        if self.markdown and text.strip() and self._redraw(text):
            return
        self.out.write("\n")
        if self.terminal:
            self.out.write("\n")
        self.out.flush()

    def _redraw(self, text: str) -> bool:
        size = shutil.get_terminal_size()
        rows = rows_taken(sanitize(text), size.columns)
        if rows >= size.lines - 1:
            return False
        from rich.console import Console
        from rich.markdown import Markdown

        # Back to the first row of the reply, clear to the end of the screen, draw it again.
        self.out.write("\r" + (f"\x1b[{rows - 1}A" if rows > 1 else "") + "\x1b[J")
        self.out.flush()
        console = Console(file=self.out, width=size.columns, force_terminal=True)
        console.print(Markdown(sanitize(text), code_theme="monokai"))
        console.print()
        return True
