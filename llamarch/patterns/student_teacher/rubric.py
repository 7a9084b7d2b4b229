"""The teacher's rubric: an editable prompt template with `{question}` and `{answer}` slots.

Templates are filled by plain replacement, not `str.format`, so braces in a rubric (or in
the code being judged) need no escaping.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ...errors import LlamarchError

RUBRICS_DIR = Path(__file__).parent / "rubrics"
DEFAULT_RUBRIC = RUBRICS_DIR / "python.md"

DEFAULT_EVALUATION_PROMPT = (
    "You are an expert Python engineer. Evaluate the following answer for correctness, "
    "completeness and clarity: name its concrete problems and say how to fix them.\n\n"
    "QUESTION:\n{question}\n\nANSWER:\n{answer}"
)
"""The free-text prompt of `Teacher.evaluate_response` (the seed API)."""

NO_QUESTION = "(not given)"


def fill(template: str, question: str | None, answer: str) -> str:
    """The template with its slots filled; an answer slot it lacks is added at the end."""
    text = template.replace("{question}", question if question is not None else NO_QUESTION)
    if "{answer}" not in template:
        return f"{text.rstrip()}\n\n{answer}"
    return text.replace("{answer}", answer)


@dataclass(frozen=True)
class Rubric:
    """A judging prompt template; `source` names where it came from, for messages."""

    template: str
    source: str = "<text>"

    def __post_init__(self) -> None:
        missing = [slot for slot in ("{question}", "{answer}") if slot not in self.template]
        if missing:
            raise LlamarchError(
                f"rubric {self.source} lacks the {' and '.join(missing)} placeholder(s): "
                "add them where the question and the answer to judge belong"
            )

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> Rubric:
        """The rubric in a text file (UTF-8); the built-in Python rubric when `path` is None."""
        path = Path(path) if path is not None else DEFAULT_RUBRIC
        try:
            return cls(path.read_text(encoding="utf-8"), source=str(path))
        except FileNotFoundError:
            raise LlamarchError(f"rubric file not found: {path}") from None
        except UnicodeDecodeError:
            raise LlamarchError(f"rubric {path} is not UTF-8 text") from None

    def render(self, question: str, answer: str) -> str:
        return fill(self.template, question, answer)
