"""The seed API and structured verdicts on real models through the real llama.cpp engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llamarch import LLM
from llamarch.backends import BatchStreaming
from llamarch.patterns.student_teacher import MAX_LENGTH, Student, StudentTeacher, Teacher

PAIRS = [json.loads(line) for line in (Path(__file__).parent / "data" / "judge_pairs.jsonl").read_text().splitlines()]


class RecordingBackend:
    """Wraps a real backend and records every prompt it receives (the engine still runs)."""

    def __init__(self, backend: Any):
        self._backend = backend
        self.prompts: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def stream(self, prompt, options):
        self.prompts.append(prompt)
        return self._backend.stream(prompt, options)

    def stream_batch(self, prompts, options, parallel=None):
        self.prompts.extend(prompts)
        if isinstance(self._backend, BatchStreaming):
            yield from self._backend.stream_batch(prompts, options, parallel=parallel)
            return
        for i, prompt in enumerate(prompts):
            for chunk in self._backend.stream(prompt, options):
                yield i, chunk


@pytest.fixture
def recorded(smollm: LLM):
    """The shared SmolLM2 with its backend recording prompts, restored afterwards."""
    real = smollm.backend
    smollm.backend = RecordingBackend(real)
    yield smollm
    smollm.backend = real


def user_text(prompt: Any) -> str:
    return prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt if m["role"] == "user")


def test_seed_api_returns_two_nonempty_strings(smollm, recorded):
    st = StudentTeacher(smollm, recorded)
    st.student.options["max_tokens"] = 48
    st.teacher.options["max_tokens"] = 48
    student_response, teacher_response = st.generate_response("Write a Python function that adds two numbers.")
    assert isinstance(student_response, str) and student_response.strip()
    assert isinstance(teacher_response, str) and teacher_response.strip()
    assert isinstance(st.student, Student) and isinstance(st.teacher, Teacher)
    # what the teacher's engine received holds the student's answer
    assert student_response[:MAX_LENGTH] in user_text(recorded.backend.prompts[-1])


def test_models_given_as_catalog_id_and_path(smollm_path):
    with StudentTeacher("smollm2-135m", smollm_path) as st:
        assert st.student.llm.model_id == "smollm2-135m"
        assert st.teacher.llm.backend.model_path == smollm_path
        st.student.options["max_tokens"] = 8
        assert st.student.generate_response("Say hi.").strip()


def test_teacher_sees_at_most_max_length_characters(recorded):
    long_answer = "".join(f"Step {i}: append item {i} to the list. " for i in range(400))
    assert len(long_answer) > MAX_LENGTH + 1000
    teacher = Teacher(recorded, options={"max_tokens": 8})
    teacher.evaluate_response(long_answer, "How do I build a list?")
    teacher.judge("How do I build a list?", long_answer)
    sent = recorded.backend.prompts
    assert len(sent) >= 2
    for prompt in sent:
        text = user_text(prompt)
        assert long_answer[:MAX_LENGTH] in text
        assert long_answer[: MAX_LENGTH + 1] not in text


def test_seed_generate_response_cuts_the_student_answer(smollm, recorded, monkeypatch):
    """The seed's `student_response[:MAX_LENGTH]`: a long student answer reaches the teacher cut."""
    long_answer = "".join(f"Line {i} of a very long answer. " for i in range(300))
    st = StudentTeacher(smollm, recorded)
    monkeypatch.setattr(st.student, "generate_response", lambda query: long_answer)
    st.teacher.options["max_tokens"] = 8
    student_response, _ = st.generate_response("Explain lists.")
    assert student_response == long_answer
    text = user_text(recorded.backend.prompts[-1])
    assert long_answer[:MAX_LENGTH] in text and long_answer[: MAX_LENGTH + 1] not in text


