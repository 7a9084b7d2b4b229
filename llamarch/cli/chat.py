"""`llamarch chat`: an interactive, stored conversation with one model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from .ui import echo_err, engine_options, model_options

DEFAULT_MAX_TOKENS = 1024


def _model_spec(model: str | None, loaded_id: str) -> str:
    """What reopens this model later (`--continue`): an id, an absolute path, an `openai:` spec."""
    if model is None or model.startswith("openai:"):
        return model or loaded_id
    from ..catalog import looks_like_path

    return str(Path(model).expanduser().resolve()) if looks_like_path(model) else model


@click.command()
@model_options
@click.option("-s", "--system", help="System prompt.")
@click.option("--temperature", type=click.FloatRange(min=0), help="Sampling temperature, 0 = greedy (default 0.8).")
@click.option(
    "--max-tokens", type=click.IntRange(min=1), help=f"Longest reply in tokens (default {DEFAULT_MAX_TOKENS})."
)
@click.option("--top-p", type=click.FloatRange(0, 1), help="Nucleus sampling (default 0.95).")
@click.option("--top-k", type=click.IntRange(min=0), help="Top-k sampling (default 40).")
@click.option("--seed", type=int, help="Random seed, for reproducible sampling.")
@click.option("-c", "--continue", "continue_", is_flag=True, help="Continue the most recent conversation.")
@click.option("--cid", help="Continue the conversation with this id (or /save name).")
@click.option(
    "--markdown/--no-markdown",
    default=True,
    show_default=True,
    help="Redraw finished replies as Markdown when stdout is a terminal.",
)
def chat(
    model: str | None,
    backend: str | None,
    system: str | None,
    temperature: float | None,
    max_tokens: int | None,
    top_p: float | None,
    top_k: int | None,
    seed: int | None,
    continue_: bool,
    cid: str | None,
    markdown: bool,
    **engine: Any,
) -> None:
    """Chat with a model; every turn is stored (`llamarch logs list` shows conversations).

    Type /help in the chat for its commands. With stdin not a terminal, each line is one
    message and each reply is printed: printf 'hi\\n/exit\\n' | llamarch chat -m smollm2-135m
    """
    from .. import paths
    from ..chat import ChatSession, Conversations
    from ..chat.repl import Repl
    from ..errors import LlamarchError
    from ..llm import LLM
    from ..store import Store

    if continue_ and cid:
        raise click.UsageError("give --continue or --cid, not both")
    interactive = sys.stdin.isatty()
    with Store() as store:  # opened first: a locked or damaged store fails before the model loads
        conversations = Conversations(store)
        info = None
        if continue_:
            info = conversations.last()
            if info is None:
                raise LlamarchError("no conversation to continue yet: start one with `llamarch chat`")
        elif cid:
            info = conversations.find(cid)
        if info is not None and model is None:
            model, backend = info.model, backend or info.backend
        asked = {"temperature": temperature, "max_tokens": max_tokens, "top_p": top_p, "top_k": top_k, "seed": seed}
        options = {
            "max_tokens": DEFAULT_MAX_TOKENS,
            **(info.options if info else {}),
            **{k: v for k, v in asked.items() if v is not None},
        }
        if interactive:
            echo_err(f"Loading {model or 'the default model'}…")
        with LLM(model, backend=backend, **engine_options(**engine)) as llm:
            session = ChatSession(
                llm,
                conversations,
                system=system,
                options=options,
                model_spec=_model_spec(model, llm.model_id),
                notice=echo_err,
            )
            if info is not None:
                session.resume(info, system=system)
            if interactive:
                where = f"conversation {info.id}, {len(session.history)} messages" if info else "new conversation"
                echo_err(
                    f"{llm.model_id} ({llm.backend_name}, {llm.n_ctx}-token context), {where}. "
                    "/help for commands, Ctrl-D to quit."
                )
            repl = Repl(session, markdown=markdown, history_file=paths.user_dir() / "chat_history")
            try:
                status = repl.run()
            finally:
                session.close()  # turns the store refused earlier: stored now, or kept in a file
    if status:
        sys.exit(status)
