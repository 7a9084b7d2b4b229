"""Verdict parsing (pure logic): constrained JSON, and the lenient forms unconstrained models write."""

from __future__ import annotations

import json

import pytest

from llamarch.errors import LlamarchError
from llamarch.patterns.student_teacher import VERDICT_SCHEMA, Rubric, Verdict, parse_verdict
from llamarch.patterns.student_teacher.rubric import DEFAULT_RUBRIC, fill


def test_constrained_json_parses():
    text = json.dumps({"critique": "Off by one.", "score": 4, "improved_answer": "```python\nx = 1\n```"})
    v = parse_verdict(text)
    assert (v.valid, v.score, v.critique, v.improved_answer, v.raw) == (
        True,
        4,
        "Off by one.",
        "```python\nx = 1\n```",
        text,
    )


@pytest.mark.parametrize(
    "text, score",
    [
        ('Here is my verdict:\n```json\n{"critique": "ok", "score": 9, "improved_answer": "a"}\n```', 9),
        ('Sure! {"critique": "fine", "score": "7/10", "improved_answer": "b"} Hope this helps.', 7),
        ('{"critique": "raw\nnewline", "score": 8.0, "improved_answer": "def f():\n    pass"}', 8),
        ('{"score": "10"}', 10),
    ],
)
def test_lenient_forms(text, score):
    v = parse_verdict(text)
    assert v.valid and v.score == score


@pytest.mark.parametrize(
    "text",
    [
        "The answer looks good, I'd give it 8 out of 10.",  # prose only: no score is made up
        '{"critique": "x", "score": 11, "improved_answer": ""}',  # out of range
        '{"critique": "x", "score": 0, "improved_answer": ""}',
        '{"critique": "x", "score": true, "improved_answer": ""}',
        '{"critique": "cut off at max_tok',
        "",
    ],
)
def test_invalid_verdicts_have_no_score(text):
    v = parse_verdict(text)
    assert not v.valid and v.score is None and v.error and v.raw == text


def test_verdict_round_trips_through_dict():
    v = parse_verdict('{"critique": "c", "score": 3, "improved_answer": "i"}')
    assert Verdict.from_dict({**v.to_dict(), "seconds": 1.5}) == v


def test_schema_orders_reasons_before_score():
    assert list(VERDICT_SCHEMA["properties"]) == ["critique", "score", "improved_answer"]
    assert VERDICT_SCHEMA["properties"]["score"]["enum"] == list(range(1, 11))


def test_default_rubric_fills_without_format_braces():
    rubric = Rubric.load()
    text = rubric.render("Q?", "def f(): return {'a': 1}")
    assert "Q?" in text and "{'a': 1}" in text and "{question}" not in text
    assert Rubric.load(DEFAULT_RUBRIC) == rubric


def test_rubric_without_slots_is_refused(tmp_path):
    bad = tmp_path / "r.md"
    bad.write_text("Judge this.")
    with pytest.raises(LlamarchError, match=r"lacks the \{question\} and \{answer\}"):
        Rubric.load(bad)
    with pytest.raises(LlamarchError, match="not found"):
        Rubric.load(tmp_path / "missing.md")


def test_evaluation_prompt_without_answer_slot_appends_it():
    assert fill("Rate this:", None, "ANSWER") == "Rate this:\n\nANSWER"
    assert fill("{question} / {answer}", None, "A") == "(not given) / A"


class ScriptedBackend:
    """Pure logic only: replies from a script, to check the retry policy (not an engine)."""

    name, n_ctx, has_chat_template = "scripted", 4096, True

    def __init__(self, replies):
        self.replies = list(replies)
        self.calls = []

    def stream(self, prompt, options):
        from llamarch.backends.base import Chunk, Stats

        self.calls.append((prompt, options))
        yield Chunk(self.replies.pop(0), stats=Stats(1, 1, 1.0, 1.0, 0.1, 0.5, "length"))


def scripted_teacher(replies):
    from llamarch import LLM
    from llamarch.patterns.student_teacher import Teacher

    llm = LLM.__new__(LLM)
    llm.backend, llm.backend_name, llm.model_id = ScriptedBackend(replies), "scripted", "scripted"
    return Teacher(llm, options={"max_tokens": 100}), llm.backend


def test_a_reply_that_does_not_parse_is_asked_for_once_more_with_twice_the_tokens():
    good = '{"critique": "ok", "score": 6, "improved_answer": "x"}'
    teacher, backend = scripted_teacher(['{"critique": "cut', good])
    verdict = teacher.judge("Q?", "A")
    assert verdict.valid and verdict.score == 6 and verdict.attempts == 2
    (first, first_opts), (retry, retry_opts) = backend.calls
    assert first_opts.json_schema == VERDICT_SCHEMA and (first_opts.max_tokens, retry_opts.max_tokens) == (100, 200)
    assert retry[: len(first)] == first and retry[-2] == {"role": "assistant", "content": '{"critique": "cut'}


def test_two_failures_give_an_invalid_verdict_not_a_made_up_score():
    teacher, backend = scripted_teacher(["I think it is fine.", "Still fine, 9/10 maybe."])
    verdict = teacher.judge("Q?", "A")
    assert not verdict.valid and verdict.score is None and verdict.attempts == 2 and len(backend.calls) == 2
    assert verdict.raw == "Still fine, 9/10 maybe."