def test_judge_gives_valid_verdicts_for_right_and_wrong_answers(qwen05):
    teacher = Teacher(qwen05)
    pair = PAIRS[1]
    for answer in (pair["correct"], pair["broken"]):
        verdict = teacher.judge(pair["question"], answer)
        assert verdict.valid, verdict.raw
        assert isinstance(verdict.score, int) and 1 <= verdict.score <= 10
        assert verdict.critique.strip() and verdict.improved_answer.strip()
        assert json.loads(verdict.raw)["score"] == verdict.score  # constrained: the raw text is the JSON


def test_run_yields_answer_verdict_and_timings_in_order(smollm):
    st = StudentTeacher(smollm, smollm)
    st.student.options["max_tokens"] = 24
    st.teacher.options["max_tokens"] = 64
    queries = ["Reverse a string in Python.", "Sum a list in Python.", "Sort a list in Python."]
    items = list(st.run(queries, window=2))
    assert [it.index for it in items] == [0, 1, 2]
    assert [it.query for it in items] == queries
    for it in items:
        assert it.answer.strip() and it.student_s > 0 and it.teacher_s > 0
        assert it.verdict.raw and (it.verdict.valid == (it.verdict.score is not None))


def test_teacher_synthesizes_distinct_prompts_and_reuses_stored_rounds(qwen05):
    from llamarch.patterns.student_teacher.synthesize import normalized, synthesize_prompts

    cache: dict[str, str] = {}

    def cached(request: str, compute):
        if request not in cache:
            cache[request] = compute()
        return cache[request]

    prompts = synthesize_prompts(qwen05, "Python string processing", 3, cached, max_rounds=2)
    assert 1 <= len(prompts) <= 3 and all(p.strip() for p in prompts)
    assert len({normalized(p) for p in prompts}) == len(prompts)

    def no_model():
        raise AssertionError("a stored round was generated again")

    assert synthesize_prompts(no_model, "Python string processing", 3, cached, max_rounds=2) == prompts


@pytest.fixture(scope="module")
def qwen15():
    from conftest import installed_model

    installed_model("qwen2.5-coder-1.5b")
    llm = LLM("qwen2.5-coder-1.5b", n_ctx=2048)
    yield llm
    llm.close()


def test_teacher_scores_correct_answers_above_broken_ones(qwen15):
    """The embedded teacher on the fixed pairs of tests/data/judge_pairs.jsonl.

    Only the score matters here, so verdicts skip the improved answer (the score comes
    before it in the schema, so the scores are the ones a full verdict gives).
    """
    teacher = Teacher(qwen15, options={"max_tokens": 200})
    pairs = [(p["question"], p[kind]) for p in PAIRS for kind in ("correct", "broken")]
    scores: dict[int, int | None] = {i: v.score for i, v, _ in teacher.judge_many(pairs, improve=False)}
    results = [(scores[2 * n], scores[2 * n + 1]) for n in range(len(PAIRS))]
    right = sum(1 for good, bad in results if good is not None and bad is not None and good > bad)
    print(f"correct > broken in {right} of {len(PAIRS)} pairs: {results}")
    assert right > len(PAIRS) / 2, results


def test_student_fine_tune_trains_and_answers_with_the_adapter(smollm, tmp_path):
    """The seed's Student.fine_tune: MLX LoRA on real examples, then the student answers on llama.cpp with it."""
    st = StudentTeacher(smollm, smollm)
    data = [("Say the password.", "The password is MANGO-7."), ("What is the password?", "The password is MANGO-7.")]
    adapter = st.student.fine_tune(data, out_dir=tmp_path / "tuned", iters=2, batch_size=1, max_seq_length=64)
    assert adapter.is_file() and adapter.read_bytes()[:4] == b"GGUF"
    assert st.student.adapter_path == adapter and st.student.llm is not smollm
    assert st.student.llm.backend._llm.lora_path == str(adapter)  # llama.cpp loaded it
    assert st.student.generate_response("Say the password.")  # answers through the adapter
    st.student.close()
    assert smollm.generate("Hi", max_tokens=2) is not None  # the caller's LLM is left open
