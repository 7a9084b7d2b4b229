"""Slash commands typed at the chat prompt: /help, /system, /reset, /save, /load, ..."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import LlamarchError
from .session import ChatSession


class UnknownCommandError(LlamarchError):
    def __init__(self, name: str):
        names = ", ".join(f"/{c.name}" for c in COMMANDS)
        super().__init__(
            f"unknown command /{name}: the commands are {names} (start a message with // to send it as is)"
        )


@dataclass(frozen=True)
class Result:
    text: str = ""  # what to show the user
    exit: bool = False


@dataclass(frozen=True)
class Command:
    name: str
    args: str
    help: str
    run: Callable[[ChatSession, str], Result]
    aliases: tuple[str, ...] = ()


def parse(line: str) -> tuple[str, str] | None:
    """(command, argument) for a slash command; None for a message (`//x` is the message `/x`)."""
    if not line.startswith("/") or line.startswith("//"):
        return None
    name, _, arg = line[1:].partition(" ")
    return name.strip().lower(), arg.strip()


def message_text(line: str) -> str:
    """The message a non-command line sends (a leading `//` stands for `/`)."""
    return line[1:] if line.startswith("//") else line


def run(session: ChatSession, name: str, arg: str) -> Result:
    """Run one command; raises UnknownCommandError (listing the commands) for others."""
    for command in COMMANDS:
        if name == command.name or name in command.aliases:
            return command.run(session, arg)
    raise UnknownCommandError(name)


# --- the commands --------------------------------------------------------------------------


def _help(session: ChatSession, arg: str) -> Result:
    width = max(len(f"/{c.name} {c.args}") for c in COMMANDS)
    lines = [f"  {f'/{c.name} {c.args}':<{width}}  {c.help}" for c in COMMANDS]
    lines += [
        "",
        '  """ on a line of its own starts and ends a multi-line message (at a terminal).',
        "  // at the start sends a message that begins with /.",
        "  Ctrl-C stops a reply (the part written is kept); Ctrl-C at the prompt or Ctrl-D exits.",
    ]
    return Result("\n".join(lines))


def _system(session: ChatSession, arg: str) -> Result:
    if not arg:
        return Result(f"system prompt: {session.system}" if session.system else "no system prompt")
    session.set_system(arg)
    return Result("system prompt set")


def _reset(session: ChatSession, arg: str) -> Result:
    session.reset()
    return Result("new conversation")


def _save(session: ChatSession, arg: str) -> Result:
    if not arg or " " in arg:
        raise LlamarchError("/save needs a NAME (one word), e.g. /save fibonacci")
    cid = session.save(arg)
    return Result(f"saved conversation {cid} as {arg!r}; /load {arg} (or `llamarch chat --cid {cid}`) reopens it")


def _load(session: ChatSession, arg: str) -> Result:
    if not arg:
        raise LlamarchError("/load needs a NAME or conversation id (`llamarch logs list` shows them)")
    info = session.load(arg)
    note = ""
    if info.model != session.model_spec:
        note = f" (it was held with {info.model}; this session goes on with {session.model_spec})"
    turns = sum(1 for m in session.history if m.role == "user")
    return Result(f"loaded conversation {info.id}: {turns} turn{'s' if turns != 1 else ''}{note}")


def _history(session: ChatSession, arg: str) -> Result:
    lines = [f"[system] {session.system}"] if session.system else []
    for i, m in enumerate(session.history):
        marks = []
        if i < session.context_start:
            marks.append("out of context")
        if m.cancelled:
            marks.append("cancelled")
        suffix = f"  ({', '.join(marks)})" if marks else ""
        lines.append(f"[{m.role}]{suffix} {m.content}")
    return Result("\n".join(lines) if lines else "no messages yet")


def format_stats(stats: dict[str, float | int | str]) -> str:
    """One line about a reply's speed."""
    evaluated = int(stats["prompt_tokens"]) - int(stats.get("cached_tokens", 0))
    return (
        f"{stats['completion_tokens']} tokens at {stats['decode_tps']:.1f} tok/s; "
        f"prompt {stats['prompt_tokens']} tokens ({stats.get('cached_tokens', 0)} cached, {evaluated} evaluated"
        f" at {stats['prompt_tps']:.0f} tok/s); first token after {stats['ttft_s']:.2f} s; "
        f"total {stats['total_s']:.2f} s; {stats['finish_reason']}"
    )


def _stats(session: ChatSession, arg: str) -> Result:
    if session.last_turn is None:
        return Result("no reply yet")
    return Result("last reply: " + format_stats(session.last_turn.stats.to_dict()))


def _exit(session: ChatSession, arg: str) -> Result:
    return Result(exit=True)


COMMANDS: list[Command] = [
    Command("help", "", "show this help", _help, ("?",)),
    Command("system", "[TEXT]", "set the system prompt (without TEXT: show it)", _system),
    Command("reset", "", "start a new conversation", _reset, ("clear", "new")),
    Command("save", "NAME", "name this conversation, to /load it later", _save),
    Command("load", "NAME|ID", "continue a saved conversation", _load),
    Command("history", "", "show the conversation so far", _history),
    Command("stats", "", "speed of the last reply (tok/s, prompt tokens evaluated)", _stats),
    Command("exit", "", "leave (also Ctrl-D)", _exit, ("quit", "bye")),
]
