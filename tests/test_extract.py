"""Code extraction from the reply shapes models produce, and assembly with the task prompt."""

from __future__ import annotations

import pytest

from llamarch.evals.extract import complete_solution, extract_code, fenced_blocks, sanitize
from llamarch.evals.sandbox import run_program

PROMPT = '''from typing import List


def helper(x: int) -> int:
    return x * 2


def double_all(numbers: List[int]) -> List[int]:
    """Double every number with helper().
    >>> double_all([1, 2])
    [2, 4]
    """
'''
TEST = "\n\nassert double_all([1, 2, 3]) == [2, 4, 6]\nassert double_all([]) == []\n"
SOLUTION = "def double_all(numbers: List[int]) -> List[int]:\n    return [helper(n) for n in numbers]"

REPLIES = {
    "tagged block then prose": f"Here it is:\n\n```python\n{SOLUTION}\n```\n\nThis doubles each number.",
    "untagged block": f"```\n{SOLUTION}\n```",
    "py tag, tilde fence": f"~~~py\n{SOLUTION}\n~~~\n",
    "usage block after the solution": f"```python\n{SOLUTION}\n```\nExample:\n```python\nprint(double_all([1]))\n```",
    "restated signature first": (
        'You asked for:\n```python\ndef double_all(numbers: List[int]) -> List[int]:\n    """Double."""\n```\n'
        f"Solution:\n```python\n{SOLUTION}\n```"
    ),
    "shell block first": f"Run `pip install nothing`:\n```bash\npip install nothing\n```\n```python\n{SOLUTION}\n```",
    "unclosed fence (truncated)": f"```python\n{SOLUTION}\n",
    "closing fence on the last code line": f"```python\n{SOLUTION}```\nDone.",
    "no fence, trailing prose": f"{SOLUTION}\n\nThis function uses a list comprehension to double.",
    "no fence, leading prose": f"Sure! Here is the code:\n{SOLUTION}\n",
    "body only, indented": "```python\n    return [helper(n) for n in numbers]\n```",
    "body only, unindented": "```python\nreturn [helper(n) for n in numbers]\n```",
    "own imports, example calls and main guard": (
        "```python\nfrom typing import List\n\n"
        + SOLUTION
        + "\n\nprint(double_all([1, 2]))\nassert double_all([5]) == [99]\n"
        "if __name__ == '__main__':\n    double_all(input())\n```"
    ),
    "windows line endings": f"```python\r\n{SOLUTION}\r\n```\r\n".replace("\n    ", "\r\n    "),
}


@pytest.mark.parametrize("shape", sorted(REPLIES))
def test_extracted_solution_passes_the_tests(shape: str) -> None:
    found = extract_code(REPLIES[shape], "double_all")
    assert found.code.strip(), shape
    program = complete_solution(found.code, PROMPT, "double_all")
    result = run_program(program + TEST)
    assert result.status == "passed", (shape, program, result)


def test_reply_without_code() -> None:
    found = extract_code("I cannot help with that.", "double_all")
    assert found.how == "none" and found.code == ""


def test_prefers_the_block_that_defines_the_function() -> None:
    reply = (
        "```python\nimport math\n```\n```python\ndef other():\n    pass\n```\n"
        "```python\ndef double_all(x):\n    return x\n```"
    )
    assert "def double_all" in extract_code(reply, "double_all").code


def test_fenced_blocks_keeps_language_tags() -> None:
    blocks = fenced_blocks("a\n```Python\nx = 1\n```\nb\n```\ny = 2\n```")
    assert blocks == [("python", "x = 1"), ("", "y = 2")]


def test_sanitize_keeps_constants_the_function_uses() -> None:
    code = "VOWELS = 'aeiou'\nUNUSED = 3\ndef count(s):\n    return sum(c in VOWELS for c in s)\nprint(count('hello'))"
    kept = sanitize(code, keep="count")
    assert "VOWELS = 'aeiou'" in kept and "UNUSED" not in kept and "print(" not in kept


def test_sanitize_leaves_unparsable_code_alone() -> None:
    assert sanitize("def f(:\n  pass") == "def f(:\n  pass"


def test_wrong_solution_still_fails() -> None:
    found = extract_code("```python\ndef double_all(numbers):\n    return numbers\n```", "double_all")
    result = run_program(complete_solution(found.code, PROMPT, "double_all") + TEST)
    assert result.status == "failed"


def test_usage_example_cut_off_by_the_token_limit_is_dropped() -> None:
    reply = f"```python\n{SOLUTION}\n\n# Test\nprint(double_all([1, 1, 1, 1, 1, 1,"
    found = extract_code(reply, "double_all")
    result = run_program(complete_solution(found.code, PROMPT, "double_all") + TEST)
    assert result.status == "passed", result


def test_cut_off_function_is_not_salvaged() -> None:
    reply = "```python\ndef double_all(numbers):\n    return [helper(n) for n in"
    found = extract_code(reply, "double_all")
    result = run_program(complete_solution(found.code, PROMPT, "double_all") + TEST)
    assert result.status == "error" and "SyntaxError" in result.detail
