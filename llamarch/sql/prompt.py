"""The one text-to-SQL prompt: what `llamarch distill --check sql`, `eval sql` and `sql` ask.

The schema comes first and the question last, so every question of a run shares the
schema's tokens as a prefix: llama.cpp evaluates them once and reuses its KV cache.
"""

from __future__ import annotations

import re

from ..backends import Message

# The student's prompt in `distill --check sql`, `llamarch sql` and `eval sql`: the schema style
# (`schema.SCHEMA_STYLES`) and whether the values of short text columns follow it.
STUDENT_SCHEMA = "compact"
STUDENT_VALUES = False
STOPS = ("```\n\n",)  # a closing fence followed by prose: the query is complete

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


QUESTION_FOR_QUERY = (
    "This SQLite query runs on the database above:\n```sql\n{sql}\n```\n"
    "Write the question a user would ask that this query answers: one sentence in plain words, "
    "with the values the query looks for, without SQL and without table or column names. "
    "Reply with the question only."
)


def question_messages(sql: str, schema: str) -> list[Message]:
    """The chat messages that ask which question `sql` answers (`distill --from-queries`);
    the schema comes first, so that every query of a run shares it as a prefix."""
    return [
        {"role": "system", "content": "You are an expert in SQLite and in the data of the database below."},
        {"role": "user", "content": f"Database:\n{schema.strip()}\n\n{QUESTION_FOR_QUERY.format(sql=sql.strip())}"},
    ]


_ASKS_COUNT = re.compile(r"^\W*(how many|what is the (total )?number of|what number of|count)\b", re.IGNORECASE)
_SAYS_COUNT = re.compile(r"\b(how many|number of|count)\b", re.IGNORECASE)
_SELECTED = re.compile(r"^\s*SELECT\s+(?:DISTINCT\s+)?(.*?)\s+FROM\s", re.IGNORECASE | re.DOTALL)
_AGGREGATE = re.compile(r"\b(count|sum|avg|min|max|total)\s*\(", re.IGNORECASE)
LISTS_NOT_COUNTS = (
    "That question asks how many, but the query lists rows; it does not count them. "
    "Write the question it answers, asking for the rows it returns. Reply with the question only."
)
COUNTS_NOT_LISTS = (
    "That question asks for rows, but the query counts them: its answer is one number. "
    "Write the question it answers, asking how many. Reply with the question only."
)


def question_mismatch(question: str, sql: str) -> str | None:
    """What is wrong when a question asks how many and its query lists rows (a list's filter read
    as a count: `HAVING count(*) > 5`), or its query is one count and it asks for rows; None
    when they agree or the query is neither."""
    selected = _SELECTED.search(sql)
    if not selected:
        return None
    columns = selected.group(1)
    if _ASKS_COUNT.search(question) and not _AGGREGATE.search(columns):
        return LISTS_NOT_COUNTS
    if re.fullmatch(r"count\s*\(.*\)", columns.strip(), re.IGNORECASE | re.DOTALL) and not _SAYS_COUNT.search(question):
        return COUNTS_NOT_LISTS
    return None


def parse_question(reply: str) -> str | None:
    """The question in a reply to `question_messages`: its first line, without a label or
    quotes; None when that is not a plain question of a few words (SQL, a list, an essay)."""
    line = next((x.strip() for x in reply.strip().splitlines() if x.strip()), "")
    line = (
        re.sub(r"^(?:\*\*)?(?:question|q)\s*:\s*(?:\*\*)?\s*", "", line, flags=re.IGNORECASE)
        .strip()
        .strip('"`*')
        .strip()
    )
    words = line.split()
    if not 3 <= len(words) <= 45 or re.search(r"\bselect\b.*\bfrom\b|```|;", line, re.IGNORECASE):
        return None
    return line


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
