"""`llamarch chat` through the real llama.cpp engine on SmolLM2-135M."""

from __future__ import annotations

import json
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from llamarch.chat import ChatContextError, ChatSession, Conversations
from llamarch.chat.session import count_prompt_tokens
from llamarch.cli import cli
from llamarch.errors import LlamarchError
from llamarch.store import Store

CHAT = ["chat", "-m", "smollm2-135m", "--temperature", "0", "--max-tokens", "24", "--n-ctx", "1024"]


def stored() -> list[tuple[int, list]]:
    """Every conversation in the test's store: (id, messages), oldest first."""
    with Store() as store:
        conversations = Conversations(store)
        return [(c.id, conversations.messages(c.id)) for c in reversed(conversations.list())]


def one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


# --- scripted chat ----------------------------------------------------------------------


def test_scripted_chat_streams_replies_and_stores_each_turn(smollm_path):
    script = "What is the capital of France?\n/stats\nAnd of Italy?\n/history\n/exit\nnever sent\n"
    result = CliRunner().invoke(cli, CHAT, input=script)
    assert result.exit_code == 0, result.output
    [(cid, messages)] = stored()
    assert [m.role for m in messages] == ["user", "assistant"] * 2
    assert [m.content for m in messages[::2]] == ["What is the capital of France?", "And of Italy?"]
    for reply in messages[1::2]:
        assert reply.content.strip() and reply.content in result.stdout
        assert reply.stats["completion_tokens"] > 0 and not reply.cancelled
        assert reply.options == {"max_tokens": 24, "temperature": 0.0}
    assert "last reply:" in result.stdout and "tok/s" in result.stdout
    assert "[user] And of Italy?" in result.stdout  # /history
    assert "never sent" not in json.dumps([m.content for m in messages])


def test_turn_three_evaluates_only_the_new_tokens(smollm):
    session = ChatSession(smollm, system="You are a brief assistant.", options={"temperature": 0, "max_tokens": 32})
    questions = ["Name a fruit.", "Name a colour.", "Name an animal."]
    turns = [session.send(q) for q in questions]
    t2, t3 = turns[1].stats, turns[2].stats
    evaluated = t3.prompt_tokens - t3.cached_tokens
    # What turn 2 left in the KV cache: its prompt and its reply (the last sampled token is
    # not evaluated when generation stops on it, hence the slack of 2).
    new = t3.prompt_tokens - (t2.prompt_tokens + t2.completion_tokens)
    assert evaluated <= new + 2, (t2, t3)
    assert evaluated < t3.prompt_tokens / 3
    # After each reply the engine evaluates the template's tokens that close it and open the
    # next user turn (`prefill_chat`), so a turn evaluates fewer tokens than it adds.
    assert evaluated < new, (t2, t3)
    assert t3.prompt_tokens == count_prompt_tokens(smollm, session.context()[:-1])


# --- continuing conversations ---------------------------------------------------------------


def test_continue_and_cid_give_the_model_the_whole_history(smollm_path, monkeypatch):
    from llamarch.backends.llamacpp import LlamaCppBackend

    first = CliRunner().invoke(
        cli, CHAT + ["--system", "Be brief."], input="Remember the word pineapple.\n/save fruit\n"
    )
    assert first.exit_code == 0, first.output
    [(cid, before)] = stored()

    seen: list[list[dict]] = []
    real_stream = LlamaCppBackend.stream

    def spy(self, prompt, options):
        seen.append([dict(m) for m in prompt])
        return real_stream(self, prompt, options)

    monkeypatch.setattr(LlamaCppBackend, "stream", spy)
    # No -m: the conversation's model, options and system prompt come from the store.
    again = CliRunner().invoke(cli, ["chat", "--continue"], input="Which word?\n")
    assert again.exit_code == 0, again.output
    assert seen[-1] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Remember the word pineapple."},
        {"role": "assistant", "content": before[1].content},
        {"role": "user", "content": "Which word?"},
    ]
    by_name = CliRunner().invoke(cli, ["chat", "--cid", "fruit"], input="Thanks.\n")
    assert by_name.exit_code == 0, by_name.output
    assert [m["content"] for m in seen[-1][1:]] == [m.content for m in stored()[0][1]][:5]
    [(same_cid, after)] = stored()
    assert same_cid == cid and len(after) == 6

    loaded = CliRunner().invoke(cli, CHAT, input="/load fruit\n/history\n")
    assert "loaded conversation" in loaded.stdout and "[user] Which word?" in loaded.stdout


