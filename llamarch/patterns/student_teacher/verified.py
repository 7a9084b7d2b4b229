"""Verified distillation: the teacher's answers are kept only when running them agrees.

For each training question the student answers from its own prompt; the teacher, an
expert through context the student does not get (sample rows, the values of short text
columns, the user's notes), samples K queries, and the checker runs every one. The
answers whose result most samples share (or the reference's, when the question has one)
are accepted. The student is then LoRA-trained on the question *without* the teacher's
context, so the adapter carries what the context told the teacher (context distillation).
Held-out questions with reference queries measure the student before and after, and the
teacher greedy and amplified, by execution only.

Everything is stored in `DIR/distill.db` as it is computed; a rerun resumes.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ... import paths
from ...errors import LlamarchError
from ...evals.checkers import Check, SQLChecker, Task
from ...evals.sql import SQLSettings, evaluate, generate_replies, schema_text
from ...evals.stats import compare_paired
from ...evals.vote import MIN_VOTES, Vote, pick, vote
from ...identity import ModelIdentity, identify
from ...jsonl import write_jsonl
from ...sql.prompt import STUDENT_SCHEMA, STUDENT_VALUES
from ...store import Store, result_key
from .distill import (
    REPORT_FILE,
    STORE_FILE,
    TIMINGS_FILE,
    Progress,
    _Lazy,
    run_adapter,
    side_engine,
    write_json,
    write_training_files,
)
from .training import chat_row

RECIPES = ("corrected", "verified")
DEFAULT_RECIPE = "corrected"
PLOT_FILE = "report.png"


@dataclass
class VerifiedConfig:
    """A verified distill run on one SQLite database (see `llamarch distill --check sql`)."""

    out: Path
    db: Path
    student: str = "qwen2.5-coder-0.5b"
    teacher: str = "qwen2.5-coder-1.5b"
    prompts: Path | None = None  # training questions: {"question"[, "sql"]} per line
    eval_questions: Path | None = None  # held-out questions with reference SQL
    synthesize: int = 0
    from_queries: int = 0  # queries built from the data, their questions written by the teacher
    query_seed: int | None = None  # the seed of the built queries (None: `seed`)
    teacher_context: Path | None = None  # the user's notes, for the teacher only
    samples: int = 8
    sample_temperature: float = 0.7
    min_votes: int = MIN_VOTES  # a result needs at least this many of the K samples to be accepted
    settle: bool = True  # stop a question's samples once its vote is decided (`vote.Settler`)
    # a built one-table query's question is trained on only when the student's or the teacher's own
    # answer to it gives the query's result: a question that says something else teaches a wrong mapping
    confirm_questions: bool = False
    recipe: str = DEFAULT_RECIPE
    student_schema: str = STUDENT_SCHEMA
    student_values: bool = STUDENT_VALUES  # the values of short text columns after the schema
    teacher_sample_rows: int = 3
    max_tokens: int = 256
    seed: int = 0
    parallel: int | None = None
    train: bool = True
    adapter: Path | None = None
    evaluate_teacher: bool = True
    eval_limit: int | None = None
    student_backend: str | None = None
    teacher_backend: str | None = None
    engine: dict[str, Any] = field(default_factory=dict)
    train_settings: dict[str, Any] = field(default_factory=dict)

    def student_settings(self) -> SQLSettings:
        return SQLSettings(
            schema=self.student_schema, distinct=self.student_values, max_tokens=self.max_tokens, seed=self.seed
        )

    def teacher_settings(self, samples: int | None = None, min_votes: int = MIN_VOTES) -> SQLSettings:
        """The teacher's prompt and sampling; with `settle`, samples stop once `min_votes` decide."""
        k = self.samples if samples is None else samples
        notes = Path(self.teacher_context).read_text(encoding="utf-8") if self.teacher_context else None
        return SQLSettings(
            schema="ddl",
            sample_rows=self.teacher_sample_rows,
            distinct=True,
            notes=notes,
            samples=k,
            temperature=self.sample_temperature if k > 1 else 0.0,
            max_tokens=self.max_tokens,
            seed=self.seed,
            settle_votes=min_votes if self.settle and k > 1 else 0,
        )


