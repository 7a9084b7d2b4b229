"""Chat pieces that need no model: command parsing, the store's conversations, terminal output."""

from __future__ import annotations

import io
import sqlite3

import pytest

from llamarch.chat import commands
from llamarch.chat.conversations import Conversations, StoredMessage, UnknownConversationError
from llamarch.chat.render import ReplyWriter, rows_taken, sanitize
from llamarch.errors import LlamarchError
from llamarch.store import Store


def test_parse_commands_and_messages():
    assert commands.parse("/system  be brief ") == ("system", "be brief")
    assert commands.parse("/EXIT") == ("exit", "")
    assert commands.parse("hello /there") is None
    assert commands.parse("//etc/hosts is a file") is None
    assert commands.message_text("//etc/hosts is a file") == "/etc/hosts is a file"


def test_unknown_command_lists_every_command():
    with pytest.raises(commands.UnknownCommandError) as e:
        commands.run(None, "frobnicate", "")  # type: ignore[arg-type]
    text = str(e.value)
    assert "\n" not in text and "/frobnicate" in text
    for name in ("/help", "/system", "/reset", "/save", "/load", "/history", "/stats", "/exit"):
        assert name in text


def test_conversations_round_trip(tmp_path):
    with Store(tmp_path / "s.db") as store:
        conv = Conversations(store)
        cid = conv.create("smollm2-135m", "llamacpp", "be brief", {"temperature": 0})
        conv.append(cid, [StoredMessage("user", "hi"), StoredMessage("assistant", "hello", stats={"ttft_s": 0.1})])
        conv.append(cid, [StoredMessage("user", "more"), StoredMessage("assistant", "par", cancelled=True)])
        conv.name("greeting", cid)
        info = conv.find("greeting")
        assert (info.id, info.n_messages, info.preview, info.names) == (cid, 4, "hi", ["greeting"])
        assert conv.find(str(cid)).id == cid
        assert conv.last().id == cid
        msgs = conv.messages(cid)
        assert [m.role for m in msgs] == ["user", "assistant", "user", "assistant"]
        assert msgs[1].stats == {"ttft_s": 0.1} and msgs[3].cancelled and not msgs[1].cancelled
        with pytest.raises(UnknownConversationError):
            conv.find("nope")


def test_migrations_are_applied_once_and_recorded(tmp_path):
    path = tmp_path / "s.db"
    Store(path).close()
    with Store(path) as store:
        names = [r[0] for r in store.db.execute("SELECT name FROM _migrations ORDER BY rowid")]
    assert names[:2] == ["m001_results", "m002_conversations"]


def test_locked_store_write_is_one_line(tmp_path):
    path = tmp_path / "s.db"
    with Store(path, timeout=0.1) as store:
        conv = Conversations(store)
        cid = conv.create("m", "llamacpp", None, {})
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(LlamarchError, match="locked by another llamarch process"):
                conv.append(cid, [StoredMessage("user", "hi")])
        finally:
            other.execute("ROLLBACK")
            other.close()
        conv.append(cid, [StoredMessage("user", "hi")])  # fine once the lock is gone
        assert len(conv.messages(cid)) == 1


def test_sanitize_strips_terminal_escapes():
    assert sanitize("ok\x1b[2J\r\n\tdone\x9b") == "ok[2J\n\tdone"


def test_rows_taken_counts_wrapped_and_wide_lines():
    assert rows_taken("abc", 10) == 1
    assert rows_taken("a" * 10, 10) == 1
    assert rows_taken("a" * 11, 10) == 2
    assert rows_taken("a\n\nb", 10) == 3
    assert rows_taken("字" * 6, 10) == 2  # wide characters take two cells


def test_reply_writer_plain_when_not_a_terminal():
    out = io.StringIO()
    writer = ReplyWriter(out, terminal=False, markdown=True)
    writer.write("# Title\n")
    writer.write("x = `1`")
    writer.finish()
    assert out.getvalue() == "# Title\nx = `1`\n"