# --- Ctrl-C and killed processes -------------------------------------------------------------


class ChatProcess:
    """`llamarch chat` in a subprocess with pipes, its stdout collected as it arrives."""

    def __init__(self, *args: str):
        code = "from llamarch.cli import main; main()"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, *CHAT, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.out = b""

    def send(self, text: str) -> None:
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def wait_for(self, predicate, timeout: float = 180) -> None:
        end = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while not predicate(self.out.decode(errors="replace")):
            assert time.monotonic() < end, f"timed out; stdout so far: {self.out!r}"
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                data = subprocess.os.read(fd, 4096)
                assert data, f"chat ended early: {self.out!r} {self.proc.stderr.read()!r}"
                self.out += data

    def finish(self, timeout: float = 180) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, (self.out + out).decode(), err.decode()


def test_ctrl_c_stops_the_reply_keeps_it_and_the_session_goes_on(smollm_path):
    chat = ChatProcess("--max-tokens", "150")
    chat.send("Write a long story about a dragon who learns to cook.\n")
    chat.wait_for(lambda out: len(out) >= 30)
    chat.proc.send_signal(signal.SIGINT)
    chat.send("Say hello.\n/stats\n")
    chat.wait_for(lambda out: "last reply:" in out)
    chat.proc.send_signal(signal.SIGINT)  # at the prompt: exits cleanly
    code, out, err = chat.finish()
    assert code == 0, err
    assert "Traceback" not in err and "[reply cancelled" in err
    [(_, messages)] = stored()
    assert [m.role for m in messages] == ["user", "assistant"] * 2
    partial, second = messages[1], messages[3]
    assert partial.cancelled and partial.stats["finish_reason"] == "cancelled"
    assert partial.content and out.startswith(partial.content)
    assert partial.stats["completion_tokens"] < 150
    assert not second.cancelled and second.content.strip()


def test_store_keeps_a_completed_turn_when_the_process_is_killed(smollm_path):
    chat = ChatProcess()
    chat.send("Hi there.\n/stats\n")
    chat.wait_for(lambda out: "last reply:" in out)
    chat.proc.kill()
    chat.proc.wait(timeout=30)
    [(_, messages)] = stored()
    assert [m.content for m in messages][0] == "Hi there."
    assert messages[1].role == "assistant" and messages[1].content.strip() and messages[1].stats


# --- context window ------------------------------------------------------------------------------


def test_overflowing_the_context_drops_the_oldest_turns_but_not_the_system_prompt(smollm_path):
    from llamarch import LLM

    notices: list[str] = []
    system = "You are a terse assistant."
    note = "Please remember this note: " + "the quick brown fox jumps over the lazy dog. " * 4
    with LLM("smollm2-135m", n_ctx=256) as llm, Store() as store:
        session = ChatSession(
            llm,
            Conversations(store),
            system=system,
            options={"temperature": 0, "max_tokens": 16},
            notice=notices.append,
        )
        for i in range(6):
            turn = session.send(f"Note {i}. {note}")
            assert turn.stats.prompt_tokens <= 256 - 16
            assert turn.stats.finish_reason in ("stop", "length")
        context = session.context()
        assert context[0] == {"role": "system", "content": system}
        assert context[1]["role"] == "user" and context[-2]["content"].startswith("Note 5")
        assert session.context_start > 0
        assert 1 <= len(notices) <= 2  # trims drop several turns at once, not one per turn
        assert all("\n" not in n and "context window full" in n for n in notices)
        assert len(Conversations(store).messages(session.cid)) == 12  # the store keeps everything

        with pytest.raises(ChatContextError, match="shorten it"):
            session.send("word " * 400)
        assert len(session.history) == 12


