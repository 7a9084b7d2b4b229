"""A final assistant message is continued, not answered (llama.cpp backend)."""

from __future__ import annotations


def test_prefill_renders_an_open_turn(smollm) -> None:
    user = [{"role": "user", "content": "Write a function."}]
    prefix = "Here it is:\n```python\n"
    open_turn = smollm.backend.render_chat([*user, {"role": "assistant", "content": prefix}])
    answered = smollm.backend.render_chat(user)
    assert open_turn.endswith(prefix)
    assert open_turn == answered + prefix  # the same prompt, with the reply already begun


def test_prefilled_reply_continues_the_code(qwen05) -> None:
    messages = [
        {"role": "user", "content": "Write a Python function add(a, b) that returns a + b."},
        {"role": "assistant", "content": "```python\ndef add(a, b):\n"},
    ]
    reply = qwen05.chat(messages, temperature=0, max_tokens=16, stop=["\n```"])
    # The function's indented body (a docstring or code), not a new fence or a restated signature.
    assert reply.startswith("    ") and "```" not in reply and "def add" not in reply
