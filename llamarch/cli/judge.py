"""`llamarch judge`: a teacher's verdict (score 1-10, critique, improved answer) on an answer."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from .ui import BACKEND_CHOICE, echo_err, engine_flags, engine_options, item_progress

TEACHER_HELP = "Teacher: catalog id, .gguf path or openai:MODEL@URL (env LLAMARCH_TEACHER; default qwen2.5-coder-1.5b)."


@click.command()
@click.argument("question", required=False)
@click.argument("answer", required=False)
@click.option(
    "-t", "--teacher", envvar="LLAMARCH_TEACHER", default="qwen2.5-coder-1.5b", show_default=False, help=TEACHER_HELP
)
@click.option("--backend", type=BACKEND_CHOICE, help="The teacher's engine (default: from the model).")
@engine_flags
@click.option(
    "--rubric",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Rubric template file with {question} and {answer} (default: the built-in Python rubric).",
)
@click.option(
    "--max-tokens",
    type=click.IntRange(min=16),
    default=768,
    show_default=True,
    help="Most tokens in a verdict (a retry gets twice as many).",
)
@click.option(
    "--pairs",
    type=click.Path(dir_okay=False, path_type=Path),
    help='Judge every line of a JSONL file of {"question": ..., "answer": ...}; prints JSONL verdicts.',
)
@click.option(
    "--student", help="With --prompts: the student model that answers (catalog id, .gguf path or openai:MODEL@URL)."
)
@click.option(
    "--student-max-tokens",
    type=click.IntRange(min=1),
    default=512,
    show_default=True,
    help="Most tokens per student answer (--student).",
)
@click.option(
    "--prompts",
    type=click.Path(dir_okay=False, path_type=Path),
    help='With --student: JSONL prompts ({"prompt"} or {"messages"}) the student answers and the teacher judges; '
    "prints JSONL.",
)
@click.option(
    "--parallel",
    "--concurrency",
    "parallel",
    type=click.IntRange(min=1),
    help="Replies generated at once (--pairs, --prompts; default: the engine decides).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as one JSON object.")
def judge(
    question: str | None,
    answer: str | None,
    teacher: str,
    backend: str | None,
    rubric: Path | None,
    max_tokens: int,
    pairs: Path | None,
    student: str | None,
    student_max_tokens: int,
    prompts: Path | None,
    parallel: int | None,
    as_json: bool,
    **engine: Any,
) -> None:
    """Judge ANSWER to QUESTION with a teacher model (ANSWER "-" reads it from stdin).

    The verdict is constrained to JSON (score, critique, improved_answer) where the engine
    can. --pairs judges a file of answers (stored as they come: a rerun resumes);
    --student with --prompts has a student answer each prompt first.
    """
    from ..patterns.student_teacher import Teacher

    if (student is None) != (prompts is None):
        raise click.UsageError("--student and --prompts go together")
    if pairs is None and prompts is None and (question is None or answer is None):
        raise click.UsageError(
            'give QUESTION and ANSWER (ANSWER "-" reads stdin), --pairs FILE.jsonl, '
            "or --student ID --prompts FILE.jsonl"
        )
    if answer == "-":
        answer = sys.stdin.read()
    from ..patterns.student_teacher.distill import side_engine

    given = engine_options(**engine)
    with Teacher(
        teacher,
        backend=backend,
        rubric=rubric,
        options={"max_tokens": max_tokens},
        **side_engine(teacher, backend, given),
    ) as t:
        if pairs is not None:
            _judge_file(t, pairs, parallel)
            return
        if student is not None and prompts is not None:
            _student_run(student, student_max_tokens, t, prompts, parallel, given)
            return
        assert question is not None and answer is not None
        verdict = t.judge(question, answer)
    if as_json:
        click.echo(json.dumps(verdict.to_dict(), ensure_ascii=False))
    elif verdict.valid:
        click.echo(
            f"score: {verdict.score}/10\ncritique: {verdict.critique}\n\nimproved answer:\n{verdict.improved_answer}"
        )
    else:
        echo_err(
            f"the teacher gave no valid verdict after {verdict.attempts} attempts ({verdict.error}); its reply was:"
        )
        click.echo(verdict.raw)
    if not verdict.valid:
        sys.exit(1)


def _judge_file(teacher: Any, path: Path, parallel: int | None) -> None:
    """One JSON verdict per good line of `path`, in file order, on stdout."""
    from ..identity import identify
    from ..jsonl import read_jsonl
    from ..patterns.student_teacher.distill import fill_from_store, verdict_key
    from ..patterns.student_teacher.roles import model_spec
    from ..store import Store

    def check(obj: Any) -> str | None:
        if not isinstance(obj, dict) or not all(isinstance(obj.get(k), str) for k in ("question", "answer")):
            return 'expected {"question": string, "answer": string}'
        return None

    rows = list(read_jsonl(path, validate=check, on_bad_line=lambda bad: echo_err(f"skipped {bad}")))
    items = [(obj["question"], obj["answer"]) for _, obj in rows]
    identity = identify(model_spec(teacher.llm), teacher.llm.backend_name)
    keys = [verdict_key(identity, teacher.rubric, q, a, teacher.options) for q, a in items]

    def compute(indices: list[int]) -> Any:
        for j, verdict, seconds in teacher.judge_many([items[i] for i in indices], parallel):
            yield j, {**verdict.to_dict(), "seconds": seconds}

    with Store() as store, item_progress(f"judging {path.name}", len(items)) as advance:
        verdicts = fill_from_store(store, "verdict", keys, compute, advance)
    for (lineno, _), verdict in zip(rows, verdicts):
        click.echo(
            json.dumps({"line": lineno, **{k: v for k, v in verdict.items() if k != "seconds"}}, ensure_ascii=False)
        )


def _student_run(
    student_spec: str, max_tokens: int, teacher: Any, path: Path, parallel: int | None, engine: dict[str, Any]
) -> None:
    """`StudentTeacher.run` over a prompt file: one JSON line per prompt, with a progress bar."""
    from ..patterns.student_teacher import Student, StudentTeacher
    from ..patterns.student_teacher.distill import side_engine
    from ..patterns.student_teacher.prompts import read_prompts

    items = read_prompts(path, on_bad_line=lambda bad: echo_err(f"skipped {bad}"))
    with (
        Student(student_spec, options={"max_tokens": max_tokens}, **side_engine(student_spec, None, engine)) as student,
        item_progress(f"answering and judging {path.name}", len(items)) as advance,
    ):
        for item in StudentTeacher(student, teacher).run(items, parallel=parallel):
            source = items[item.index].source
            click.echo(
                json.dumps(
                    {
                        "source": source,
                        "prompt": item.query,
                        "answer": item.answer,
                        "verdict": item.verdict.to_dict(),
                        "student_s": round(item.student_s, 3),
                        "teacher_s": round(item.teacher_s, 3),
                    },
                    ensure_ascii=False,
                )
            )
            advance(1)
