"""Prompts written by the teacher, for users who have no prompt file (`distill --synthesize N`)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
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
    "SQL query on it. Use the names and values that are really in the data. These questions are "
    "about {focus}, and they are {kind}. Write each question in plain words, as the user would, "
    "without SQL and without table or column names in brackets.\n\n"
    'Reply with a JSON object: {{"prompts": [...]}} holding the {k} questions as strings.'
)
SQL_KINDS = (
    "simple look-ups with a filter on one table",
    "counts, sums or averages, per group",
    "joins of two or three tables",
    "top-N lists with an ordering",
    "about dates or missing values",
    "comparisons with an average or a total, or questions that need a subquery",
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
        obj = json.JSONDecoder(strict=False).raw_decode(text[text.index("{") :])[0]
        found = obj.get("prompts") if isinstance(obj, dict) else None
        if isinstance(found, list):
            return [p.strip() for p in found if isinstance(p, str) and p.strip()]
    except (ValueError, json.JSONDecodeError):
        pass
    items = (
        re.sub(r"^\s*(?:[-*]|\d+[.)])\s+", "", line)
        for line in text.splitlines()
        if re.match(r"^\s*(?:[-*]|\d+[.)])\s+", line)
    )
    return [item.strip() for item in items if item.strip()]


def synthesize_prompts(
    teacher: LLM | Callable[[], LLM],
    topic: str,
    n: int,
    cache: Cache | None = None,
    advance: Callable[[int], None] | None = None,
    max_rounds: int | None = None,
    request: str = REQUEST,
) -> list[str]:
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
        asked = request.format(
            k=k, topic=topic, avoid=f"\nAlready written (write different ones):{avoid}" if avoid else ""
        )

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


def sql_requests(context: str, tables: Sequence[Any], n: int) -> list[str]:
    """The teacher's requests for about `n` questions: each about one table and the tables its
    foreign keys join, and one kind of question, cycling through both to cover the database."""
    requests = []
    for r in range(2 * -(-n // PER_ROUND) + 2):
        table = tables[r % len(tables)]
        joined = list(dict.fromkeys(rt for _, rt, _ in table.foreign_keys if rt != table.name))
        focus = f"the table {table.name}" + (f" and what it joins ({', '.join(joined)})" if joined else "")
        kind = SQL_KINDS[(r // len(tables) + r % len(tables)) % len(SQL_KINDS)]  # a new pairing each cycle
        requests.append(SQL_REQUEST.format(k=PER_ROUND, topic=context, focus=focus, kind=kind))
    return requests


def synthesize_sql_questions(
    teacher: LLM | Callable[[], LLM],
    requests: Sequence[str],
    n: int,
    lookup: Callable[[str], str | None],
    save: Callable[[str, str], None],
    advance: Callable[[int], None] | None = None,
) -> list[str]:
    """Up to `n` distinct questions from the teacher's replies to `requests` (see `sql_requests`).

    The requests missing from the store (`lookup`/`save`, keyed by request) are decoded
    together in one batch, each sequence with its own seed; each reply is saved as it ends.
    """
    texts = [lookup(q) for q in requests]
    if advance:
        advance(sum(t is not None for t in texts))
    todo = [i for i, t in enumerate(texts) if t is None]
    if todo:
        llm = teacher if isinstance(teacher, LLM) else teacher()
        prompts = [llm.messages_for(requests[i]) for i in todo]
        stream = llm.stream_batch(prompts, json_schema=prompts_schema(PER_ROUND), seed=0, **SAMPLING)
        parts: dict[int, list[str]] = {}
        for j, chunk in stream:
            parts.setdefault(j, []).append(chunk.text)
            if chunk.stats is not None:
                if chunk.stats.finish_reason == "cancelled":
                    raise KeyboardInterrupt
                texts[todo[j]] = "".join(parts.pop(j))
                save(requests[todo[j]], texts[todo[j]] or "")
                if advance:
                    advance(1)
    found: list[str] = []
    seen: set[str] = set()
    for text in texts:
        for question in parse_prompts(text or ""):
            key = normalized(question)
            if key and key not in seen and len(found) < n:
                seen.add(key)
                found.append(question)
    return found
