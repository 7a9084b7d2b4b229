"""Terminal helpers shared by commands: progress bars and model options."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import click

from ..backends import BACKENDS

MODEL_HELP = (
    "Catalog id, path to a .gguf file, or openai:NAME@URL for a model on an OpenAI-compatible server "
    "(env LLAMARCH_MODEL; default qwen2.5-coder-0.5b)."
)


@contextlib.contextmanager
def byte_progress() -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress bar on stderr driven by progress(description, done, total) calls."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    console = Console(stderr=True)
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, transient=False, disable=not console.is_terminal) as bar:
        tasks: dict[str, Any] = {}

        def update(description: str, done: int, total: int) -> None:
            if description not in tasks:
                tasks[description] = bar.add_task(description, total=total)
            bar.update(tasks[description], completed=done, total=total)

        yield update


@contextlib.contextmanager
def item_progress(description: str, total: int | None) -> Iterator[Callable[..., None]]:
    """A progress bar counting finished items; yields advance(n=1, **fields) for extra text.

    total None: not known yet (an advance with total= sets it). Where stderr is not a terminal
    (a log file, CI, nohup) the bar becomes a few plain lines (ProgressLines).
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    if not console.is_terminal:
        lines = ProgressLines(description, total)
        yield lines.advance
        lines.close()
        return
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
    ]
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(description, total=total, info="")

        def advance(n: int = 1, info: str | None = None, **reset: int) -> None:
            """Advance by n; `total=`/`completed=` re-set the bar (e.g. once the total is known)."""
            bar.update(task, advance=n, **({"info": info} if info is not None else {}), **reset)

        yield advance


