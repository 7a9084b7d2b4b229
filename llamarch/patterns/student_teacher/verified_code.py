"""Verified distillation for Python: answers are kept only when the task's tests pass.

The training tasks are functions to write, each with tests, in HumanEval's format. The
student answers each greedily through the HumanEval harness (same prompt, same reply
opening); the teacher samples K answers to the tasks the student fails (to every task with
the `verified` recipe), and the sandbox runs each with the task's tests. A task's row is
the student's own passing answer (`corrected`), else the teacher's most common, then
shortest, passing one; a task no answer passes is left out. The student is LoRA-trained on
the rows, and held-out tasks (HumanEval by default) give pass@1 before and after, by
running the tests only.

Everything is stored in `DIR/distill.db` as it is computed; a rerun resumes. HumanEval's
held-out results go to the user store, shared with `llamarch eval humaneval`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ... import paths
from ...errors import LlamarchError
from ...evals.stats import compare_paired
from ...evals.vote import pick
from ...identity import ModelIdentity, identify
from ...store import Store
from .distill import (
    STORE_FILE,
    Progress,
    _Lazy,
    run_adapter,
    side_engine,
    write_training_files,
)
from .training import chat_row
from .verified import RECIPES, save_report, spread

HUMANEVAL = "humaneval"


@dataclass
class CodeConfig:
    """A verified distill run on Python tasks with tests (see `llamarch distill --check python`)."""

    out: Path
    tasks: Path  # training tasks: {"prompt", "entry_point", "test" | "tests"} per line
    student: str = "qwen2.5-coder-0.5b"
    teacher: str = "qwen2.5-coder-1.5b"
    eval_tasks: Path | str | None = HUMANEVAL  # held-out tasks in the same format, or HumanEval; None: no evaluation
    eval_limit: int | None = None
    limit: int | None = None  # the first N training tasks
    samples: int = 8
    sample_temperature: float = 0.7
    recipe: str = "corrected"
    max_tokens: int = 768
    seed: int = 0
    parallel: int | None = None
    train: bool = True
    adapter: Path | None = None
    evaluate_teacher: bool = True
    student_backend: str | None = None
    teacher_backend: str | None = None
    engine: dict[str, Any] = field(default_factory=dict)
    train_settings: dict[str, Any] = field(default_factory=dict)


def load_tasks(path: Path | str, limit: int | None = None) -> list[Any]:
    """HumanEval-format tasks from a JSONL file: `prompt` (the signature and docstring),
    `entry_point`, and `test` (defining `check(candidate)`) or `tests` (plain asserts)."""
    from ...evals.humaneval import Problem

    path = Path(path)
    if not path.is_file():
        raise LlamarchError(f"tasks file not found: {path}")
    tasks = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise LlamarchError(f"{path}:{n}: not a JSON object ({e.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("prompt"), str) or not row["prompt"].strip():
            raise LlamarchError(f'{path}:{n}: expected {{"prompt", "entry_point", "test" or "tests"}}')
        entry = row.get("entry_point")
        if not isinstance(entry, str) or not entry.isidentifier():
            raise LlamarchError(f"{path}:{n}: entry_point must be the name of the function to write")
        test = row.get("test")
        if not isinstance(test, str) or "def check" not in test:
            asserts = row.get("tests")
            if not isinstance(asserts, str) or not asserts.strip():
                raise LlamarchError(
                    f'{path}:{n}: no tests: give "test" (def check(candidate): ...) or "tests" (asserts)'
                )
            test = f"{asserts.strip()}\n\n\ndef check(candidate):\n    pass\n"
        tasks.append(Problem(str(row.get("task_id") or f"{path.stem}/{n}"), row["prompt"], entry, test))
        if limit is not None and len(tasks) >= limit:
            break
    if not tasks:
        raise LlamarchError(f"{path}: no tasks")
    return tasks


class CodeDistiller:
    """One verified distill run on Python tasks over a run directory."""

    def __init__(self, config: CodeConfig, progress: Progress | None = None):
        if config.recipe not in RECIPES:
            raise LlamarchError(f"unknown recipe {config.recipe!r} with a checker: choose one of {', '.join(RECIPES)}")
        self.cfg = config
        self.ui = progress or Progress()
        self.out = paths.ensure_dir(Path(config.out))
        self.timings: dict[str, Any] = {}
        self.runs: dict[str, Any] = {}

    def _open(self, spec: str, backend: str | None, adapter: Path | None = None) -> Any:
        from ...llm import LLM

        engine = {**side_engine(spec, backend, self.cfg.engine), **({"lora_path": str(adapter)} if adapter else {})}
        return LLM(spec, backend=backend, **engine)

    def run(self) -> dict[str, Any]:
        cfg = self.cfg
        t0 = time.perf_counter()
        tasks = load_tasks(cfg.tasks, cfg.limit)
        every = self.held_out()  # none of these may be trained on, scored or not
        held = spread(every, cfg.eval_limit)  # the ones scored
        tasks, overlap = drop_overlap(tasks, every)
        with Store(self.out / STORE_FILE) as store:
            self.store = store
            model = _Lazy(lambda: self._open(cfg.student, cfg.student_backend))
            try:
                student = self.answer(
                    model,
                    self.identity(cfg.student, cfg.student_backend),
                    tasks,
                    self.greedy(),
                    store,
                    "student answers",
                )
            finally:
                model.close()
            asked = [i for i, r in enumerate(student) if cfg.recipe == "verified" or not r.passed]
            samples = self.teacher_samples([tasks[i] for i in asked])
            teacher: list[list[Any]] = [[] for _ in tasks]
            for i, tries in zip(asked, samples):
                teacher[i] = tries
            rows, counts = training_rows(cfg.recipe, tasks, student, teacher)
            counts["student_passes"] = sum(r.passed for r in student)
            n_train, n_valid = write_training_files(self.out, rows)
            adapter = run_adapter(
                store,
                self.out,
                cfg.adapter,
                cfg.train,
                rows,
                cfg.student,
                self.identity(cfg.student, cfg.student_backend),
                cfg.train_settings,
                self.ui,
                lambda: None,
                self.timings,
                "no task has a passing answer: training skipped",
            )
            evaluation = self.evaluate(held, adapter)
        report = {
            "check": "python",
            "tasks_file": str(cfg.tasks),
            "student": cfg.student,
            "teacher": cfg.teacher,
            "recipe": cfg.recipe,
            "judged_by": "execution",
            "settings": {
                "samples": cfg.samples,
                "sample_temperature": cfg.sample_temperature,
                "max_tokens": cfg.max_tokens,
                "seed": cfg.seed,
            },
            "questions": {"train": len(tasks), "held_out": len(held), "overlap_dropped": overlap},
            "training_set": {**counts, "train_rows": n_train, "valid_rows": n_valid},
            "adapter": os.path.relpath(adapter, self.out) if adapter else None,
            "evaluation": evaluation,
        }
        return save_report(self.out, report, self.timings, t0, self.ui)

    # --- tasks and settings ------------------------------------------------------------

    def held_out(self) -> list[Any]:
        from ...evals.humaneval import load_problems

        cfg = self.cfg
        if cfg.eval_tasks is None:
            return []
        return list(load_problems() if cfg.eval_tasks == HUMANEVAL else load_tasks(cfg.eval_tasks))

    def greedy(self) -> Any:
        from ...evals.humaneval import EvalSettings

        return EvalSettings(max_tokens=self.cfg.max_tokens, seed=self.cfg.seed)

    def identity(self, spec: str, backend: str | None, adapter: Path | None = None) -> ModelIdentity:
        return identify(spec, backend, adapter)

    # --- answers ------------------------------------------------------------------------

    def answer(
        self, llm: Any, identity: Any, problems: Sequence[Any], settings: Any, store: Store, label: str
    ) -> list[Any]:
        """Each problem's answer, its tests run, through the HumanEval harness (stored as it finishes)."""
        from ...evals.humaneval import evaluate

        t = time.perf_counter()
        with self.ui.phase(label, len(problems)) as advance:
            run = evaluate(
                llm.get(),
                problems,
                identity=identity,
                settings=settings,
                store=store,
                parallel=self.cfg.parallel,
                on_result=lambda _r: advance(1),
            )
        self.timings[label] = {"wall_s": round(time.perf_counter() - t, 3), "generation_s": round(run.gen_wall_s, 3)}
        self.runs[label] = run
        return run.results

    def teacher_samples(self, problems: Sequence[Any]) -> list[list[Any]]:
        """The teacher's K answers per problem: greedy when K is 1, else K samples, seeds seed..seed+K-1."""
        cfg = self.cfg
        if not problems:
            return []
        teacher = _Lazy(lambda: self._open(cfg.teacher, cfg.teacher_backend))
        identity = self.identity(cfg.teacher, cfg.teacher_backend)
        tries: list[list[Any]] = [[] for _ in problems]
        try:
            for k in range(cfg.samples):
                settings = (
                    self.greedy()
                    if cfg.samples == 1
                    else replace(self.greedy(), temperature=cfg.sample_temperature, seed=cfg.seed + k)
                )
                label = "teacher answers" if cfg.samples == 1 else f"teacher sample {k + 1} of {cfg.samples}"
                for t, r in zip(tries, self.answer(teacher, identity, problems, settings, self.store, label)):
                    t.append(r)
        finally:
            teacher.close()
        return tries

    # --- held-out evaluation --------------------------------------------------------------

    def evaluate(self, held: Sequence[Any], adapter: Path | None) -> dict[str, Any] | None:
        """pass@1 on the held-out tasks of the student, the student with the adapter and the teacher."""
        cfg = self.cfg
        if not held:
            return None
        results: dict[str, list[Any]] = {}
        models: dict[str, dict[str, Any]] = {}
        shared = Store() if cfg.eval_tasks == HUMANEVAL else None  # shared with `llamarch eval humaneval`
        store = shared or self.store
        try:
            plan = [("student", cfg.student, cfg.student_backend, None)]
            if adapter is not None:
                plan.append(("student + adapter", cfg.student, cfg.student_backend, adapter))
            if cfg.evaluate_teacher:
                plan.append(("teacher greedy", cfg.teacher, cfg.teacher_backend, None))
            for name, spec, backend, lora in plan:
                label = f"held-out: {name}"
                model = _Lazy(lambda spec=spec, backend=backend, lora=lora: self._open(spec, backend, lora))
                try:
                    got = self.answer(model, self.identity(spec, backend, lora), held, self.greedy(), store, label)
                finally:
                    model.close()
                results[name] = [{"task_id": r.task_id, "matched": r.passed, "status": r.status} for r in got]
                models[name] = _summary(got, self.runs[label])
        finally:
            if shared is not None:
                shared.close()
        evaluation: dict[str, Any] = {"questions": len(held), "models": models, "results": results}
        if "student + adapter" in results:
            evaluation["student_change"] = compare_paired(
                [r["matched"] for r in results["student"]], [r["matched"] for r in results["student + adapter"]]
            )
        return evaluation