FROM_QUERY = "from-query:"  # the source of a question the teacher wrote for a built query
QUESTION_TOKENS = 64


class VerifiedDistiller:
    """One verified distill run over a run directory."""

    def __init__(self, config: VerifiedConfig, progress: Progress | None = None):
        if config.recipe not in RECIPES:
            raise LlamarchError(f"unknown recipe {config.recipe!r} with a checker: choose one of {', '.join(RECIPES)}")
        if config.teacher_context and not Path(config.teacher_context).is_file():
            raise LlamarchError(f"teacher context file not found: {config.teacher_context}")
        self.cfg = config
        self.ui = progress or Progress()
        self.checker = SQLChecker(config.db)
        self.out = paths.ensure_dir(Path(config.out))
        self.timings: dict[str, Any] = {}
        self.student_id = identify(config.student, config.student_backend)
        self.teacher_id = identify(config.teacher, config.teacher_backend)
        self._student = _Lazy(lambda: self._open(config.student, config.student_backend))
        self._teacher = _Lazy(lambda: self._open(config.teacher, config.teacher_backend))

    @contextlib.contextmanager
    def _phase(self, label: str, total: int) -> Iterator[Callable[[int], None]]:
        """The front end's phase, its wall time recorded in timings.json under its label."""
        t = time.perf_counter()
        with self.ui.phase(label, total) as advance:
            yield advance
        self.timings.setdefault(label, {})["wall_s"] = round(time.perf_counter() - t, 3)

    def _open(self, spec: str, backend: str | None, adapter: Path | None = None) -> Any:
        from ...llm import LLM

        engine = {**side_engine(spec, backend, self.cfg.engine), **({"lora_path": adapter} if adapter else {})}
        engine.setdefault("n_ctx", 8192)
        return LLM(spec, backend=backend, **engine)

    # --- the run --------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        with Store(self.out / STORE_FILE) as store:
            self.store = store
            try:
                test = self.load_held_out()  # none of these may be trained on, scored or not
                held = spread(test, self.cfg.eval_limit)  # the ones scored
                train, overlap = self.load_training(test)
                student = self.answer(
                    train, self._student, self.student_id, self.cfg.student_settings(), "student answers"
                )
                self._student.close()
                teacher = self.teacher_answers(train, student)
                train, teacher, student, dropped = drop_result_overlap(
                    train, teacher, student, self.held_signatures(test)
                )
                overlap["same_result"] = dropped
                rows, counts = training_rows(
                    self.cfg.recipe, train, student, teacher, schema_text(self.checker, self.cfg.student_settings())
                )
                n_train, n_valid = self.write_training_set(rows)
                adapter = self.adapter(rows)
                evaluation = self.evaluate(held, adapter)
            finally:
                self._student.close()
                self._teacher.close()
                self.checker.close()
        report = {
            "check": "sql",
            "database": str(self.cfg.db),
            "student": self.cfg.student,
            "teacher": self.cfg.teacher,
            "recipe": self.cfg.recipe,
            "judged_by": "execution",
            "settings": {
                "samples": self.cfg.samples,
                "sample_temperature": self.cfg.sample_temperature,
                "min_votes": self.cfg.min_votes,
                "settle": self.cfg.settle,
                **({"confirm_questions": True} if self.cfg.confirm_questions else {}),
                "from_queries": self.cfg.from_queries,
                **({"query_seed": self.cfg.query_seed} if self.cfg.query_seed is not None else {}),
                "student_schema": self.cfg.student_schema,
                "student_values": self.cfg.student_values,
                "teacher_sample_rows": self.cfg.teacher_sample_rows,
                "max_tokens": self.cfg.max_tokens,
                "seed": self.cfg.seed,
            },
            "questions": {"train": len(train), "held_out": len(held), "overlap_dropped": overlap},
            "training_set": {**counts, "train_rows": n_train, "valid_rows": n_valid},
            "adapter": os.path.relpath(adapter, self.out) if adapter else None,
            "evaluation": evaluation,
        }
        return save_report(self.out, report, self.timings, t0, self.ui)

    # --- questions ----------------------------------------------------------------------

    def load_held_out(self) -> list[Any]:
        from ...sql.questions import load_questions

        if not self.cfg.eval_questions:
            return []
        return list(load_questions(self.cfg.eval_questions, self.checker.conn, require_sql=True))

    def load_training(self, held: Sequence[Any]) -> tuple[list[Any], dict[str, int]]:
        from ...sql.match import normalize_question
        from ...sql.questions import Question, load_questions

        questions = list(load_questions(self.cfg.prompts, self.checker.conn)) if self.cfg.prompts else []
        if self.cfg.synthesize:
            questions += [Question(q, None, f"synthesized:{n}") for n, q in enumerate(self.synthesized(), 1)]
        if self.cfg.from_queries:
            questions += self.query_questions(held)
        held_text = {normalize_question(q.question) for q in held}
        seen: set[str] = set()
        kept, same_text = [], 0
        for q in questions:
            norm = normalize_question(q.question)
            if norm in held_text:
                same_text += 1
            elif norm not in seen:
                seen.add(norm)
                kept.append(q)
        if not kept:
            raise LlamarchError("no training questions: give --prompts FILE.jsonl, --synthesize N or --from-queries N")
        return kept, {"same_text": same_text}

    def synthesized(self) -> list[str]:
        from ...sql.schema import read_tables
        from .synthesize import SAMPLING, sql_requests, synthesize_sql_questions

        context = schema_text(self.checker, self.cfg.teacher_settings(samples=1))
        requests = sql_requests(context, read_tables(self.checker.conn), self.cfg.synthesize)

        def key(request: str) -> str:
            return result_key("synthesize-sql", self.teacher_id, request, SAMPLING)

        with self._phase("teacher writes questions", len(requests)) as advance:
            texts = synthesize_sql_questions(
                lambda: self._teacher.get(),
                requests,
                self.cfg.synthesize,
                lookup=lambda q: self.store.get_result("synthesize", key(q)),
                save=lambda q, text: self.store.put_result("synthesize", key(q), text),
                advance=advance,
            )
        if len(texts) < self.cfg.synthesize:
            self.ui.warn(f"the teacher wrote {len(texts)} distinct questions of the {self.cfg.synthesize} asked for")
        write_jsonl(self.out / "questions.jsonl", ({"question": t} for t in texts))
        return texts

    def query_questions(self, held: Sequence[Any]) -> list[Any]:
        """Queries built from the database (`sql.sampled_queries`), none giving a held-out
        result, each with the question the teacher says it answers (greedy, in one batch,
        with the teacher's context). A reply that is not a plain question drops its query."""
        from ...sql.prompt import parse_question, question_messages, question_mismatch
        from ...sql.questions import Question

        queries = self.built_queries(held)
        if len(queries) < self.cfg.from_queries:
            self.ui.warn(
                f"built {len(queries)} of the {self.cfg.from_queries} queries asked for from {self.cfg.db} "
                "(too few rows, or results that repeat or are held out)"
            )
        settings = replace(self.cfg.teacher_settings(samples=1), max_tokens=QUESTION_TOKENS)
        schema = schema_text(self.checker, settings)
        messages = [question_messages(q.sql, schema) for q in queries]
        with self._phase("teacher writes the questions of queries", len(messages)) as advance:
            replies, _ = generate_replies(
                _Deferred(self._teacher),
                messages,
                settings,
                store=self.store,
                model_key=self.teacher_id,
                parallel=self.cfg.parallel,
                advance=advance,
            )
        texts = [parse_question(got["replies"][0]) for got in replies]
        # a count asked of a query that lists rows, or the reverse, is asked again once, with what is wrong
        wrong = [
            (i, messages[i] + [{"role": "assistant", "content": text}, {"role": "user", "content": why}])
            for i, text in enumerate(texts)
            if text and (why := question_mismatch(text, queries[i].sql))
        ]
        if wrong:
            with self._phase("teacher asks again where a count and a list were mixed up", len(wrong)) as advance:
                again, _ = generate_replies(
                    _Deferred(self._teacher),
                    [m for _, m in wrong],
                    settings,
                    store=self.store,
                    model_key=self.teacher_id,
                    parallel=self.cfg.parallel,
                    advance=advance,
                )
            for (i, _), got in zip(wrong, again):
                text = parse_question(got["replies"][0])
                texts[i] = text if text and not question_mismatch(text, queries[i].sql) else None
        found = [
            Question(text, query.sql, f"{FROM_QUERY}{n}")
            for n, (query, text) in enumerate(zip(queries, texts), 1)
            if text
        ]
        write_jsonl(self.out / "query-questions.jsonl", ({"question": q.question, "sql": q.sql} for q in found))
        return found

    def built_queries(self, held: Sequence[Any]) -> list[Any]:
        """`sql.sampled_queries` over the database, stored: on a big database the build takes
        minutes, and a resumed run reuses it while the file, the settings and the builder's
        version are the same."""
        from ...sql.sampled_queries import BUILDER_VERSION, SampledQuery, sample_queries
        from ...sql.schema import read_tables

        conn = self.checker.conn
        seed = self.cfg.seed if self.cfg.query_seed is None else self.cfg.query_seed
        exclude = self.held_signatures(held)
        stat = Path(self.cfg.db).stat()
        made = (stat.st_size, stat.st_mtime_ns)
        key = result_key("built-queries", BUILDER_VERSION, self.cfg.from_queries, seed, sorted(exclude), *made)
        stored = self.store.get_result("built-queries", key)
        if stored is not None:
            return [SampledQuery(**q) for q in stored]
        with self._phase("building queries from the data", self.cfg.from_queries) as advance:
            queries = sample_queries(conn, read_tables(conn), self.cfg.from_queries, seed, exclude, on_kept=advance)
        self.store.put_result("built-queries", key, [vars(q) for q in queries])
        return queries

    def held_signatures(self, held: Sequence[Any]) -> set[str]:
        from ...sql.match import result_signature

        return {result_signature(self.checker.reference_result(q.sql)) for q in held}

    # --- answers ------------------------------------------------------------------------

    def answer(
        self, questions: Sequence[Any], model: _Lazy, identity: ModelIdentity, settings: SQLSettings, label: str
    ) -> list[list[Check]]:
        """Each question's replies, checked (against its reference when it has one)."""
        from ...sql.prompt import sql_messages

        schema = schema_text(self.checker, settings)
        messages = [sql_messages(q.question, schema) for q in questions]
        with self._phase(label, len(questions)) as advance:
            replies, seconds = generate_replies(
                _Deferred(model),
                messages,
                settings,
                store=self.store,
                model_key=identity,
                parallel=self.cfg.parallel,
                advance=advance,
                check=lambda i, reply: self.checker(Task(questions[i].question), reply),
                exempt={i for i, q in enumerate(questions) if q.sql is not None},
            )
        self.timings[label]["generation_s"] = round(seconds, 3)
        return [
            [self.checker(Task(q.question, q.sql, q.source), r) for r in got["replies"]]
            for q, got in zip(questions, replies)
        ]

    def teacher_answers(
        self, questions: Sequence[Any], student: Sequence[list[Check]] | None = None
    ) -> list[tuple[Vote, list[Check]]]:
        """The teacher's K checked samples per question and the vote on them; a question
        where no sample ran gets one repair of its best sample, given the checker's reason.
        A built query is its question's answer (with `confirm_questions`, once confirmed)."""
        built = {i for i, q in enumerate(questions) if q.source.startswith(FROM_QUERY)}
        if built:
            asked = iter(self.teacher_answers([q for i, q in enumerate(questions) if i not in built]))
            unconfirmed = self.unconfirmed_questions(questions, built, student) if self.cfg.confirm_questions else {}
            return [
                (unconfirmed[i] if i in unconfirmed else self._query_answer(q)) if i in built else next(asked)
                for i, q in enumerate(questions)
            ]
        settings = self.cfg.teacher_settings(min_votes=self.cfg.min_votes)
        sampled = self.answer(
            questions, self._teacher, self.teacher_id, settings, f"teacher samples (K={settings.samples})"
        )
        results = []
        broken = [i for i, checks in enumerate(sampled) if not any(c.executed for c in checks)]
        repaired = self.repair(questions, sampled, broken, settings) if broken else {}
        for i, (q, checks) in enumerate(zip(questions, sampled)):
            if i in repaired:
                checks = [*checks, repaired[i]]
            outcome = vote(checks, has_reference=q.sql is not None, min_votes=self.cfg.min_votes)
            if (
                not outcome.verified
                and i in repaired
                and repaired[i].executed
                and not repaired[i].empty
                and q.sql is None
            ):
                outcome = Vote((len(checks) - 1,), "repair", 1, 1, len(checks))
            results.append((outcome, checks))
        return results

    def unconfirmed_questions(
        self, questions: Sequence[Any], built: set[int], student: Sequence[list[Check]] | None
    ) -> dict[int, tuple[Vote, list[Check]]]:
        """The built questions of one table that neither the student's answer nor the teacher's
        own greedy answer (with its context) gets right: their question may not say what their
        query does. Only those: the teacher answers one table's questions well, so its miss says
        the question is wrong; a join's miss says as often that the join is hard, which is what
        the built joins are there to teach."""
        from ...sql.sampled_queries import reads_one_table

        ask = sorted(
            i
            for i in built
            if reads_one_table(questions[i].sql) and not (student and student[i] and student[i][0].passed)
        )
        if not ask:
            return {}
        settings = self.cfg.teacher_settings(samples=1)
        label = "teacher confirms questions"
        answered = self.answer([questions[i] for i in ask], self._teacher, self.teacher_id, settings, label)
        why = "the teacher's own answer to the question gives another result"
        return {
            i: (Vote((), "none", 0, int(checks[0].executed), 1, f"{why} ({checks[0].reason})"), checks)
            for i, checks in zip(ask, answered)
            if not checks[0].passed
        }

    def _query_answer(self, q: Any) -> tuple[Vote, list[Check]]:
        from ...sql.prompt import as_answer

        check = self.checker(Task(q.question, q.sql, q.source), as_answer(q.sql))
        if check.passed:
            return Vote((0,), "query", 1, 1, 1), [check]
        return Vote((), "none", 0, int(check.executed), 1, check.reason), [check]

    def repair(
        self, questions: Sequence[Any], sampled: Sequence[list[Check]], broken: list[int], settings: SQLSettings
    ) -> dict[int, Check]:
        from ...sql.prompt import repair_messages, sql_messages

        schema = schema_text(self.checker, settings)
        messages = []
        for i in broken:
            best = next((c for c in sampled[i] if c.answer), sampled[i][0])
            reply = f"```sql\n{best.answer}\n```" if best.answer else "(no query)"
            messages.append(repair_messages(sql_messages(questions[i].question, schema), reply, best.reason))
        greedy = replace(settings, samples=1, temperature=0.0)
        with self._phase("teacher repairs", len(broken)) as advance:
            replies, _ = generate_replies(
                _Deferred(self._teacher),
                messages,
                greedy,
                store=self.store,
                model_key=self.teacher_id,
                parallel=self.cfg.parallel,
                advance=advance,
            )
        return {
            i: self.checker(Task(questions[i].question, questions[i].sql), got["replies"][0])
            for i, got in zip(broken, replies)
        }

    # --- training -----------------------------------------------------------------------

    def write_training_set(self, rows: list[dict[str, Any]]) -> tuple[int, int]:
        return write_training_files(self.out, rows)

    def adapter(self, rows: list[dict[str, Any]]) -> Path | None:
        def free_memory() -> None:
            self._teacher.close()
            self._student.close()

        return run_adapter(
            self.store,
            self.out,
            self.cfg.adapter,
            self.cfg.train,
            rows,
            self.cfg.student,
            self.student_id,
            self.cfg.train_settings,
            self.ui,
            free_memory,
            self.timings,
            "no verified training rows: training skipped",
        )

    # --- held-out evaluation --------------------------------------------------------------

    def evaluate(self, held: Sequence[Any], adapter: Path | None) -> dict[str, Any] | None:
        """Execution accuracy on the held-out questions of each model, and the student's change."""
        if not held:
            return None
        cfg = self.cfg
        runs: dict[str, Any] = {}

        def run(name: str, model: _Lazy, identity: ModelIdentity, settings: SQLSettings) -> None:
            with self._phase(f"held-out: {name}", len(held)) as advance:
                runs[name] = evaluate(
                    _Deferred(model),
                    self.checker,
                    held,
                    settings,
                    store=self.store,
                    model_key=identity,
                    parallel=cfg.parallel,
                    advance=advance,
                )

        run("student", self._student, self.student_id, cfg.student_settings())
        self._student.close()
        if adapter is not None:
            tuned = _Lazy(lambda: self._open(cfg.student, cfg.student_backend, adapter))
            try:
                run(
                    "student + adapter",
                    tuned,
                    identify(cfg.student, cfg.student_backend, adapter),
                    cfg.student_settings(),
                )
            finally:
                tuned.close()
        if cfg.evaluate_teacher:
            run("teacher greedy", self._teacher, self.teacher_id, cfg.teacher_settings(samples=1))
            run(f"teacher amplified (K={cfg.samples})", self._teacher, self.teacher_id, cfg.teacher_settings())
        result: dict[str, Any] = {
            "questions": len(held),
            "models": {k: v["summary"] for k, v in runs.items()},
            "results": {k: v["results"] for k, v in runs.items()},
        }
        if "student + adapter" in runs:
            before = [r["matched"] for r in runs["student"]["results"]]
            after = [r["matched"] for r in runs["student + adapter"]["results"]]
            result["student_change"] = compare_paired(before, after)
        return result


