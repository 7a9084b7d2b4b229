"""A string prompt means one thing in every `LLM` method: a user message through the chat
template, unless `raw=True` (a plain-text completion). Checked on both test models."""

from __future__ import annotations

import pytest

GREEDY = dict(temperature=0, max_tokens=24)
QUESTIONS = ["Sort a dict by value.", "Read a CSV file."]  # README's generate_batch example


@pytest.mark.parametrize("model", ["smollm", "qwen05"])
def test_generate_and_generate_batch_give_the_same_reply(model, request):
    llm = request.getfixturevalue(model)
    alone = llm.generate(QUESTIONS[0], **GREEDY)
    assert llm.generate_batch(QUESTIONS[:1], **GREEDY)[0].text == alone
    assert llm.respond(QUESTIONS[0], **GREEDY).text == alone
    assert "".join(c.text for c in llm.stream(QUESTIONS[0], **GREEDY)) == alone
    assert all(r.stats.completion_tokens > 0 for r in llm.generate_batch(QUESTIONS, **GREEDY))


@pytest.mark.parametrize("model", ["smollm", "qwen05"])
def test_raw_means_a_plain_completion_everywhere(model, request):
    llm = request.getfixturevalue(model)
    text = "def add(a, b):\n"
    alone = llm.generate(text, raw=True, **GREEDY)
    assert llm.generate_batch([text], raw=True, **GREEDY)[0].text == alone
    assert llm.respond(text, raw=True, **GREEDY).text == alone
    assert llm.prompt_for(text, raw=True) == text and llm.prompt_for(text) == llm.messages_for(text)
