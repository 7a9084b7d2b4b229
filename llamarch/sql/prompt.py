"""The one text-to-SQL prompt: what `llamarch distill --check sql`, `eval sql` and `sql` ask.

The schema comes first and the question last, so every question of a run shares the
schema's tokens as a prefix: llama.cpp evaluates them once and reuses its KV cache.
"""

from __future__ import annotations

import re

from ..backends import Message

SYSTEM = "You are an expert in SQLite. You answer questions about a database with one SQLite query."
INSTRUCTION = "Write one SQLite query that answers the question below. Reply with the query only, in a ```sql block."

REPAIR = (
    "That query failed: {reason}\nWrite a corrected SQLite query for the same question. "
    "Reply with the query only, in a ```sql block."
)


def sql_messages(question: str, schema: str) -> list[Message]:
    """The chat messages that ask for a query answering `question` on a database described by `schema`."""
    context = f"Database:\n{schema.strip()}\n\n" if schema.strip() else ""
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"{context}{INSTRUCTION}\n\nQuestion: {question.strip()}"},
    ]


def repair_messages(messages: list[Message], reply: str, reason: str, *, hint: str | None = None) -> list[Message]:
    """`messages` continued with a failed reply and the checker's reason, asking for a fix.

    `hint` (`schema.error_hint`: which tables do have the column SQLite did not find, ...)
    follows the reason; without it the request is the same text as ever.
    """
    why = f"{reason}\n{hint.strip()}" if hint and hint.strip() else reason
    return [*messages, {"role": "assistant", "content": reply}, {"role": "user", "content": REPAIR.format(reason=why)}]


def as_answer(sql: str) -> str:
    """A query written as the answer the student learns: one fenced ```sql block."""
    return f"```sql\n{normalize_sql(sql)}\n```"


def normalize_sql(sql: str) -> str:
    """The query without trailing semicolons and with tidy line ends."""
    text = "\n".join(line.rstrip() for line in sql.strip().splitlines())
    return re.sub(r";+\s*$", "", text).strip()