class _Deferred:
    """An LLM-like object that opens the lazy model on the first generation (a stored run opens none)."""

    def __init__(self, lazy: _Lazy):
        self._lazy = lazy

    def stream_batch(self, *args: Any, **kwargs: Any) -> Any:
        return self._lazy.get().stream_batch(*args, **kwargs)


# --- pure helpers --------------------------------------------------------------------------


def save_report(out: Path, report: dict[str, Any], timings: dict[str, Any], t0: float, ui: Progress) -> dict[str, Any]:
    """DIR/report.json, the plot (when matplotlib is there and the run was evaluated), DIR/timings.json."""
    write_json(out / REPORT_FILE, report)
    if report.get("evaluation"):
        try:
            plot_report(report, out / PLOT_FILE)
        except ImportError:
            ui.warn("matplotlib is not installed: no plot (pip install matplotlib)")
    timings["total"] = {"wall_s": round(time.perf_counter() - t0, 3)}
    write_json(out / TIMINGS_FILE, timings)
    return report


def spread(items: Sequence[Any], limit: int | None) -> list[Any]:
    """`limit` items spread evenly over the list (a file grouped by kind keeps its mix), in order."""
    n = len(items)
    if not limit or limit >= n:
        return list(items)
    return [items[i * n // limit] for i in range(limit)]


def drop_result_overlap(
    questions: Sequence[Any],
    teacher: Sequence[tuple[Vote, list[Check]]],
    student: Sequence[list[Check]],
    held_signatures: set[str],
) -> tuple[list, list, list, int]:
    """Leave out training questions whose verified result is a held-out reference's result."""
    keep = [
        i
        for i, (outcome, checks) in enumerate(teacher)
        if not (outcome.verified and checks[outcome.accepted[0]].signature in held_signatures)
    ]
    dropped = len(questions) - len(keep)
    return [questions[i] for i in keep], [teacher[i] for i in keep], [student[i] for i in keep], dropped


def training_rows(
    recipe: str,
    questions: Sequence[Any],
    student: Sequence[list[Check]],
    teacher: Sequence[tuple[Vote, list[Check]]],
    student_schema: str,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One chat row per question with a verified answer, in the student's own prompt (no teacher context).

    `corrected`: the student's own query where its result is the verified one, else the
    teacher's; `verified`: the teacher's accepted query for every verified question.
    """
    from ...sql.prompt import as_answer, sql_messages

    rows: list[dict[str, Any]] = []
    counts = {"rows": 0, "student_answers": 0, "teacher_answers": 0, "unverified": 0, "repaired": 0, "from_queries": 0}
    for q, own, (outcome, checks) in zip(questions, student, teacher):
        if not outcome.verified:
            counts["unverified"] += 1
            continue
        counts["repaired"] += outcome.how == "repair"
        counts["from_queries"] += outcome.how == "query"
        target = checks[outcome.accepted[0]].signature
        mine = own[0]
        agrees = mine.passed if q.sql is not None else (mine.executed and mine.signature == target)
        prompt = sql_messages(q.question, student_schema)
        if recipe == "corrected" and agrees:
            rows.append(chat_row(prompt, as_answer(mine.answer)))
            counts["student_answers"] += 1
        else:
            chosen = pick([c.answer for c in checks], outcome.accepted)
            rows.append(chat_row(prompt, as_answer(checks[chosen].answer)))
            counts["teacher_answers"] += 1
    counts["rows"] = len(rows)
    return rows, counts


def format_report(report: dict[str, Any]) -> str:
    """The execution-accuracy table printed at the end of a run."""
    t = report["training_set"]
    lines = [
        f"training set ({report['recipe']}): {t['rows']} verified rows ({t['student_answers']} the student's own, "
        f"{t['teacher_answers']} the teacher's; {t['unverified']} questions unverified, left out)"
    ]
    ev = report.get("evaluation")
    if not ev:
        lines.append("held-out evaluation: no --eval-questions given")
        return "\n".join(lines)
    what = (
        "pass@1 on {} tasks (judged by running their tests)"
        if report.get("check") == "python"
        else "execution accuracy on {} questions (judged by running the queries)"
    )
    lines.append(f"held-out {what.format(ev['questions'])}:")
    width = max(len(k) for k in ev["models"])
    for name in sorted(ev["models"], key=_model_order):
        s = ev["models"][name]
        tps = f"{s['tok_per_s']:.1f} tok/s" if s.get("tok_per_s") else ""
        lines.append(
            f"  {name.ljust(width)}  {s['accuracy']:6.2f}%  ({s['matched']}/{s['questions']}; "
            f"{s['did_not_execute']} did not run)  {tps}"
        )
    change = ev.get("student_change")
    if change:
        lo, hi = change["delta_95ci_points"]
        lines.append(
            f"  adapter vs student: {change['delta_points']:+.2f} points ({change['fixed']} fixed, "
            f"{change['broken']} broken; McNemar p {change['mcnemar_exact_p']}, 95% CI [{lo}, {hi}])"
        )
    return "\n".join(lines)


def _model_order(name: str) -> tuple[bool, bool, bool]:
    """student, student + adapter, teacher greedy, teacher amplified (a report read back from JSON sorts them)."""
    return name.startswith("teacher"), "amplified" in name, "adapter" in name


def plot_report(report: dict[str, Any], path: Path) -> Path:
    """A bar chart of the held-out execution accuracies (matplotlib, imported here)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = report["evaluation"]["models"]
    names = sorted(models, key=_model_order)
    values = [models[n]["accuracy"] for n in names]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    bars = ax.barh(names[::-1], values[::-1], color=["#4c72b0", "#55a868", "#c44e52", "#8172b2"][: len(names)][::-1])
    for bar, v in zip(bars, values[::-1]):
        ax.text(bar.get_width() + 1, bar.get_y() + bar.get_height() / 2, f"{v:.1f}%", va="center")
    ax.set_xlim(0, 105)
    held = report["evaluation"]["questions"]
    ax.set_xlabel(
        f"pass@1, {held} held-out tasks (tests run)"
        if report.get("check") == "python"
        else f"execution accuracy, {held} held-out questions"
    )
    ax.set_title(
        f"{Path(report.get('database') or report.get('tasks_file', '')).name}: {report['student']}\n"
        f"taught by {report['teacher']} "
        f"({report['recipe']}, judged by execution)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
