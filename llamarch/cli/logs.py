"""`llamarch logs`: read the stored conversations."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def _one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _console() -> Any:
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = 200
    return console


@click.group()
def logs() -> None:
    """List and show stored chat conversations."""


@logs.command("list")
@click.option(
    "-n", "--count", type=click.IntRange(min=1), default=20, show_default=True, help="How many, newest first."
)
@click.option("--all", "show_all", is_flag=True, help="Every conversation.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_logs(count: int, show_all: bool, as_json: bool) -> None:
    """Conversations, most recent first: id, when, model, messages, first message."""
    from ..chat import Conversations
    from ..store import Store

    with Store() as store:
        rows = Conversations(store).list(None if show_all else count)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in rows], indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo("no conversations yet: start one with `llamarch chat`")
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("ID", "UPDATED", "MODEL", "MSGS", "NAME", "FIRST MESSAGE"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            str(r.id),
            _when(r.updated),
            escape(r.model),
            str(r.n_messages),
            escape(",".join(r.names)),
            escape(_one_line(r.preview, 60)),
        )
    _console().print(table)


@logs.command("show")
@click.argument("ref", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON: the conversation and its messages.")
def show_log(ref: str | None, as_json: bool) -> None:
    """One conversation (REF: an id or a /save name; default the most recent), message by message."""
    from ..chat import Conversations
    from ..chat.commands import format_stats
    from ..errors import LlamarchError
    from ..store import Store

    with Store() as store:
        conversations = Conversations(store)
        info = conversations.find(ref) if ref else conversations.last()
        if info is None:
            raise LlamarchError("no conversations yet: start one with `llamarch chat`")
        messages = conversations.messages(info.id)
    if as_json:
        out = {**info.to_dict(), "messages": [m.to_dict() for m in messages]}
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
        return
    from rich.markup import escape

    console = _console()
    names = f" ({', '.join(info.names)})" if info.names else ""
    console.print(
        f"[bold]conversation {info.id}{escape(names)}[/] · {escape(info.model)} ({info.backend}) · "
        f"started {_when(info.created)} · options {escape(json.dumps(info.options))}"
    )
    if info.system:
        console.print(f"[bold magenta]system[/]: {escape(info.system)}")
    for m in messages:
        colour = "cyan" if m.role == "user" else "green"
        mark = " [red](cancelled)[/]" if m.cancelled else ""
        console.print(f"\n[bold {colour}]{m.role}[/]{mark} · {_when(m.created)}")
        console.print(escape(m.content), soft_wrap=True)
        if m.stats:
            console.print(f"[dim]{escape(format_stats(m.stats))}[/]")
