"""`llamarch distill`: teach a small student with a larger teacher's verdicts."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from ..sql.prompt import STUDENT_SCHEMA, STUDENT_VALUES
from ..sql.schema import SCHEMA_STYLES
from .ui import BACKEND_CHOICE, echo_err, engine_flags, engine_options, item_progress, stopped, training_progress

FILE = click.Path(dir_okay=False, path_type=Path)


def _train_option(values: tuple[str, ...]) -> dict[str, Any]:
    """KEY=VALUE pairs for llamarch.finetune; values are read as JSON when they parse."""
    import json

    settings: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--train-option")
        try:
            settings[key] = json.loads(raw)
        except json.JSONDecodeError:
            settings[key] = raw
    return settings


@click.command()
@click.option(
    "--student",
    default="qwen2.5-coder-0.5b",
    show_default=True,
    help="Student: catalog id, .gguf path or openai:MODEL@URL.",
)
@click.option(
    "--teacher",
    default="qwen2.5-coder-1.5b",
    show_default=True,
    help="Teacher: catalog id, .gguf path or openai:MODEL@URL.",
)
@click.option("--student-backend", type=BACKEND_CHOICE, help="The student's engine (default: from the model).")
@click.option("--teacher-backend", type=BACKEND_CHOICE, help="The teacher's engine (default: from the model).")
@click.option("--prompts", type=FILE, help='JSONL prompts: {"prompt": ...} or {"messages": [...]} per line.')
@click.option(
    "--demo-prompts", is_flag=True, help="Use the Python prompts shipped with llamarch (what `make demo` runs)."
)
@click.option("--synthesize", type=click.IntRange(min=1), help="Have the teacher write N prompts first (with --topic).")
@click.option("--topic", help="What synthesized prompts are about, e.g. 'Python string processing'.")
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Run directory: results, training set, adapter, report. Rerun with the same DIR to resume.",
)
@click.option(
    "--eval-prompts",
    type=FILE,
    help="Held-out prompts to compare the student before and after (default: a split of --prompts).",
)
@click.option(
    "--eval-split",
    type=click.FloatRange(0, 0.9),
    default=0.2,
    show_default=True,
    help="Fraction of the prompts held out for evaluation when there is no --eval-prompts.",
)
@click.option(
    "--min-score",
    type=click.IntRange(1, 11),
    default=8,
    show_default=True,
    help="Answers scored below this are replaced by the teacher's improved answer in the training set.",
)
@click.option("--no-train", is_flag=True, help="Stop after writing the training set (and evaluate the student alone).")
@click.option("--adapter", type=FILE, help="Evaluate this GGUF LoRA adapter instead of training one.")
@click.option(
    "--rubric",
    type=FILE,
    help="The teacher's rubric template ({question}, {answer}); default: the built-in Python rubric.",
)
@click.option("-s", "--system", help="System prompt for the student.")
@click.option(
    "--max-tokens",
    type=click.IntRange(min=1),
    help="Most tokens per answer (default 512; 768 with --check python, as `eval humaneval`).",
)
@click.option(
    "--judge-max-tokens", type=click.IntRange(min=16), default=768, show_default=True, help="Most tokens per verdict."
)
@click.option(
    "--temperature",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="The student's sampling temperature (verdicts are always greedy).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--parallel",
    "--concurrency",
    "parallel",
    type=click.IntRange(min=1),
    help="Sequences (llama.cpp) or requests (openai) at once (default: the engine decides).",
)
@click.option(
    "--check",
    type=click.Choice(["sql", "python"]),
    help="Check answers by running them: sql (with --db), or python (--prompts holds tasks with tests). "
    "The teacher samples, execution decides, and the report is judged by execution.",
)
@click.option("--db", type=FILE, help="The SQLite database the questions are about (--check sql); opened read-only.")
@click.option(
    "--eval-questions",
    type=FILE,
    help='--check sql: held-out {"question", "sql"} lines, scored by execution. '
    "--check python: held-out tasks in the --prompts format (default: HumanEval).",
)
@click.option(
    "--eval-limit",
    type=click.IntRange(min=1),
    help="--check: use only N held-out questions or tasks, spread evenly over them.",
)
@click.option(
    "--recipe",
    type=click.Choice(["corrected", "verified", "judge"]),
    help="How training rows are made: corrected (default with --check: the student's own answer where it is "
    "verified, else the teacher's), verified (the teacher's verified answers), judge (the teacher's verdicts; "
    "the only recipe without a checker).",
)
@click.option(
    "--samples",
    "-k",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="--check: answers the teacher samples per question, voted on by their results.",
)
@click.option(
    "--sample-temperature",
    type=click.FloatRange(min=0),
    default=0.7,
    show_default=True,
    help="--check: the temperature of the teacher's samples.",
)
@click.option(
    "--min-votes",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="--check sql: how many of the K samples must share a result for it to be kept.",
)
@click.option(
    "--settle/--no-settle",
    default=True,
    show_default=True,
    help="--check sql: stop a question's samples once its vote is decided (the same result wins, fewer tokens).",
)
@click.option(
    "--from-queries",
    type=click.IntRange(min=1),
    help="--check sql: also build N queries from the database's tables, keys and values, "
    "each with the question the teacher says it answers (right by construction).",
)
@click.option(
    "--query-seed",
    type=int,
    help="--from-queries: the seed the queries are drawn with (default: --seed); another draws another set "
    "while the rest of the run is reused.",
)
@click.option(
    "--confirm-questions",
    is_flag=True,
    help="--from-queries: train on a built one-table query only when the student's or the teacher's own "
    "answer to its question gives its result (one greedy teacher answer each; joins are kept as built).",
)
@click.option(
    "--teacher-context", type=FILE, help="--check sql: a file of notes about the data that only the teacher sees."
)
@click.option(
    "--student-schema",
    type=click.Choice(SCHEMA_STYLES),
    default=STUDENT_SCHEMA,
    show_default=True,
    help="--check sql: the schema in the student's prompt (compact: one line per table).",
)
@click.option(
    "--student-values/--no-student-values",
    default=STUDENT_VALUES,
    show_default=True,
    help="--check sql: list the values of short text columns after the schema in the student's prompt.",
)
@click.option("--no-teacher-eval", is_flag=True, help="--check: do not score the teacher on the held-out questions.")
@click.option("--iters", type=click.IntRange(min=1), help="LoRA training iterations.")
@click.option("--train-option", multiple=True, metavar="KEY=VALUE", help="Other LoRA training settings (repeatable).")
@engine_flags
def distill(
    student: str,
    teacher: str,
    student_backend: str | None,
    teacher_backend: str | None,
    prompts: Path | None,
    demo_prompts: bool,
    synthesize: int | None,
    topic: str | None,
    out: Path,
    eval_prompts: Path | None,
    eval_split: float,
    min_score: int,
    no_train: bool,
    adapter: Path | None,
    rubric: Path | None,
    system: str | None,
    max_tokens: int | None,
    judge_max_tokens: int,
    temperature: float,
    seed: int,
    parallel: int | None,
    check: str | None,
    db: Path | None,
    eval_questions: Path | None,
    eval_limit: int | None,
    recipe: str | None,
    samples: int,
    sample_temperature: float,
    min_votes: int,
    settle: bool,
    from_queries: int | None,
    query_seed: int | None,
    confirm_questions: bool,
    teacher_context: Path | None,
    student_schema: str,
    student_values: bool,
    no_teacher_eval: bool,
    iters: int | None,
    train_option: tuple[str, ...],
    **engine: Any,
) -> None:
    """Distill a teacher into a student: the student answers every prompt, the teacher
    judges every answer, answers scored below --min-score are replaced by the teacher's
    improved answer, the student is LoRA-trained on the result, and held-out prompts show
    the student's mean score before and after.

    With --check sql --db FILE the answers are checked by running them instead: the
    teacher, given sample rows and value lists the student never sees, samples K queries
    per question, the ones whose results agree are kept, the student learns them from its
    own short prompt, and held-out questions (--eval-questions) are scored by execution.
    With --check python, --prompts holds functions to write with their tests: the
    teacher samples K answers to the tasks the student fails, the sandbox runs the
    tests, passing answers are learned, and held-out tasks (HumanEval by default)
    give pass@1 before and after.

    Everything is stored in DIR as it is computed: kill the run at any point and run the
    same command again to resume.
    """
    if check is not None and recipe == "judge":
        raise click.UsageError(
            "--recipe judge is for runs without a checker: drop --check, or choose corrected or verified"
        )
    if check == "python":
        if db is not None:
            raise click.UsageError("--db is for --check sql: Python tasks carry their own tests")
        _distill_python(
            out=out,
            tasks=prompts,
            student=student,
            teacher=teacher,
            eval_tasks=eval_questions,
            eval_limit=eval_limit,
            recipe=recipe or "corrected",
            samples=samples,
            sample_temperature=sample_temperature,
            evaluate_teacher=not no_teacher_eval,
            max_tokens=max_tokens or 768,
            seed=seed,
            parallel=parallel,
            train=not no_train,
            adapter=adapter,
            student_backend=student_backend,
            teacher_backend=teacher_backend,
            engine=engine_options(**engine),
            train_settings=_settings(train_option, iters),
        )
        return
    max_tokens = max_tokens or 512
    if check is not None:
        _distill_checked(
            out=out,
            db=db,
            student=student,
            teacher=teacher,
            prompts=prompts,
            synthesize=synthesize,
            eval_questions=eval_questions,
            eval_limit=eval_limit,
            recipe=recipe or "corrected",
            samples=samples,
            sample_temperature=sample_temperature,
            min_votes=min_votes,
            settle=settle,
            from_queries=from_queries or 0,
            query_seed=query_seed,
            confirm_questions=confirm_questions,
            teacher_context=teacher_context,
            student_schema=student_schema,
            student_values=student_values,
            evaluate_teacher=not no_teacher_eval,
            max_tokens=max_tokens,
            seed=seed,
            parallel=parallel,
            train=not no_train,
            adapter=adapter,
            student_backend=student_backend,
            teacher_backend=teacher_backend,
            engine=engine_options(**engine),
            train_settings=_settings(train_option, iters),
        )
        return
    if recipe not in (None, "judge"):
        raise click.UsageError(
            f"--recipe {recipe} needs a checker: give --check sql --db FILE.sqlite or --check python"
        )
    from ..patterns.student_teacher.distill import DEMO_PROMPTS, DistillConfig, Distiller, format_report

    if demo_prompts:
        if prompts is not None:
            raise click.UsageError("give --prompts or --demo-prompts, not both")
        prompts = DEMO_PROMPTS
    if prompts is None and not synthesize:
        raise click.UsageError("give --prompts FILE.jsonl, --demo-prompts, or --synthesize N --topic TEXT")
    train_settings = _settings(train_option, iters)
    config = DistillConfig(
        out=out,
        student=student,
        teacher=teacher,
        prompts=prompts,
        eval_prompts=eval_prompts,
        eval_fraction=eval_split,
        min_score=min_score,
        train=not no_train,
        adapter=adapter,
        synthesize=synthesize or 0,
        topic=topic,
        rubric=rubric,
        system=system,
        max_tokens=max_tokens,
        judge_max_tokens=judge_max_tokens,
        temperature=temperature,
        seed=seed,
        parallel=parallel,
        student_backend=student_backend,
        teacher_backend=teacher_backend,
        engine=engine_options(**engine),
        train_settings=train_settings,
    )
    try:
        report = Distiller(config, CliProgress()).run()
    except KeyboardInterrupt:
        stopped(f"Stopped: finished work is saved in {out}; run the same command to resume.")
    click.echo(format_report(report))
    click.echo(f"files: {out}/train.jsonl, valid.jsonl, report.json, timings.json")


def _settings(train_option: tuple[str, ...], iters: int | None) -> dict[str, Any]:
    settings = _train_option(train_option)
    if iters is not None:
        settings["iters"] = iters
    return settings


def _distill_checked(**options: Any) -> None:
    """`distill --check sql`: the verified run, with its execution-accuracy report."""
    from ..patterns.student_teacher.verified import VerifiedConfig, VerifiedDistiller

    if options["db"] is None:
        raise click.UsageError("--check sql needs --db FILE.sqlite: the database the questions are about")
    if options["prompts"] is None and not options["synthesize"] and not options["from_queries"]:
        raise click.UsageError("give training questions: --prompts FILE.jsonl, --synthesize N or --from-queries N")
    options["synthesize"] = options["synthesize"] or 0
    _run_checked(lambda: VerifiedDistiller(VerifiedConfig(**options), CliProgress()).run(), options["out"])


def _distill_python(**options: Any) -> None:
    """`distill --check python`: tasks with tests; held-out pass@1 (HumanEval by default)."""
    from ..patterns.student_teacher.verified_code import HUMANEVAL, CodeConfig, CodeDistiller

    if options["tasks"] is None:
        raise click.UsageError('--check python needs --prompts FILE.jsonl: {"prompt", "entry_point", "tests"} per line')
    options["eval_tasks"] = options["eval_tasks"] or HUMANEVAL
    _run_checked(lambda: CodeDistiller(CodeConfig(**options), CliProgress()).run(), options["out"])


def _run_checked(run: Callable[[], dict[str, Any]], out: Path) -> None:
    """Run a checked distill, then print its table and the files it wrote (one line on Ctrl-C)."""
    from ..patterns.student_teacher.verified import PLOT_FILE, format_report

    try:
        report = run()
    except KeyboardInterrupt:
        stopped(f"Stopped: finished work is saved in {out}; run the same command to resume.")
    click.echo(format_report(report))
    plot = f", {PLOT_FILE}" if (out / PLOT_FILE).is_file() else ""
    click.echo(f"files: {out}/train.jsonl, valid.jsonl, report.json{plot}, timings.json")


class CliProgress:
    """Progress bars on stderr for each phase of a run, and warnings as lines."""

    def phase(self, description: str, total: int) -> contextlib.AbstractContextManager[Callable[[int], None]]:
        return _phase(description, total)

    def training(self) -> contextlib.AbstractContextManager[Callable[[dict[str, Any]], None]]:
        return training_progress("training the student (LoRA)")

    def warn(self, message: str) -> None:
        echo_err(f"warning: {message}")


@contextlib.contextmanager
def _phase(description: str, total: int) -> Iterator[Callable[[int], None]]:
    with item_progress(description, total) as advance:
        yield lambda n=1: advance(n)