# --- pure helpers --------------------------------------------------------------------------


def drop_overlap(tasks: Sequence[Any], held: Sequence[Any]) -> tuple[list[Any], dict[str, int]]:
    """Leave out training tasks that are a held-out task: the same function name or the same prompt."""
    names = {p.entry_point for p in held}
    prompts = {" ".join(p.prompt.split()) for p in held}
    kept = [t for t in tasks if t.entry_point not in names and " ".join(t.prompt.split()) not in prompts]
    return kept, {"same_task": len(tasks) - len(kept)}


def training_rows(
    recipe: str, tasks: Sequence[Any], student: Sequence[Any], teacher: Sequence[Sequence[Any]]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One chat row per task with a passing answer, worded as the harness asks (`corrected`:
    the student's own passing answer first; `verified`: the teacher's)."""
    from ...evals.humaneval import build_prompt

    rows: list[dict[str, Any]] = []
    counts = {"rows": 0, "student_answers": 0, "teacher_answers": 0, "unverified": 0}
    for task, own, tries in zip(tasks, student, teacher):
        prompt = [{"role": "user", "content": build_prompt(task)}]
        passing = [i for i, r in enumerate(tries) if r.passed]
        if recipe == "corrected" and own.passed:
            rows.append(chat_row(prompt, own.completion))
            counts["student_answers"] += 1
        elif passing:
            chosen = tries[pick([r.solution for r in tries], passing)]
            rows.append(chat_row(prompt, chosen.completion))
            counts["teacher_answers"] += 1
        else:
            counts["unverified"] += 1
    counts["rows"] = len(rows)
    return rows, counts


def _summary(results: Sequence[Any], run: Any) -> dict[str, Any]:
    """The execution summary of a held-out run, in the SQL report's fields (matched = tests pass)."""
    n = len(results)
    passed = sum(r.passed for r in results)
    fresh = [r for r in results if not r.resumed]
    tokens = sum(r.completion_tokens for r in fresh)
    return {
        "questions": n,
        "matched": passed,
        "accuracy": round(100 * passed / n, 2) if n else None,
        "did_not_execute": sum(r.status == "no_code" for r in results),
        "tok_per_s": round(tokens / run.gen_wall_s, 2) if fresh and run.gen_wall_s > 0 else None,
    }