def test_token_upper_bound_holds_for_a_real_tokenizer(smollm):
    from llamarch.chat.session import tokens_at_most

    for messages in (
        [{"role": "user", "content": "hi"}],
        [{"role": "system", "content": "Sé breve. 简短回答。"}, {"role": "user", "content": "1 2 3 🎉 " * 20}],
        [{"role": "user", "content": "def f(x):\n\treturn x ** 2\n" * 10}, {"role": "assistant", "content": ""}],
    ):
        assert count_prompt_tokens(smollm, messages) <= tokens_at_most(messages)


# --- bad input -------------------------------------------------------------------------------------


def test_unknown_model_is_one_line():
    line = one_line_error(CliRunner().invoke(cli, ["chat", "-m", "no-such-model"], input="hi\n"))
    assert "unknown model 'no-such-model'" in line


def test_model_that_fails_to_load_is_one_line(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    line = one_line_error(CliRunner().invoke(cli, ["chat", "-m", str(bad)], input="hi\n"))
    assert "broken.gguf" in line


def test_damaged_store_is_one_line(isolated_home):
    isolated_home.mkdir(parents=True, exist_ok=True)
    (isolated_home / "llamarch.db").write_bytes(b"this is not sqlite" * 100)
    for args in (["chat", "-m", "smollm2-135m"], ["logs", "list"]):
        line = one_line_error(CliRunner().invoke(cli, args, input="hi\n"))
        assert "damaged" in line and "llamarch.db" in line


def test_unknown_command_keeps_the_session(smollm_path):
    result = CliRunner().invoke(cli, CHAT, input="/frobnicate\n/system Be brief.\n/system\n")
    assert result.exit_code == 0
    assert "unknown command /frobnicate" in result.stderr and "/history" in result.stderr
    assert "system prompt: Be brief." in result.stdout


def test_locked_store_keeps_turns_until_it_can_write_them(smollm, isolated_home):
    path = isolated_home / "llamarch.db"
    notices: list[str] = []
    with Store(path, timeout=0.1) as store:
        session = ChatSession(
            smollm, Conversations(store), options={"temperature": 0, "max_tokens": 8}, notice=notices.append
        )
        lock = sqlite3.connect(path, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        session.send("First.")
        assert session.unsaved_turns == 1 and "locked" in notices[-1]
        lock.execute("ROLLBACK")
        session.send("Second.")  # writes both turns
        assert session.unsaved_turns == 0
        assert [m.content for m in Conversations(store).messages(session.cid)][::2] == ["First.", "Second."]

        lock.execute("BEGIN EXCLUSIVE")
        session.send("Third.")
        with pytest.raises(LlamarchError, match="could not be stored") as e:
            session.close()
        lock.execute("ROLLBACK")
        lock.close()
    rescued = Path(str(e.value).rsplit(" they are in ", 1)[1])
    assert json.loads(rescued.read_text())["messages"][0]["content"] == "Third."


def test_logs_list_and_show(smollm_path):
    CliRunner().invoke(cli, CHAT, input="Hello!\n/save hello\n")
    listed = json.loads(CliRunner().invoke(cli, ["logs", "list", "--json"]).stdout)
    assert len(listed) == 1 and listed[0]["names"] == ["hello"] and listed[0]["n_messages"] == 2
    shown = json.loads(CliRunner().invoke(cli, ["logs", "show", "hello", "--json"]).stdout)
    assert [m["role"] for m in shown["messages"]] == ["user", "assistant"]
    text = CliRunner().invoke(cli, ["logs", "show", str(listed[0]["id"])]).stdout
    assert "Hello!" in text and "tok/s" in text
    missing = CliRunner().invoke(cli, ["logs", "show", "99"])
    assert "no conversation '99'" in one_line_error(missing)
