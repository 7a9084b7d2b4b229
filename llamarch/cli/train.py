"""`llamarch train`: a LoRA adapter for a model, trained with MLX on JSONL data."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from .ui import MODEL_HELP, echo_err, training_progress


def _targets(value: str | None) -> tuple[str, ...] | None:
    return tuple(t.strip() for t in value.split(",") if t.strip()) if value else None


@click.command()
@click.option("-m", "--model", envvar="LLAMARCH_MODEL", help=MODEL_HELP + " Or an MLX model directory.")
@click.option(
    "--data", required=True, type=click.Path(), help="Directory with train.jsonl (and valid.jsonl), or a .jsonl file."
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Adapter directory to write.")
@click.option("--rank", type=click.IntRange(min=1), help="LoRA rank (default 8).")
@click.option("--alpha", type=float, help="LoRA alpha; scale = alpha / rank (default 2 * rank).")
@click.option("--scale", type=float, help="LoRA scale (mlx-lm's name), instead of --alpha.")
@click.option("--layers", "num_layers", type=int, help="Adapt the last N blocks; -1 = all (default 16).")
@click.option("--targets", help="Linear layers to adapt, comma-separated: q,k,v,o,gate,up,down (default all).")
@click.option("--lr", "learning_rate", type=float, help="Learning rate (default 1e-4).")
@click.option("--iters", type=click.IntRange(min=1), help="Optimizer steps (default 100).")
@click.option("--epochs", type=click.FloatRange(min=0, min_open=True), help="Passes over the data, instead of --iters.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Examples per step (default 4).")
@click.option("--max-seq-length", type=click.IntRange(min=2), help="Longer examples are truncated (default 2048).")
@click.option(
    "--mask-prompt/--no-mask-prompt", default=None, help="Train on the answer only (default) or on every token."
)
@click.option("--seed", type=int, help="Random seed (default 0).")
@click.option(
    "--eval-every", "steps_per_eval", type=click.IntRange(min=1), help="Validation loss every N steps (default 50)."
)
@click.option("--val-batches", type=int, help="Validation batches per evaluation; -1 = all (default 25).")
@click.option(
    "--save-every", type=click.IntRange(min=0), help="Checkpoint every N steps; 0 = only at the end (default 50)."
)
@click.option(
    "--teacher",
    help="Distill: also train toward this model's next-token probabilities on the answers "
    "(same tokenizer as --model, e.g. a larger model of its family).",
)
@click.option(
    "--distill-weight",
    type=click.FloatRange(0, 1),
    help="With --teacher: the loss's share that is the teacher's (default 0.5).",
)
@click.option(
    "--distill-top-k",
    type=click.IntRange(min=1),
    help="With --teacher: its likeliest tokens kept per position (default 16).",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--overwrite", is_flag=True, help="Replace an adapter already in --out.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary at the end.")
def train(
    model: str | None,
    data: str,
    out_dir: str,
    targets: str | None,
    resume: bool,
    overwrite: bool,
    as_json: bool,
    **options: Any,
) -> None:
    """Train a LoRA adapter with MLX. Ctrl-C saves a checkpoint; --resume continues it."""
    from ..finetune.train import TrainingInterrupted, train_lora

    options["targets"] = _targets(targets)
    options = {k: v for k, v in options.items() if v is not None}
    with training_progress() as on_event:
        try:
            result = train_lora(model, data, out_dir, resume=resume, overwrite=overwrite, progress=on_event, **options)
        except TrainingInterrupted as e:
            r = e.result
            echo_err(
                f"\nInterrupted at step {r.steps}/{r.total_steps}: checkpoint saved in {r.adapter_dir}; "
                f"continue with `llamarch train ... --out {r.adapter_dir} --resume`"
            )
            sys.exit(130)
    summary = {
        "adapter_dir": str(result.adapter_dir),
        "steps": result.steps,
        "final_loss": result.final_loss,
        "val_loss": result.val_losses[-1][1] if result.val_losses else None,
        "trained_tokens": result.trained_tokens,
        "tokens_per_second": round(result.tokens_per_second, 1),
        "truncated": result.truncated,
        "base": result.base.model if result.base else None,
    }
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(str(result.adapter_dir))
        echo_err(
            f"{result.steps} steps, loss {result.final_loss:.4f}, {result.tokens_per_second:.0f} tok/s; "
            f"for llama.cpp: llamarch export {result.adapter_dir} --to gguf-lora"
        )
