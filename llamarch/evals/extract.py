"""Getting runnable code out of a model's reply.

Replies come in many shapes: one fenced block, several (the solution, then a usage
example), a fence without a language tag, a fence never closed (the reply hit its token
limit), code with no fence at all followed by prose, or only the body of the function.
`extract_code` picks the code; `complete_solution` turns it into a program that defines
the function together with what the task's prompt provides (imports, helper functions).
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass

PYTHON_TAGS = {"", "python", "py", "python3", "py3", "pycon", "ipython"}
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+.-]*)")
_CODE_START = re.compile(r"^(def |async def |class |import |from \S+ import |@)")


@dataclass(frozen=True)
class Extraction:
    """Code found in a reply, and how: fenced | unfenced | none."""

    code: str
    how: str


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language tag, body) of each fenced block; an unclosed last block runs to the end."""
    blocks: list[tuple[str, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, tag = opening.group(1), opening.group(2).lower()
        body: list[str] = []
        i += 1
        while i < len(lines):
            line = lines[i]
            if line.strip().startswith(fence[0] * 3) and not line.strip().strip(fence[0]):
                break
            if line.rstrip().endswith(fence) and not _FENCE.match(line):  # `    return x```
                body.append(line.rstrip()[: -len(fence)])
                break
            body.append(line)
            i += 1
        blocks.append((tag, "\n".join(body)))
        i += 1
    return blocks


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


def _defines(code: str, name: str) -> bool:
    return re.search(rf"^\s*(async\s+)?def\s+{re.escape(name)}\s*\(", code, re.M) is not None


def _has_body(code: str, name: str) -> bool:
    """Whether `name` is defined with more than a docstring (not a restated signature)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return True  # cannot tell: do not rule it out
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            body = (
                node.body[1:]
                if node.body
                and isinstance(node.body[0], ast.Expr)
                and isinstance(getattr(node.body[0], "value", None), ast.Constant)
                else node.body
            )
            return any(
                not isinstance(stmt, ast.Pass)
                and not (
                    isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and stmt.value.value is Ellipsis
                )
                for stmt in body
            )
    return False


def _longest_parsing_prefix(lines: list[str]) -> str | None:
    """The longest run of leading lines that parses as Python (trailing prose or a cut-off line dropped)."""
    for end in range(len(lines), 0, -1):
        candidate = "\n".join(lines[:end])
        if _parses(candidate):
            return candidate
    return None


def _unfenced(text: str) -> str:
    """Code in a reply without fences: from the first line that starts code, prose cut off the end."""
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if _CODE_START.match(ln)), None)
    if start is None:
        return ""
    lines = lines[start:]
    return _longest_parsing_prefix(lines) or "\n".join(lines)


def extract_code(reply: str, entry_point: str | None = None) -> Extraction:
    """The code in `reply`, preferring the block that defines `entry_point` with a body."""
    blocks = [body for tag, body in fenced_blocks(reply) if tag in PYTHON_TAGS and body.strip()]
    if blocks:
        if entry_point:
            defining = [b for b in blocks if _defines(b, entry_point)]
            with_body = [b for b in defining if _has_body(b, entry_point)]
            if with_body or defining:
                return Extraction((with_body or defining)[0], "fenced")
        parsing = [b for b in blocks if _parses(b)]
        return Extraction((parsing or blocks)[0], "fenced")
    code = _unfenced(reply)
    return Extraction(code, "unfenced" if code else "none")


def sanitize(code: str, keep: str | None = None) -> str:
    """Keep imports, functions, classes and the constants they use; drop top-level example
    calls, prints, asserts and `if __name__ == "__main__"` blocks.

    Code that does not parse (say a usage example cut off by the token limit) loses its
    trailing lines until it does, as long as `keep` is still defined; otherwise it is
    returned as is, to fail on its own."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        salvaged = _longest_parsing_prefix(code.splitlines())
        if salvaged is None or (keep and not _has_body(salvaged, keep)):
            return code
        code, tree = salvaged, ast.parse(salvaged)
    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)
    used = {n.id for node in tree.body if isinstance(node, defs) for n in ast.walk(node) if isinstance(n, ast.Name)}
    lines = code.splitlines()
    kept: list[str] = []
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
            if not names & used:
                continue
        elif not isinstance(node, defs):
            continue
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        kept.append("\n".join(lines[first - 1 : node.end_lineno]))
    if keep and not any(_defines(part, keep) for part in kept):
        return code  # nothing recognisable: leave it whole rather than empty
    return "\n\n".join(kept)


def _prompt_context(prompt: str, entry_point: str) -> str:
    """What the prompt defines before the function to write: imports, helpers, constants."""
    match = re.search(rf"^(async\s+)?def\s+{re.escape(entry_point)}\s*\(", prompt, re.M)
    return prompt[: match.start()].rstrip() if match else ""


def _as_body(code: str) -> str:
    """A function body indented one level under a `def` (it may come unindented or half-indented)."""
    body = textwrap.dedent(code.strip("\n"))
    return textwrap.indent(body, "    ")


def complete_solution(code: str, prompt: str, entry_point: str) -> str:
    """A program defining `entry_point`, built from extracted `code` and the task `prompt`.

    Code that defines the function gets the prompt's imports and helpers prepended (a
    model often drops `from typing import List`); code that does not is taken as the
    function's body and appended to the prompt.
    """
    if _defines(code, entry_point):
        context = _prompt_context(prompt, entry_point)
        solution = sanitize(code, keep=entry_point)
        return f"{context}\n\n{solution}\n" if context else f"{solution}\n"
    if not code.strip():
        return prompt
    as_is = prompt.rstrip("\n") + "\n" + code.strip("\n") + "\n"
    if _parses(as_is) and code.startswith((" ", "\t")):
        return as_is
    return prompt.rstrip("\n") + "\n" + _as_body(code) + "\n"
