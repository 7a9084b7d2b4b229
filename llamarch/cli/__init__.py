"""The `llamarch` command: a thin click group; subcommands load only when run."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import Any

import click

# command name -> "module:attribute"; imported only when that command runs (or its help shows).
COMMANDS: dict[str, str] = {
    "chat": "llamarch.cli.chat:chat",
    "convert": "llamarch.cli.convert:convert",
    "distill": "llamarch.cli.distill:distill",
    "eval": "llamarch.cli.eval:eval_group",
    "export": "llamarch.cli.export:export",
    "generate": "llamarch.cli.generate:generate",
    "judge": "llamarch.cli.judge:judge",
    "logs": "llamarch.cli.logs:logs",
    "models": "llamarch.cli.models:models",
    "serve": "llamarch.cli.serve:serve",
    "sql": "llamarch.cli.sql:sql",
    "train": "llamarch.cli.train:train",
}

HELP = {
    "chat": "Chat with a model in an interactive session.",
    "convert": "Convert a GGUF model for MLX (cached).",
    "distill": (
        "Teach a small student with a teacher (answers checked by running them with --check sql), then LoRA-train it."
    ),
    "eval": "Measure models by running their answers: HumanEval, SQL on your database, a judge's agreement.",
    "export": "Export an MLX LoRA adapter to GGUF for llama.cpp.",
    "generate": "Generate a reply to one prompt, streamed to stdout.",
    "judge": "Score an answer with a teacher model: score, critique, improved answer.",
    "logs": "List and show stored chat conversations.",
    "models": "List, pull, inspect and remove models.",
    "serve": "Serve a model over an OpenAI-compatible HTTP API.",
    "sql": "Ask an SQLite database in plain words; the query runs read-only.",
    "train": "Train a LoRA adapter with MLX.",
}


class LazyGroup(click.Group):
    """A group whose subcommands import on first use, and whose errors are one line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if self._available(name))

    def _available(self, name: str) -> bool:
        module = COMMANDS[name].partition(":")[0]
        return importlib.util.find_spec(module) is not None

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or not self._available(name):
            return None
        module, _, attr = COMMANDS[name].partition(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, HELP.get(name, "")) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        from ..errors import LlamarchError

        try:
            return super().invoke(ctx)
        except LlamarchError as e:
            raise click.ClickException(str(e)) from None
        except KeyboardInterrupt:
            click.echo("\nInterrupted.", err=True)
            sys.exit(130)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except MemoryError:
            raise click.ClickException("out of memory: try a smaller model or a smaller --n-ctx") from None
        except OSError as e:
            if os.environ.get("LLAMARCH_DEBUG"):
                raise
            where = f" ({e.filename})" if getattr(e, "filename", None) else ""
            raise click.ClickException(f"{e.strerror or e}{where}") from None
        except Exception as e:  # a bug: one line, the traceback on request
            if os.environ.get("LLAMARCH_DEBUG"):
                raise
            raise click.ClickException(
                f"internal error: {type(e).__name__}: {e} (LLAMARCH_DEBUG=1 shows the traceback)"
            ) from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="llamarch")
def cli() -> None:
    """llamarch: run and distill language models on your own laptop, offline."""


def main() -> None:
    cli(prog_name="llamarch")
