"""`llamarch convert`: a GGUF model to an MLX model directory (cached in the user directory)."""

from __future__ import annotations

import json

import click

from .ui import MODEL_HELP, byte_progress


@click.command()
@click.argument("model")
@click.option("--to", "target", type=click.Choice(["mlx"]), default="mlx", show_default=True, help="Target format.")
@click.option(
    "-o", "--out", type=click.Path(file_okay=False), help="Output directory (default: the cache in the user directory)."
)
@click.option(
    "--dtype",
    type=click.Choice(["float16", "bfloat16", "float32"]),
    default="float16",
    show_default=True,
    help="Storage type of the dequantized weights.",
)
@click.option("--force", is_flag=True, help="Convert again even if a cached conversion exists.")
@click.option(
    "--check", is_flag=True, help="Then compare with llama.cpp: token ids, greedy tokens, logits (prints JSON)."
)
def convert(model: str, target: str, out: str | None, dtype: str, force: bool, check: bool) -> None:
    """Convert MODEL (catalog id or .gguf path) for MLX: dequantize, rename, rebuild the tokenizer."""
    from ..finetune.convert import convert_gguf

    with byte_progress() as progress:
        directory = convert_gguf(model, out, dtype=dtype, force=force, progress=progress)
    click.echo(str(directory))
    if check:
        from ..finetune.parity import check_conversion

        click.echo(json.dumps(check_conversion(model, directory).to_dict(), indent=2))


convert.help = (convert.help or "") + f"\n\nMODEL: {MODEL_HELP}"
