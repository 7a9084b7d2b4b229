"""Prompt files for distillation: JSONL with `{"prompt": ...}` or `{"messages": [...]}` per line.

A `messages` line is a conversation to continue; assistant messages at its end (a
reference answer, as in an mlx-lm training file) are dropped, so such files work as prompt
files too. A malformed line is reported with its number and skipped, never silently.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...backends import Message
from ...jsonl import BadLine, read_jsonl

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class PromptItem:
    """One prompt: the messages the student answers, and where it came from ("file:line")."""

    messages: tuple[Message, ...]
    source: str = ""

    @classmethod
    def from_text(cls, text: str, source: str = "") -> PromptItem:
        return cls(({"role": "user", "content": text},), source)

    @property
    def question(self) -> str:
        """What the teacher is told was asked: the user's message, or the conversation."""
        turns = [m for m in self.messages if m["role"] != "system"]
        if len(turns) == 1:
            return turns[0]["content"]
        return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in turns)

    @property
    def digest(self) -> str:
        """A stable id of the prompt's content (used to split prompts deterministically)."""
        blob = "\x1e".join(f"{m['role']}\x1f{m['content']}" for m in self.messages)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _parse_line(obj: Any) -> tuple[tuple[Message, ...] | None, str | None]:
    """(messages, None) for a good line, (None, reason) for a bad one."""
    if not isinstance(obj, dict):
        return None, "expected a JSON object"
    if "prompt" in obj:
        prompt = obj["prompt"]
        if not isinstance(prompt, str) or not prompt.strip():
            return None, '"prompt" must be a non-empty string'
        return ({"role": "user", "content": prompt},), None
    if "messages" in obj:
        messages = obj["messages"]
        if not isinstance(messages, list) or not messages:
            return None, '"messages" must be a non-empty list'
        for n, m in enumerate(messages, 1):
            if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
                return None, f'message {n} must be {{"role": system|user|assistant, "content": string}}'
        kept = list(messages)
        while kept and kept[-1]["role"] == "assistant":
            kept.pop()
        if not kept or kept[-1]["role"] != "user" or not kept[-1]["content"].strip():
            return None, '"messages" must contain a user message to answer'
        return tuple({"role": m["role"], "content": m["content"]} for m in kept), None
    return None, 'expected a "prompt" string or a "messages" list'


def read_prompts(path: str | Path, on_bad_line: Callable[[BadLine], None] | None = None) -> list[PromptItem]:
    """The prompts in a JSONL file, in file order. Bad lines go to `on_bad_line` (else raise)."""
    items: list[PromptItem] = []
    for lineno, obj in read_jsonl(path, validate=lambda o: _parse_line(o)[1], on_bad_line=on_bad_line):
        messages, _ = _parse_line(obj)
        assert messages is not None
        items.append(PromptItem(messages, f"{path}:{lineno}"))
    return items


def as_prompt_items(prompts: Sequence[str | PromptItem | Sequence[Message]]) -> list[PromptItem]:
    """Accept plain strings, message lists or PromptItems."""
    items = []
    for n, p in enumerate(prompts):
        if isinstance(p, PromptItem):
            items.append(p)
        elif isinstance(p, str):
            items.append(PromptItem.from_text(p, f"#{n}"))
        else:
            items.append(PromptItem(tuple(p), f"#{n}"))
    return items


def split_held_out(items: Sequence[PromptItem], fraction: float) -> tuple[list[PromptItem], list[PromptItem]]:
    """(train, held out): a stable choice by content hash, each part in the input order.

    With two or more prompts and fraction > 0, at least one is held out and one kept.
    """
    n = len(items)
    n_out = 0 if fraction <= 0 or n < 2 else min(n - 1, max(1, round(n * fraction)))
    chosen = set(sorted(range(n), key=lambda i: (items[i].digest, i))[:n_out])
    train = [it for i, it in enumerate(items) if i not in chosen]
    held = [it for i, it in enumerate(items) if i in chosen]
    return train, held
