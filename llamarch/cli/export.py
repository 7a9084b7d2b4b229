"""`llamarch export`: an MLX LoRA adapter for llama.cpp (GGUF adapter, or fused GGUF model)."""

from __future__ import annotations

import click

from .ui import byte_progress, echo_err


@click.command()
@click.argument("adapter_dir", type=click.Path(file_okay=False))
@click.option(
    "--to",
    "target",
    type=click.Choice(["gguf-lora", "gguf"]),
    default="gguf-lora",
    show_default=True,
    help="gguf-lora: a LoRA adapter for the original quantized base; gguf: base + adapter fused, f16.",
)
@click.option("-o", "--out", type=click.Path(dir_okay=False), help="Output file (default: inside ADAPTER_DIR).")
@click.option(
    "--outtype",
    type=click.Choice(["f32", "f16"]),
    default="f32",
    show_default=True,
    help="Adapter tensor type (gguf-lora).",
)
def export(adapter_dir: str, target: str, out: str | None, outtype: str) -> None:
    """Export ADAPTER_DIR (from `llamarch train`) to GGUF for llama.cpp."""
    from ..finetune.export import export_fused_gguf, export_gguf_lora
    from ..identity import adapter_base

    if target == "gguf-lora":
        path = export_gguf_lora(adapter_dir, out, outtype=outtype)
        base = adapter_base(adapter_dir).model
        echo_err(f'run it with: llamarch generate -m {base} --lora {path} "..."')
    else:
        with byte_progress() as progress:
            path = export_fused_gguf(adapter_dir, out, progress=progress)
    click.echo(str(path))
