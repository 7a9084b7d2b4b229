"""A fixed set of Python chat prompts of mixed lengths, shared by the batch benchmarks.

Short requests, explanations of a given function, refactors of a longer listing (where the
reply repeats much of the prompt: prompt-lookup drafting's best case), and conversations
with a system prompt. Deterministic: the same list on every machine.
"""

from __future__ import annotations

TASKS = [
    "reverse the words of a sentence",
    "check whether a number is prime",
    "merge two sorted lists",
    "return the n-th Fibonacci number",
    "parse one CSV line with quoted fields",
    "flatten a nested list",
    "count word frequencies in a text",
    "binary search in a sorted list",
    "validate an email address",
    "compute the median of a list",
    "rotate a matrix by 90 degrees",
    "find duplicate files by hash",
]

SNIPPET = '''def {name}(items, key=None, reverse=False):
    """Return the items grouped by key, each group sorted."""
    groups = {{}}
    for item in items:
        k = key(item) if key else item
        if k not in groups:
            groups[k] = []
        groups[k].append(item)
    result = []
    for k in sorted(groups, reverse=reverse):
        group = groups[k]
        group.sort(reverse=reverse)
        result.append((k, group))
    return result
'''

LISTING_PART = """
class {cls}:
    def __init__(self, path):
        self.path = path
        self.rows = []

    def load(self):
        f = open(self.path)
        for line in f.readlines():
            line = line.strip()
            if line == "":
                continue
            parts = line.split(",")
            self.rows.append([p.strip() for p in parts])
        f.close()
        return len(self.rows)

    def column(self, index):
        out = []
        for row in self.rows:
            if len(row) > index:
                out.append(row[index])
            else:
                out.append(None)
        return out
"""

SYSTEM = "You are a careful senior Python reviewer. Answer concisely with code where it helps."


def code_prompts(n: int = 32) -> list[list[dict[str, str]]]:
    """`n` chat prompts, cycling through four kinds of growing length."""
    prompts: list[list[dict[str, str]]] = []
    for i in range(n):
        task = TASKS[i % len(TASKS)]
        kind = i % 4
        if kind == 0:
            messages = [{"role": "user", "content": f"Write a Python function to {task}."}]
        elif kind == 1:
            code = SNIPPET.format(name=f"group_sorted_{i}")
            messages = [
                {
                    "role": "user",
                    "content": f"Explain what this function does, then give one improvement:\n\n```python\n{code}```",
                }
            ]
        elif kind == 2:
            listing = "".join(LISTING_PART.format(cls=f"Table{i}_{j}") for j in range(1 + i % 3))
            messages = [
                {
                    "role": "user",
                    "content": "Refactor this code to use context managers and the csv module; "
                    f"return the full updated code.\n\n```python\n{listing}```",
                }
            ]
        else:
            messages = [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"I need to {task} in Python."},
                {"role": "assistant", "content": "Sure. Do you want a function or a class, and which Python version?"},
                {"role": "user", "content": "A single function with type hints and a docstring, Python 3.11."},
            ]
        prompts.append(messages)
    return prompts
