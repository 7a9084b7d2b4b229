"""`llamarch generate`: one prompt, the reply streamed to stdout."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from .ui import engine_options, model_options


@click.command()
@click.argument("prompt", required=False)
@model_options
@click.option("-s", "--system", help="System prompt.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=512, show_default=True)
@click.option("--temperature", type=click.FloatRange(min=0), default=0.8, show_default=True, help="0 = greedy.")
@click.option("--top-p", type=click.FloatRange(0, 1), default=0.95, show_default=True)
@click.option("--top-k", type=click.IntRange(min=0), default=40, show_default=True)
@click.option("--seed", type=int, help="Random seed, for reproducible sampling.")
@click.option("--stop", multiple=True, help="Stop when this text appears (repeatable).")
@click.option("--raw", is_flag=True, help="Complete the prompt as plain text, without the chat template.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: text and stats.")
def generate(
    prompt: str | None,
    model: str | None,
    backend: str | None,
    system: str | None,
    max_tokens: int,
    temperature: float,
    top_p: float,
    top_k: int,
    seed: int | None,
    stop: tuple[str, ...],
    raw: bool,
    as_json: bool,
    **engine: Any,
) -> None:
    """Generate a reply to PROMPT (or to stdin) and stream it to stdout."""
    from ..llm import LLM

    if prompt is None:
        if sys.stdin.isatty():
            raise click.UsageError("give a PROMPT argument or pipe one on stdin")
        prompt = sys.stdin.read()
    with LLM(model, backend=backend, **engine_options(**engine)) as llm:
        request = prompt if raw else llm.messages_for(prompt, system)
        chunks = llm.stream(
            request,
            raw=raw,
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            seed=seed,
            stop=list(stop),
        )
        parts, stats = [], None
        for chunk in chunks:
            parts.append(chunk.text)
            if not as_json and chunk.text:
                click.echo(chunk.text, nl=False)
            stats = chunk.stats or stats
        if as_json:
            out = {"model": llm.model_id, "backend": llm.backend_name, "text": "".join(parts), **stats.to_dict()}
            click.echo(json.dumps(out, ensure_ascii=False))
        else:
            click.echo()
