"""Student-Teacher: a small student model answers, a larger expert teacher judges it, and the
student is fine-tuned on the teacher's feedback.

    from llamarch.patterns.student_teacher import StudentTeacher
    st = StudentTeacher("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")
    student_response, teacher_response = st.generate_response("Reverse a list in Python.")
    verdict = st.teacher.judge("Reverse a list in Python.", student_response)
    for item in st.run(["Sort a dict by value.", "Read a CSV file."]):
        print(item.verdict.score, item.verdict.critique)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ...backends import Message
from ...errors import LlamarchError
from ...evals.checkers import Check, Task, get_checker
from ...evals.vote import MIN_VOTES, Settler, Vote, pick, vote
from .prompts import PromptItem, as_prompt_items
from .roles import MAX_LENGTH, ModelLike, Student, Teacher
from .rubric import Rubric
from .verdict import VERDICT_SCHEMA, Verdict, parse_verdict


@dataclass(frozen=True)
class RunItem:
    """One query of a batch run: the student's answer, the teacher's verdict, and timings."""

    index: int
    query: str
    answer: str
    verdict: Verdict
    student_s: float
    teacher_s: float


class StudentTeacher:
    """A student that answers and a teacher that evaluates; the teacher's feedback trains the student.

    `student_llm` and `teacher_llm` are each an `LLM`, a catalog id, a path to a model
    file, or a model spec such as "openai:MODEL@URL" (or a ready `Student` / `Teacher`).
    """

    def __init__(self, student_llm: ModelLike | Student, teacher_llm: ModelLike | Teacher, check: Any = None):
        self.student = student_llm if isinstance(student_llm, Student) else Student(student_llm)
        self.teacher = teacher_llm if isinstance(teacher_llm, Teacher) else Teacher(teacher_llm)
        self.checker = get_checker(check) if check is not None else None

    def verified_answer(
        self,
        query: str | Sequence[Message],
        reference: str | None = None,
        samples: int = 8,
        temperature: float = 0.7,
        seed: int = 0,
        min_votes: int = MIN_VOTES,
        settle: bool = True,
    ) -> tuple[str | None, Vote]:
        """The teacher's answer that execution agrees on: it samples `samples` answers, the
        checker runs each, and the vote picks (see `vote`). (None, vote) when none is accepted.

        With `settle` (and no reference), the samples still running stop once the vote is
        decided (see `Settler`): the same result is accepted, from fewer answers.
        Needs a checker (`StudentTeacher(..., check="sql"|callable)`).
        """
        if self.checker is None:
            raise LlamarchError("verified_answer needs a checker: StudentTeacher(student, teacher, check=...)")
        prompt = self.teacher.llm.messages_for(query) if isinstance(query, str) else list(query)
        task = Task(query if isinstance(query, str) else PromptItem(tuple(query)).question, reference)
        checks: dict[str, Check] = {}

        def check(_: int, text: str) -> Check:  # each distinct answer is run once
            if text not in checks:
                checks[text] = self.checker(task, text)
            return checks[text]

        settler = Settler(check, samples, min_votes) if settle and reference is None and samples > 1 else None
        decided: list[bool] = []
        replies: dict[int, str] = {}
        parts: dict[int, list[str]] = {}
        stream = self.teacher.llm.stream_batch(
            [prompt] * samples,
            temperature=temperature,
            seed=seed,
            max_tokens=self.teacher.options.get("max_tokens"),
            drop=(lambda _: bool(decided)) if settler else None,
        )
        for i, chunk in stream:
            parts.setdefault(i, []).append(chunk.text)
            if chunk.stats is None or chunk.stats.finish_reason == "dropped":
                continue
            replies[i] = "".join(parts.pop(i))
            if settler is not None and not decided and settler.add(0, replies[i]):
                decided.append(True)
        texts = [replies[i] for i in sorted(replies)]
        outcome = vote([check(0, t) for t in texts], has_reference=reference is not None, min_votes=min_votes)
        if not outcome.verified:
            return None, outcome
        return texts[pick([checks[t].answer for t in texts], outcome.accepted)], outcome

    def generate_response(self, query: str) -> tuple[str, str]:
        """(student_response, teacher_response): the student's answer and the teacher's evaluation."""
        student_response = self.student.generate_response(query)
        teacher_response = self.teacher.evaluate_response(student_response[:MAX_LENGTH], query)
        return student_response, teacher_response

    def train_student(self, data: Any) -> None:
        """Fine-tune the student on `data` (see `Student.fine_tune`)."""
        self.student.fine_tune(data)

    def run(
        self,
        queries: Iterable[str | Sequence[Message] | PromptItem],
        parallel: int | None = None,
        window: int | None = None,
    ) -> Iterator[RunItem]:
        """Answer and judge many queries; yields one RunItem per query, in input order.

        Queries go through in windows (default: `parallel`, at least 4): the student answers
        a window as one batch, then the teacher judges it as one batch.
        """
        items = as_prompt_items(list(queries))
        size = window or max(parallel or 1, 4)
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            answers: dict[int, tuple[str, float]] = {}
            for i, reply in self.student.answer_many([list(it.messages) for it in chunk], parallel):
                answers[i] = (reply.text, reply.stats.total_s)
            pairs = [(it.question, answers[i][0]) for i, it in enumerate(chunk)]
            verdicts = {i: (v, s) for i, v, s in self.teacher.judge_many(pairs, parallel)}
            for i, it in enumerate(chunk):
                yield RunItem(start + i, it.question, answers[i][0], verdicts[i][0], answers[i][1], verdicts[i][1])

    def close(self) -> None:
        self.student.close()
        self.teacher.close()

    def __enter__(self) -> StudentTeacher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "MAX_LENGTH",
    "Check",
    "PromptItem",
    "Rubric",
    "RunItem",
    "Student",
    "StudentTeacher",
    "Task",
    "Teacher",
    "VERDICT_SCHEMA",
    "Verdict",
    "Vote",
    "get_checker",
    "parse_verdict",
    "vote",
]
