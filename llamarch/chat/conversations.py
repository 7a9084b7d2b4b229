"""Conversations in the store: every message of every chat, written as each turn completes."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import LlamarchError
from ..store import Store


class UnknownConversationError(LlamarchError):
    def __init__(self, ref: str):
        super().__init__(f"no conversation {ref!r} in the store: `llamarch logs list` shows them")


@dataclass
class StoredMessage:
    role: str  # "user" | "assistant"
    content: str
    cancelled: bool = False
    model: str | None = None
    options: dict[str, Any] | None = None
    stats: dict[str, Any] | None = None
    created: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "content": self.content,
            "cancelled": self.cancelled,
            "model": self.model,
            "options": self.options,
            "stats": self.stats,
            "created": self.created,
        }


@dataclass
class ConversationInfo:
    id: int
    model: str
    backend: str
    system: str | None
    options: dict[str, Any]
    created: float
    updated: float
    n_messages: int = 0
    preview: str = ""  # the first user message
    names: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "backend": self.backend,
            "system": self.system,
            "options": self.options,
            "created": self.created,
            "updated": self.updated,
            "n_messages": self.n_messages,
            "preview": self.preview,
            "names": self.names,
        }


_INFO_SQL = """
    SELECT c.*,
        (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) AS n_messages,
        (SELECT content FROM messages m WHERE m.conversation_id = c.id AND m.role = 'user'
            ORDER BY seq LIMIT 1) AS preview,
        (SELECT group_concat(name, ',') FROM saved_conversations s WHERE s.conversation_id = c.id) AS names
    FROM conversations c
"""


def _info(row: Any) -> ConversationInfo:
    return ConversationInfo(
        id=row["id"],
        model=row["model"],
        backend=row["backend"],
        system=row["system"],
        options=json.loads(row["options"] or "{}"),
        created=row["created"],
        updated=row["updated"],
        n_messages=row["n_messages"],
        preview=row["preview"] or "",
        names=sorted(row["names"].split(",")) if row["names"] else [],
    )


def _json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


class Conversations:
    """Reads and writes conversations; each call is its own transaction, committed at once."""

    def __init__(self, store: Store):
        self.store = store
        self.db = store.db

    # --- writing ----------------------------------------------------------------------

    def create(self, model: str, backend: str, system: str | None, options: dict[str, Any]) -> int:
        now = time.time()
        with self.store.guard():
            cur = self.db.execute(
                "INSERT INTO conversations (model, backend, system, options, created, updated)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (model, backend, system, json.dumps(options), now, now),
            )
        return int(cur.lastrowid)

    def update(self, cid: int, **fields: Any) -> None:
        """Change a conversation's model, backend, system prompt or options."""
        allowed = {"model", "backend", "system", "options"}
        if set(fields) - allowed:
            raise ValueError(f"cannot update {sorted(set(fields) - allowed)}")
        values = {k: json.dumps(v) if k == "options" else v for k, v in fields.items()}
        assignments = ", ".join(f"{k} = ?" for k in values)
        with self.store.guard():
            self.db.execute(
                f"UPDATE conversations SET {assignments}, updated = ? WHERE id = ?",
                (*values.values(), time.time(), cid),
            )

    def append(self, cid: int, messages: list[StoredMessage]) -> None:
        """Add messages (a whole turn) in one transaction: all are stored or none."""
        with self.store.guard(), self.store.transaction() as db:
            row = db.execute("SELECT COALESCE(MAX(seq), 0) FROM messages WHERE conversation_id = ?", (cid,)).fetchone()
            seq = row[0]
            for m in messages:
                seq += 1
                db.execute(
                    "INSERT INTO messages"
                    " (conversation_id, seq, role, content, model, options, stats, cancelled, created)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        cid,
                        seq,
                        m.role,
                        m.content,
                        m.model,
                        _json(m.options),
                        _json(m.stats),
                        int(m.cancelled),
                        m.created,
                    ),
                )
            db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (time.time(), cid))

    def name(self, name: str, cid: int) -> None:
        """Give a conversation a name for `/load NAME` (a name already in use moves to this one)."""
        with self.store.guard():
            self.db.execute("INSERT OR REPLACE INTO saved_conversations VALUES (?, ?, ?)", (name, cid, time.time()))

    # --- reading ----------------------------------------------------------------------

    def get(self, cid: int) -> ConversationInfo:
        with self.store.guard():
            row = self.db.execute(_INFO_SQL + " WHERE c.id = ?", (cid,)).fetchone()
        if row is None:
            raise UnknownConversationError(str(cid))
        return _info(row)

    def find(self, ref: str | int) -> ConversationInfo:
        """A conversation by saved name or by id."""
        with self.store.guard():
            row = self.db.execute(
                "SELECT conversation_id FROM saved_conversations WHERE name = ?", (str(ref),)
            ).fetchone()
        if row is not None:
            return self.get(row[0])
        if str(ref).isdigit():
            return self.get(int(ref))
        raise UnknownConversationError(str(ref))

    def last(self) -> ConversationInfo | None:
        """The conversation updated most recently."""
        with self.store.guard():
            row = self.db.execute(_INFO_SQL + " ORDER BY c.updated DESC, c.id DESC LIMIT 1").fetchone()
        return _info(row) if row else None

    def list(self, limit: int | None = None) -> list[ConversationInfo]:
        """Conversations, most recently updated first."""
        sql = _INFO_SQL + " ORDER BY c.updated DESC, c.id DESC" + (" LIMIT ?" if limit else "")
        with self.store.guard():
            rows = self.db.execute(sql, (limit,) if limit else ()).fetchall()
        return [_info(r) for r in rows]

    def messages(self, cid: int) -> list[StoredMessage]:
        with self.store.guard():
            rows = self.db.execute(
                "SELECT role, content, cancelled, model, options, stats, created FROM messages"
                " WHERE conversation_id = ? ORDER BY seq",
                (cid,),
            ).fetchall()
        return [
            StoredMessage(
                role=r["role"],
                content=r["content"],
                cancelled=bool(r["cancelled"]),
                model=r["model"],
                options=json.loads(r["options"]) if r["options"] else None,
                stats=json.loads(r["stats"]) if r["stats"] else None,
                created=r["created"],
            )
            for r in rows
        ]
