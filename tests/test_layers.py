"""The import graph of llamarch runs one way, read with ast (imports inside functions count too).

Layers, top to bottom; a module imports only from its own layer or one below:

    cli, __main__
    chat, serve                  the interactive commands' logic
    patterns                     StudentTeacher, distillation, judging a teacher
    evals                        harnesses, checkers, the sandbox, voting over checks
    sql                          the SQL toolkit: read-only guard, matching, schema, prompts, asking
    finetune                     LoRA training, losses, adapter export, parity checks
    llamarch (the package)       public names
    llm                          the LLM facade
    backends                     the engines
    mlx_convert                  GGUF -> MLX, which the MLX engine runs on first use
    identity                     base model identity, adapter checks
    pull, hub_pull, hub_fetch    getting models
    catalog
    hub, gguf_file, gguf_tokenizer, store, httpclient, mlx_runtime, hardware, jsonl
    errors, paths

A module is placed by its longest listed prefix. Beside the order: no import cycles, and no
package (backends, finetune, ...; the top-level modules are one package) imports a private
`_name` from another.
"""

from __future__ import annotations

import ast
from pathlib import Path

import llamarch

PACKAGE = Path(llamarch.__file__).parent
LAYERS = [
    {"cli", "__main__"},
    {"chat", "serve"},
    {"patterns"},
    {"evals"},
    {"sql"},
    {"finetune"},
    {""},  # the package's __init__
    {"llm"},
    {"backends"},
    {"mlx_convert"},
    {"identity"},
    {"pull", "hub_pull", "hub_fetch"},
    {"catalog"},
    {"hub", "gguf_file", "gguf_tokenizer", "store", "httpclient", "mlx_runtime", "hardware", "jsonl"},
    {"errors", "paths"},
]
KNOWN_CYCLES: list[set[str]] = []  # none: a cycle found is a failure


def module_files() -> dict[str, Path]:
    """Module name relative to the package ("" for its __init__, "backends.mlx") -> file."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, modules: set[str]) -> list[tuple[str, str, int]]:
    """(imported module, imported name or "", line) for each llamarch import of a module."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    package = [p for p in package if p]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [
                (a.name.removeprefix("llamarch").lstrip("."), "", node.lineno)
                for a in node.names
                if a.name.split(".")[0] == "llamarch"
            ]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                assert node.level - 1 <= len(package), f"llamarch.{name}:{node.lineno}: relative import beyond llamarch"
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").split(".")[0] == "llamarch":
                target = node.module.removeprefix("llamarch").lstrip(".")
            else:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}".lstrip(".")
                found.append((sub, "", node.lineno) if sub in modules else (target, alias.name, node.lineno))
    return found


def graph() -> dict[str, list[tuple[str, str, int]]]:
    files = module_files()
    return {name: [i for i in imports(name, path, set(files)) if i[0] != name] for name, path in files.items()}


def layer(name: str) -> int:
    best, index = -1, None
    for i, members in enumerate(LAYERS):
        for prefix in members:
            if (name == prefix or (prefix and name.startswith(prefix + "."))) and len(prefix) > best:
                best, index = len(prefix), i
    assert index is not None, f"llamarch.{name} is in no layer: add it to LAYERS"
    return index


def top(name: str) -> str:
    """The package a module belongs to: its first part, or "" for a top-level module."""
    first = name.split(".")[0]
    return first if (PACKAGE / first / "__init__.py").is_file() else ""


def cycles(edges: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_imports_run_downwards():
    upward = sorted(
        {
            f"llamarch.{m}:{line} imports llamarch.{target}"
            for m, found in graph().items()
            for target, _, line in found
            if layer(target) < layer(m)
        }
    )
    assert not upward, "imports against the layer order:\n" + "\n".join(upward)


def test_no_import_cycles():
    edges = {m: {t for t, _, _ in found} for m, found in graph().items()}
    assert [c for c in cycles(edges) if c not in KNOWN_CYCLES] == []


def test_no_private_name_across_packages():
    private = sorted(
        {
            f"llamarch.{m}:{line} imports llamarch.{target} {name}"
            for m, found in graph().items()
            for target, name, line in found
            if top(m) != top(target)
            and any(p.startswith("_") and p != "__main__" for p in [*target.split("."), name] if p)
        }
    )
    assert not private, "private names used across packages:\n" + "\n".join(private)
