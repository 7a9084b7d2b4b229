"""Prompts written by the teacher, for users who have no prompt file (`distill --synthesize N`)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from ...llm import LLM
from .verdict import _JSON_STRING_BODY

PER_ROUND = 5
SAMPLING: dict[str, Any] = {"temperature": 0.8, "max_tokens": 600}

REQUEST = (
    "Write {k} different, self-contained programming tasks about: {topic}.\n"
    "Each task is one or two sentences that ask for a specific Python function or short "
    "program, with its inputs and expected behaviour. Vary the difficulty and the kind of "
    "task; do not write solutions.{avoid}\n\n"
    'Reply with a JSON object: {{"prompts": [...]}} holding the {k} tasks as strings.'
)

SQL_REQUEST = (
    "Here is a SQLite database:\n\n{topic}\n\n"
    "Write {k} different questions that a user of this data might ask, each answerable with one "
    "SQL query on it. Use the names and values that are really in the data. Vary the kind: one "
    "table, joins of two to four tables, counts and other aggregates by group, top-N with ordering, "
    "dates, missing values, comparisons with an average. Write each question in plain words, as "
    "the user would, without SQL and without table or column names in brackets.{avoid}\n\n"
    'Reply with a JSON object: {{"prompts": [...]}} holding the {k} questions as strings.'
)

Cache = Callable[[str, Callable[[], str]], str]
"""cache(request key, compute) -> text: a stored result, else compute() stored."""


def prompts_schema(k: int) -> dict[str, Any]:
    item = {"type": "string", "pattern": _JSON_STRING_BODY}
    return {
        "type": "object",
        "properties": {"prompts": {"type": "array", "items": item, "minItems": 1, "maxItems": k}},
        "required": ["prompts"],
        "additionalProperties": False,
    }


def normalized(text: str) -> str:
    """The form under which two prompts count as the same: case, spaces and punctuation aside."""
    return re.sub(r"[\W_]+", " ", text.lower()).strip()


def parse_prompts(text: str) -> list[str]:
    """The prompt strings in the teacher's reply: its JSON list, else its list items."""
    try:
        obj = json.JSONDecoder(strict=False).raw_decode(text[text.index("{"):])[0]
        found = obj.get("prompts") if isinstance(obj, dict) else None
        if isinstance(found, list):
            return [p.strip() for p in found if isinstance(p, str) and p.strip()]
    except (ValueError, json.JSONDecodeError):
        pass
    items = (re.sub(r"^\s*(?:[-*]|\d+[.)])\s+", "", line) for line in text.splitlines() if re.match(r"^\s*(?:[-*]|\d+[.)])\s+", line))
    return [item.strip() for item in items if item.strip()]


def synthesize_prompts(teacher: LLM | Callable[[], LLM], topic: str, n: int, cache: Cache | None = None,
                       advance: Callable[[int], None] | None = None, max_rounds: int | None = None,
                       request: str = REQUEST) -> list[str]:
    """Up to `n` distinct prompts about `topic`, written by the teacher in rounds of a few.

    Each round shows the teacher the prompts so far, to steer it elsewhere, and samples
    with its own seed, so a run is reproducible (and resumable through `cache`).
    `teacher` may be a callable that opens the model, so a fully cached run loads none.
    `request` is the template of each round ({k}, {topic}, {avoid}): `REQUEST` for
    programming tasks, `SQL_REQUEST` (with the database's description as topic) for questions.
    """
    found: list[str] = []
    seen: set[str] = set()
    rounds = max_rounds or 2 + 2 * -(-n // PER_ROUND)
    for round_no in range(rounds):
        if len(found) >= n:
            break
        k = min(PER_ROUND, n - len(found))
        avoid = "".join(f"\n- {p}" for p in found[-15:])
        asked = request.format(k=k, topic=topic, avoid=f"\nAlready written (write different ones):{avoid}" if avoid else "")

        def compute(asked: str = asked, k: int = k, seed: int = round_no) -> str:
            llm = teacher if isinstance(teacher, LLM) else teacher()
            return llm.respond(llm.messages_for(asked), json_schema=prompts_schema(k), seed=seed, **SAMPLING).text

        text = cache(json.dumps([asked, round_no, SAMPLING]), compute) if cache else compute()
        before = len(found)
        for prompt in parse_prompts(text):
            key = normalized(prompt)
            if key and key not in seen and len(found) < n:
                seen.add(key)
                found.append(prompt)
        if advance:
            advance(len(found) - before)
    return found
