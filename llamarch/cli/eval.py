"""`llamarch eval`: measure models on benchmarks with executable tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..sql.prompt import STUDENT_SCHEMA, STUDENT_VALUES
from ..sql.schema import SCHEMA_STYLES
from .ui import BACKEND_CHOICE, engine_flags, engine_options, item_progress, model_options


@click.group("eval")
def eval_group() -> None:
    """Measure models on benchmarks whose answers are checked by running tests."""


@eval_group.command()
@model_options
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate only this many problems.")
@click.option(
    "--offset", type=click.IntRange(min=0), default=0, show_default=True, help="Skip this many problems first."
)
@click.option("--parallel", type=click.IntRange(min=1), help="Sequences the engine decodes at once (where it batches).")
@click.option("--max-tokens", type=click.IntRange(min=16), default=768, show_default=True, help="Longest reply.")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0.5),
    default=10.0,
    show_default=True,
    help="Seconds each problem's tests may run.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Sandboxes running tests alongside generation.",
)
@click.option("--fresh", is_flag=True, help="Answer every problem again, ignoring stored results.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the summary and every problem's result (JSON).",
)
def humaneval(
    model: str | None,
    backend: str | None,
    limit: int | None,
    offset: int,
    parallel: int | None,
    max_tokens: int,
    timeout_s: float,
    workers: int,
    fresh: bool,
    as_json: bool,
    out: Path | None,
    **engine: Any,
) -> None:
    """HumanEval pass@1 (greedy) of a model: answers run against the tests in a sandbox.

    Results are stored as each problem finishes; running the same command again resumes.
    """
    from ..evals.humaneval import EvalSettings, evaluate, identify, load_problems, summary
    from ..llm import LLM
    from ..store import Store

    problems = load_problems(offset, limit)
    if not problems:
        raise click.UsageError(f"--offset {offset} is past the last problem")
    options = engine_options(**engine)
    identity = identify(model, backend, options.get("lora_path"))
    settings = EvalSettings(max_tokens=max_tokens, timeout_s=timeout_s)
    with (
        Store() as store,
        LLM(model, backend=backend, **options) as llm,
        item_progress(f"HumanEval {identity.model}", len(problems)) as advance,
    ):
        passed = [0, 0]

        def progress(result: Any) -> None:
            passed[0] += result.passed
            passed[1] += 1
            advance(info=f"pass@1 {passed[0] / passed[1]:.1%}")

        run = evaluate(
            llm,
            problems,
            identity=identity,
            settings=settings,
            store=store,
            resume=not fresh,
            parallel=parallel,
            workers=workers,
            on_result=progress,
        )
    report = summary(run)
    report.update(offset=offset, limit=limit)
    if out is not None:
        _write_json(out, {"summary": report, "results": [r.to_dict() for r in run.results]})
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _print_summary(report)


@eval_group.command("sql")
@model_options
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The SQLite database (opened read-only).",
)
@click.option(
    "--questions",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help='JSONL: one {"question": ..., "sql": reference} a line.',
)
@click.option(
    "--schema",
    type=click.Choice(SCHEMA_STYLES),
    default=STUDENT_SCHEMA,
    show_default=True,
    help="How the prompt shows the schema (default: the student's prompt in `distill --check sql`).",
)
@click.option(
    "--sample-rows",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Example rows per table in the prompt.",
)
@click.option(
    "--values/--no-values",
    "distinct",
    default=STUDENT_VALUES,
    show_default=True,
    help="Show the values of short text columns in the prompt.",
)
@click.option(
    "--samples",
    "-k",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Sample K queries per question and answer with the one whose result most share.",
)
@click.option(
    "--temperature",
    type=click.FloatRange(min=0),
    help="Temperature of the samples (default: 0.7 with -k > 1, else greedy).",
)
@click.option(
    "--settle/--no-settle",
    default=True,
    show_default=True,
    help="With -k > 1: stop a question's samples once its vote is decided (the same result wins, fewer tokens).",
)
@click.option(
    "--retry",
    is_flag=True,
    help="Give a query that fails to run the one retry `llamarch sql` gives it (SQLite's error shown).",
)
@click.option("--limit", type=click.IntRange(min=1), help="Use only the first N questions.")
@click.option("--parallel", type=click.IntRange(min=1), help="Sequences the engine decodes at once (where it batches).")
@click.option("--max-tokens", type=click.IntRange(min=16), default=256, show_default=True, help="Longest reply.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the summary and each question's prediction and result as JSON."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the summary and every question's result (JSON).",
)
def sql_command(
    model: str | None,
    backend: str | None,
    db: Path,
    questions: Path,
    schema: str,
    sample_rows: int,
    distinct: bool,
    samples: int,
    temperature: float | None,
    settle: bool,
    retry: bool,
    limit: int | None,
    parallel: int | None,
    max_tokens: int,
    seed: int,
    as_json: bool,
    out: Path | None,
    **engine: Any,
) -> None:
    """Execution accuracy of a model on questions about a SQLite database.

    Each question's reference query and the model's query run read-only on the
    database; a prediction matches when its rows equal the reference's (in order when
    the reference has ORDER BY). Replies are stored as they come: running the same
    command again resumes.
    """
    from ..evals.checkers import SQLChecker
    from ..evals.humaneval import identify
    from ..evals.sql import SQLSettings, evaluate
    from ..evals.vote import MIN_VOTES
    from ..llm import LLM
    from ..sql.questions import load_questions
    from ..store import Store

    checker = SQLChecker(db)
    try:
        items = load_questions(questions, checker.conn, require_sql=True)[:limit]
        if not items:
            raise click.UsageError(f"{questions} holds no question")
        settings = SQLSettings(
            schema=schema,
            sample_rows=sample_rows,
            distinct=distinct,
            samples=samples,
            temperature=(0.7 if samples > 1 else 0.0) if temperature is None else temperature,
            max_tokens=max_tokens,
            seed=seed,
            retry=retry,
            settle_votes=MIN_VOTES if settle and samples > 1 else 0,
        )
        options = engine_options(**engine)
        identity = identify(model, backend, options.get("lora_path"))
        model_key = [identity.sha256 or f"{identity.backend}:{identity.model}", identity.adapter_sha256]
        with (
            Store() as store,
            LLM(model, backend=backend, **options) as llm,
            item_progress(f"SQL {identity.model}", len(items)) as advance,
        ):
            run = evaluate(
                llm,
                checker,
                items,
                settings,
                store=store,
                model_key=model_key,
                parallel=parallel,
                advance=advance,
                retry_progress=lambda n: item_progress(f"retry {identity.model}", n),
            )
    finally:
        checker.close()
    report = {
        **run["summary"],
        "model": identity.model,
        "adapter": identity.adapter,
        "database": str(db),
        "questions_file": str(questions),
        "settings": {**settings.key(), "retry": retry},
    }
    if out is not None:
        _write_json(out, {"summary": report, "results": run["results"]})
    if as_json:
        click.echo(json.dumps({"summary": report, "results": run["results"]}, indent=2, ensure_ascii=False))
        return
    adapter = f" + adapter {identity.adapter}" if identity.adapter else ""
    speed = f", {report['tok_per_s']} tok/s" if report.get("tok_per_s") else ""
    click.echo(
        f"execution accuracy {report['accuracy']:.1f}% ({report['matched']}/{report['questions']})  "
        f"{identity.model}{adapter} on {db.name}"
    )
    click.echo(
        f"  {report['did_not_execute']} predictions did not execute; "
        f"{report['completion_tokens']} tokens generated{speed}"
    )
    if retry:
        click.echo(
            f"  retry: {report.get('retried', 0)} failed queries retried, {report.get('ran_after_retry', 0)} ran "
            f"after it, {report.get('matched_after_retry', 0)} of them right"
        )


@eval_group.command("judge")
@click.option(
    "-s", "--student", required=True, help="The model that answers: catalog id, .gguf path or openai:MODEL@URL."
)
@click.option("-t", "--teacher", required=True, help="The model that judges the answers (may be the student).")
@click.option("--student-backend", type=BACKEND_CHOICE, help="The student's engine (default: from the model).")
@click.option("--teacher-backend", type=BACKEND_CHOICE, help="The teacher's engine (default: from the model).")
@engine_flags
@click.option("--limit", type=click.IntRange(min=1), help="Use only this many problems.")
@click.option(
    "--offset", type=click.IntRange(min=0), default=0, show_default=True, help="Skip this many problems first."
)
@click.option(
    "--parallel", type=click.IntRange(min=1), help="Sequences each engine decodes at once (where it batches)."
)
@click.option(
    "--rubric",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Rubric template file with {question} and {answer} (default: the built-in Python rubric).",
)
@click.option(
    "--max-tokens", type=click.IntRange(min=16), default=768, show_default=True, help="Longest student reply."
)
@click.option(
    "--judge-max-tokens",
    type=click.IntRange(min=16),
    default=384,
    show_default=True,
    help="Longest verdict: a score and a short critique (a retry gets twice as many).",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0.5),
    default=10.0,
    show_default=True,
    help="Seconds each problem's tests may run.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report and every problem's answer, test result and verdict (JSON).",
)
def judge_command(
    student: str,
    teacher: str,
    student_backend: str | None,
    teacher_backend: str | None,
    limit: int | None,
    offset: int,
    parallel: int | None,
    rubric: Path | None,
    max_tokens: int,
    judge_max_tokens: int,
    timeout_s: float,
    as_json: bool,
    out: Path | None,
    **engine: Any,
) -> None:
    """How well a teacher's scores predict whether a student's HumanEval answers pass their tests.

    The student answers (stored answers of `eval humaneval` with the same settings are
    reused), the tests say which answers pass, and the teacher scores each answer from 1
    to 10 without seeing the tests. Reports AUROC, the accuracy of the best score
    threshold beside always guessing the majority class, and the scores of passing and
    failing answers. Verdicts are stored as they come: running the command again resumes.
    """
    import time

    from ..evals.humaneval import EvalSettings, evaluate, identify, load_problems, summary
    from ..llm import LLM
    from ..patterns.student_teacher import Rubric, Teacher
    from ..patterns.student_teacher.distill import side_engine
    from ..patterns.student_teacher.judging import judge_pairs, judge_report, judge_verdicts
    from ..patterns.student_teacher.roles import TEACHER_OPTIONS
    from ..patterns.student_teacher.verdict import Verdict
    from ..store import Store

    problems = load_problems(offset, limit)
    if not problems:
        raise click.UsageError(f"--offset {offset} is past the last problem")
    t0 = time.perf_counter()
    given = engine_options(**engine)
    rubric_obj = Rubric.load(rubric)
    options = {**TEACHER_OPTIONS, "max_tokens": judge_max_tokens}
    identity = identify(student, student_backend)
    same_model = (teacher, teacher_backend) == (student, student_backend)
    with (
        Store() as store,
        LLM(student, backend=student_backend, **side_engine(student, student_backend, given)) as student_llm,
    ):
        with item_progress(f"HumanEval {identity.model}", len(problems)) as advance:
            run = evaluate(
                student_llm,
                problems,
                identity=identity,
                settings=EvalSettings(max_tokens=max_tokens, timeout_s=timeout_s),
                store=store,
                parallel=parallel,
                on_result=lambda _: advance(),
            )
        if not same_model:
            student_llm.close()  # the teacher wants the memory
        opened: list[Any] = []

        def open_teacher() -> Any:
            if not opened:
                llm = student_llm if same_model else teacher
                opened.append(
                    Teacher(
                        llm,
                        backend=teacher_backend,
                        rubric=rubric_obj,
                        options=options,
                        **({} if same_model else side_engine(teacher, teacher_backend, given)),
                    )
                )
            return opened[0]

        try:
            with item_progress(f"{teacher} judging", len(problems)) as advance:
                stored, computed = judge_verdicts(
                    store,
                    open_teacher,
                    identify(teacher, teacher_backend),
                    rubric_obj,
                    options,
                    judge_pairs(problems, run.results),
                    parallel,
                    advance,
                )
        finally:
            for t in opened:
                t.close()
    verdicts = [Verdict.from_dict(v) for v in stored]
    report = {
        "benchmark": "humaneval",
        "student": summary(run),
        "teacher": teacher,
        "rubric": rubric_obj.source,
        "judge_max_tokens": judge_max_tokens,
        **judge_report(run.results, verdicts),
        "verdicts_computed": computed,
        "verdicts_resumed": len(verdicts) - computed,
        "wall_s": round(time.perf_counter() - t0, 1),
        "offset": offset,
        "limit": limit,
    }
    if out is not None:
        rows = [{**r.to_dict(), "verdict": v} for r, v in zip(run.results, stored)]
        _write_json(out, {"summary": report, "results": rows})
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _print_judge_report(report)


def _print_judge_report(r: dict[str, Any]) -> None:
    a, s = r["agreement"], r["student"]
    click.echo(
        f"{r['teacher']} judging {s['model']} on HumanEval: {r['judged']} answers judged, "
        f"{s['passed']}/{s['problems']} pass their tests, {r['invalid']} invalid verdicts"
    )
    auroc = "n/a (needs passing and failing answers)" if a["auroc"] is None else f"{a['auroc']:.3f}"
    click.echo(f"  AUROC {auroc}")
    if a["accuracy_at_best"] is not None:
        rule = (
            "calling every answer failing"
            if a["best_threshold"] is None
            else f'"score >= {a["best_threshold"]:g} passes"'
        )
        click.echo(
            f"  accuracy {a['accuracy_at_best']:.1%} with {rule} "
            f"(always guessing the majority: {a['majority_accuracy']:.1%})"
        )
    click.echo("  score     " + " ".join(f"{k:>4}" for k in r["scores"]["passed"]) + "   mean")
    for label in ("passed", "failed"):
        counts = r["scores"][label]
        mean = r["mean_score"][label]
        click.echo(
            f"  {label:<9} " + " ".join(f"{v:>4}" for v in counts.values()) + f"   {'-' if mean is None else mean}"
        )
    click.echo(f"  {r['verdicts_computed']} verdicts computed, {r['verdicts_resumed']} resumed; {r['wall_s']:.0f} s")


def _print_summary(s: dict[str, Any]) -> None:
    sha = f" (sha256 {s['model_sha256'][:12]})" if s["model_sha256"] else ""
    adapter = f" + adapter {s['adapter']}" if s["adapter"] else ""
    click.echo(f"HumanEval pass@1 {s['pass@1']:.1%} ({s['passed']}/{s['problems']})  {s['model']}{sha}{adapter}")
    click.echo("  " + ", ".join(f"{k} {v}" for k, v in s["statuses"].items()))
    speed = f" at {s['tok_per_s']} tok/s" if s["tok_per_s"] else ""
    resumed = f", {s['resumed']} resumed" if s["resumed"] else ""
    click.echo(f"  {s['completion_tokens']} tokens generated{speed}; {s['wall_s']:.0f} s{resumed}")


def _write_json(path: Path, data: Any) -> None:
    """Write atomically: a crash leaves the old file or the new one."""
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
