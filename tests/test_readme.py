"""Every `llamarch ...` example in README.md and docs/*.md names a real command and real options.

The examples are parsed by the command's own click parser (no type conversion, no callbacks, no
model loaded): an unknown command or option, an option missing its value, a flag given a value,
a choice that is not one, or too many positional arguments fails the test. Fast: it imports the
CLI modules only.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from llamarch.cli import cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_LANGS = {"sh", "bash", "shell", "console", "text", ""}
FENCE = re.compile(r"^```(\w*)\s*\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`(llamarch [^`]+)`")
SEPARATORS = {"|", "||", "&", "&&", ";", ">", ">>", "<", "2>", "(", ")"}


def _segments(line: str) -> list[list[str]]:
    """The simple commands of one shell line (pipes, redirections and `&` split them; comments go)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    segments, current = [], []
    for token in lexer:
        if token in SEPARATORS or set(token) <= set("|&;<>()"):
            segments.append(current)
            current = []
        else:
            current.append(token)
    segments.append(current)
    return [s for s in segments if s]


def _block_examples(text: str) -> list[list[str]]:
    examples = []
    for match in FENCE.finditer(text):
        if match.group(1) not in SHELL_LANGS:
            continue
        body = re.sub(r"\\\n\s*", " ", match.group(2))  # line continuations
        for line in body.splitlines():
            line = line.strip()
            if line.startswith("$ "):
                line = line[2:]
            for segment in _segments(line):
                if Path(segment[0]).name == "llamarch" and segment[1:]:
                    examples.append(segment[1:])
    return examples


def _inline_examples(text: str) -> list[list[str]]:
    """`llamarch ...` in prose; a synopsis's [optional] parts count, `a|b` is its first choice."""
    prose = FENCE.sub("", text)
    examples = []
    for match in INLINE.finditer(prose):
        tokens = []
        for token in shlex.split(" ".join(match.group(1).split())):
            token = token.strip("[]").split("|")[0].removesuffix("...")
            if token:
                tokens.append(token)
        if tokens[1:]:  # a bare `llamarch ...` in prose is no example
            examples.append(tokens[1:])
    return examples


def examples(path: Path) -> list[list[str]]:
    text = path.read_text(encoding="utf-8")
    return _block_examples(text) + _inline_examples(text)


def check_example(args: list[str]) -> None:
    """Raise click.UsageError where `llamarch ARGS` would be refused before the command runs."""
    ctx = click.Context(cli, info_name="llamarch")
    command: click.Command = cli
    rest = list(args)
    while True:
        parser = command.make_parser(ctx)
        opts, rest, _ = parser.parse_args(rest)
        for param in command.params:
            if param.name in opts and isinstance(param.type, click.Choice):
                values = opts[param.name] if param.multiple or param.nargs != 1 else [opts[param.name]]
                for value in values:
                    if value not in param.type.choices:
                        raise click.BadParameter(
                            f"{value!r} is not one of {list(param.type.choices)}", ctx=ctx, param=param
                        )
        if not isinstance(command, click.Group):
            break
        if not rest:
            raise click.UsageError(f"`{ctx.command_path}` needs a subcommand", ctx=ctx)
        name, rest = rest[0], rest[1:]
        sub = command.get_command(ctx, name)
        if sub is None:
            raise click.UsageError(f"no such command {name!r} under `{ctx.command_path}`", ctx=ctx)
        ctx = click.Context(sub, info_name=name, parent=ctx)
        command = sub
    if rest and not command.allow_extra_args:  # the parser has given every argument its values
        raise click.UsageError(f"`{ctx.command_path}` got extra arguments: {rest}", ctx=ctx)


CASES = [(path, example) for path in DOCS for example in examples(path)]


def test_readme_has_an_example_of_every_command():
    readme = {tuple(e[:2]) for e in examples(ROOT / "README.md")} | {(e[0],) for e in examples(ROOT / "README.md")}
    for name in cli.list_commands(click.Context(cli)):
        if name == "convert":  # in docs/fine-tuning.md only
            continue
        assert (name,) in readme, f"README.md has no `llamarch {name}` example"
    for pair in [("models", "pull"), ("distill", "--check"), ("eval", "sql")]:
        assert pair in readme or any(e[0] == pair[0] and pair[1] in e for e in examples(ROOT / "README.md")), pair


@pytest.mark.parametrize("path,args", CASES, ids=[f"{p.name}:{' '.join(a)[:60]}" for p, a in CASES])
def test_example_parses(path: Path, args: list[str]):
    try:
        check_example(args)
    except click.UsageError as e:
        pytest.fail(f"{path.name}: `llamarch {' '.join(args)}`: {e.format_message()}")


@pytest.mark.parametrize(
    "bad",
    [
        ["train", "-m", "qwen2.5-coder-0.5b", "--data", "DIR", "--out", "o", "--itres", "5"],
        ["eval", "sqll", "--db", "x.sqlite"],
        ["export", "adapters/py", "--to", "gguf-lorra"],
        ["distill", "--no-train=1", "--out", "o"],
        ["generate", "--max-tokens"],
        ["judge", "q", "a", "extra"],
    ],
)
def test_a_wrong_example_fails(bad: list[str]):
    with pytest.raises(click.UsageError):
        check_example(bad)


def test_extraction_reads_pipes_comments_and_continuations():
    text = (
        "```sh\nprintf 'hi\\n' | llamarch chat -m m  # a comment\n"
        "llamarch distill --teacher t \\\n    --out runs/x &\n```\n"
        "and `llamarch models list [--json]` in prose\n"
    )
    path = ROOT / "README.md"
    assert _block_examples(text) == [["chat", "-m", "m"], ["distill", "--teacher", "t", "--out", "runs/x"]]
    assert _inline_examples(text) == [["models", "list", "--json"]]
    assert examples(path)


def _anchors(path: Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens."""
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", text, re.M)}


@pytest.mark.parametrize("path", [*DOCS, ROOT / "benchmarks" / "RESULTS.md"], ids=lambda p: p.name)
def test_relative_links_resolve(path: Path):
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        assert dest.exists(), f"{path.name}: link to missing {target}"
        if anchor:
            assert anchor in _anchors(dest), f"{path.name}: no heading #{anchor} in {dest.name}"


def _python_blocks(path: Path) -> list[str]:
    return [m.group(2) for m in FENCE.finditer(path.read_text(encoding="utf-8")) if m.group(1) == "python"]


@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_python_examples_name_real_things(path: Path):
    """The imports of each Python example resolve and the methods it calls exist (no model loads)."""
    import importlib

    from llamarch import LLM
    from llamarch.patterns.student_teacher import StudentTeacher
    from llamarch.patterns.student_teacher.roles import Teacher

    for code in _python_blocks(path):
        for module, names in re.findall(r"^from ([\w.]+) import ([\w, ]+)$", code, re.M):
            for name in names.split(","):
                assert hasattr(importlib.import_module(module), name.strip()), f"{path.name}: {module}.{name}"
        for obj, cls in [(r"st\.teacher", Teacher), (r"st", StudentTeacher), (r"llm", LLM)]:
            for method in re.findall(rf"\b{obj}\.(\w+)\(", code):
                assert hasattr(cls, method), f"{path.name}: {cls.__name__} has no {method}()"