class ProgressLines:
    """Progress as lines, for a stderr that is not a terminal: one when the work starts, one at
    each tenth done and one at the end, each with the time spent and an estimate of what is left."""

    def __init__(
        self,
        description: str,
        total: int | None,
        clock: Callable[[], float] = time.monotonic,
        write: Callable[[str], None] | None = None,
    ) -> None:
        self.description, self.total, self.done, self.info = description, total, 0, ""
        self.clock, self.write = clock, write or echo_err
        self.started = clock()
        self.tenth = self.base = 0
        self.shown: int | None = None
        if total is None:
            self.write(f"{description}: started")
        elif total > 0:
            self._show()

    def advance(self, n: int = 1, info: str | None = None, **reset: int) -> None:
        """The same calls as the bar's: n more done; `total=`/`completed=` re-set the count."""
        first_total = "total" in reset and self.total is None
        self.total = reset.get("total", self.total)
        if "completed" in reset:  # resumed: the pace counts only what is done from here
            self.done = self.base = reset["completed"]
        elif self.done == self.base and self.clock() - self.started < 1.0:
            self.base += n  # found stored at once (a resumed run), not done at this pace
        self.done += n
        self.info = info if info is not None else self.info
        if not self.total:
            return
        tenth = min(10, 10 * self.done // self.total)
        if first_total or tenth > self.tenth:
            self.tenth = tenth
            self._show()

    def close(self) -> None:
        """The last line, unless the last one shown already said it."""
        if self.total and self.shown != self.done:
            self._show()

    def _show(self) -> None:
        assert self.total
        spent = self.clock() - self.started
        line = f"{self.description}: {self.done}/{self.total} ({100 * self.done // self.total}%), {_duration(spent)}"
        if self.base < self.done < self.total:
            line += f", about {_duration(spent / (self.done - self.base) * (self.total - self.done))} left"
        self.write(line + (f"  {self.info}" if self.info else ""))
        self.shown = self.done


def _duration(seconds: float) -> str:
    """3s, 4m05s, 1h02m."""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


BACKEND_CHOICE = click.Choice(list(BACKENDS))


def _engine_option_list(remote_key: bool) -> list[Callable[..., Any]]:
    """How to load a model: context, threads, GPU layers (and a server's key)."""
    options = [
        click.option(
            "--n-ctx", type=click.IntRange(min=64), help="Context window in tokens (default: min(4096, the model's))."
        ),
        click.option(
            "--threads", "n_threads", type=click.IntRange(min=1), help="CPU threads (default: physical cores)."
        ),
        click.option(
            "--gpu-layers",
            "n_gpu_layers",
            type=int,
            help="Layers to offload to the GPU (default: all where available).",
        ),
    ]
    if remote_key:
        options.append(
            click.option(
                "--api-key",
                "api_key",
                metavar="KEY",
                help="Key for an openai-backend server (default: env LLAMARCH_OPENAI_API_KEY, then OPENAI_API_KEY). "
                "Prefer the env var: options show in the process list.",
            )
        )
    return options


@contextlib.contextmanager
def training_progress(description: str = "training") -> Iterator[Callable[[dict[str, Any]], None]]:
    """A bar for a LoRA run; yields the callback for llamarch.finetune's progress events."""
    with item_progress(description, total=None) as advance:
        state: dict[str, Any] = {"loss": None, "val": None, "tps": 0.0}

        def on_event(event: dict[str, Any]) -> None:
            kind = event["event"]
            if kind == "start":
                advance(0, total=event["total"], completed=event["step"])
                if event["truncated"] or event["dropped"]:
                    echo_err(
                        f"{event['truncated']} example(s) longer than the maximum sequence length were truncated"
                        + (f"; {event['dropped']} had no answer left and were skipped" if event["dropped"] else "")
                    )
            elif kind == "step":
                state["loss"], state["tps"] = event["loss"], event["tokens_per_second"]
            elif kind == "eval":
                state["val"] = event["val_loss"]
            elif kind == "save":
                echo_err(f"checkpoint saved at step {event['step']}")
            info = f"loss {state['loss']:.3f}  {state['tps']:.0f} tok/s" if state["loss"] is not None else ""
            if kind == "teacher":
                info = f"teacher's soft targets {event['done']}/{event['total']}"
            if state["val"] is not None:
                info += f"  val {state['val']:.3f}"
            advance(1 if kind == "step" else 0, info=info)

        yield on_event


def _model_option_list(remote_key: bool) -> list[Callable[..., Any]]:
    engine = _engine_option_list(remote_key)
    return [
        click.option("-m", "--model", envvar="LLAMARCH_MODEL", help=MODEL_HELP),
        click.option("--backend", type=BACKEND_CHOICE, help="Engine (default: from the model)."),
        *engine[:3],
        click.option(
            "--lora", "--adapter", "lora_path", type=click.Path(dir_okay=False), help="A GGUF LoRA adapter to apply."
        ),
        click.option(
            "--draft-model",
            help="Speculative decoding: a smaller model with the same tokenizer drafts tokens (llama.cpp).",
        ),
        click.option(
            "--prompt-lookup",
            is_flag=True,
            default=None,
            help="Speculative decoding: draft tokens by repeating text from the prompt (llama.cpp).",
        ),
        *engine[3:],
    ]


def _apply(options: list[Callable[..., Any]], f: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(options):
        f = option(f)
    return f


def model_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """-m/--model and the engine options every model-running command takes."""
    return _apply(_model_option_list(remote_key=True), f)


def served_model_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """model_options without --api-key, for `serve`, whose own --api-key is the key it requires."""
    return _apply(_model_option_list(remote_key=False), f)


PARALLEL_HELP = (
    "Prompts decoded together in one batch (default: planned from cores, memory and context; "
    "lowered with a notice when the KV cache would not fit)."
)


def parallel_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """--parallel N for commands that run many prompts (distill, judge, eval): `LLM.stream_batch(parallel=N)`."""
    return click.option("--parallel", type=click.IntRange(min=1), default=None, help=PARALLEL_HELP)(f)


def engine_flags(f: Callable[..., Any]) -> Callable[..., Any]:
    """--n-ctx, --threads, --gpu-layers and --api-key, for commands whose models have their own options."""
    return _apply(_engine_option_list(remote_key=True), f)


def engine_options(**kwargs: Any) -> dict[str, Any]:
    """The engine options a command received, without the unset ones."""
    keys = ("n_ctx", "n_threads", "n_gpu_layers", "lora_path", "api_key", "draft_model", "prompt_lookup")
    return {k: kwargs[k] for k in keys if kwargs.get(k) is not None and kwargs.get(k) is not False}


def echo_err(message: str) -> None:
    click.echo(message, err=True)


def stopped(message: str) -> NoReturn:
    """After Ctrl-C: one line saying what was kept and how to go on, then exit 130."""
    echo_err(message)
    sys.exit(130)


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()
