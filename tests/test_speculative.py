"""Speculative decoding: drafts change the speed, never the greedy reply."""

from __future__ import annotations

import pytest

from llamarch import LLM
from llamarch.backends.speculative import PromptLookup
from llamarch.errors import BackendError
from test_batch import same_or_near_tie, token_ids

REFACTOR = [
    {
        "role": "user",
        "content": (
            "Rename the function `total` to `sum_values` and return the full code unchanged otherwise:\n\n"
            "```python\ndef total(values):\n    result = 0\n    for value in values:\n        if value is None:\n"
            "            continue\n        result += value\n    return result\n\n\nprint(total([1, 2, None, 3]))\n```"
        ),
    }
]


def test_prompt_lookup_finds_the_latest_repeat():
    lookup = PromptLookup(max_ngram=3, min_ngram=1)
    history = [5, 6, 7, 8, 9, 1, 5, 6, 7, 2, 3, 5, 6, 7]
    assert lookup.propose(0, history, 3) == [2, 3, 5]  # after the latest earlier "5 6 7"
    assert lookup.propose(0, [1, 2, 3, 4], 3) == []
    assert lookup.propose(0, [1, 2, 1], 5) == [2, 1]


def test_prompt_lookup_greedy_reply_is_unchanged(qwen05_path):
    plain = LLM("qwen2.5-coder-0.5b", n_ctx=1024)
    reference = token_ids(plain.stream(REFACTOR, temperature=0, max_tokens=80))
    with LLM("qwen2.5-coder-0.5b", n_ctx=1024, prompt_lookup=True) as fast:
        chunks = list(fast.stream(REFACTOR, temperature=0, max_tokens=80))
        run = fast.backend._batch_engine.last_run
        same_or_near_tie(plain, REFACTOR, reference, token_ids(chunks))
        assert chunks[-1].stats.completion_tokens == len(token_ids(chunks))
    plain.close()
    assert run["drafted"] > 0 and run["accepted"] > 0
    assert run["steps"] < len(reference)  # drafts taken: fewer passes than tokens


def test_draft_model_greedy_reply_is_unchanged(smollm_path):
    prompt = [{"role": "user", "content": "Write a Python function to reverse a string."}]
    plain = LLM("smollm2-135m", n_ctx=1024)
    reference = token_ids(plain.stream(prompt, temperature=0, max_tokens=48))
    with LLM("smollm2-135m", n_ctx=1024, draft_model="smollm2-135m", n_draft=4) as fast:
        got = token_ids(fast.stream(prompt, temperature=0, max_tokens=48))
        run = fast.backend._batch_engine.last_run
    same_or_near_tie(plain, prompt, reference, got)
    plain.close()
    assert run["accepted"] > 0.8 * run["drafted"] > 0  # the same model drafts what it then decodes


def test_draft_model_with_another_tokenizer_is_refused(smollm_path, qwen05_path):
    with pytest.raises(BackendError, match="does not share the tokenizer"):
        LLM("qwen2.5-coder-0.5b", n_ctx=512, draft_model="smollm2-135m")
