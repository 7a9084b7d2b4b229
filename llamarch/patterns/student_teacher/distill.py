"""`llamarch distill`: the student answers, the teacher judges, the student learns, and a
held-out set shows whether it got better.

Every answer and verdict is written to `DIR/distill.db` the moment it exists, keyed by what
it depends on (prompt, model, settings). A run killed at any point and started again
recomputes nothing that finished, and its files come out byte-identical to an uninterrupted
run's: they are written in prompt order from stored results only. Timings, which differ
from run to run, go to `DIR/timings.json`, apart from the report.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ... import paths
from ...catalog import sha256_file
from ...errors import LlamarchError
from ...identity import ModelIdentity, identify, infer_backend
from ...jsonl import BadLine, write_jsonl
from ...store import Key, Store, result_key
from .prompts import PromptItem, read_prompts, split_held_out
from .roles import MAX_LENGTH, Student, Teacher
from .rubric import Rubric
from .synthesize import synthesize_prompts
from .training import TRAIN_FILE, VALID_FILE, chat_row, split_valid
from .verdict import SCORE_SCHEMA, VERDICT_SCHEMA, Verdict

DEFAULT_STUDENT = "qwen2.5-coder-0.5b"
DEFAULT_TEACHER = "qwen2.5-coder-1.5b"
DEMO_PROMPTS = Path(__file__).parent / "data" / "demo_prompts.jsonl"
STORE_FILE, REPORT_FILE, TIMINGS_FILE, PROMPTS_FILE = "distill.db", "report.json", "timings.json", "prompts.jsonl"
ADAPTER_DIR = "adapter"


@dataclass
class DistillConfig:
    """Everything a distill run depends on; see `llamarch distill --help` for each field."""

    out: Path
    student: str = DEFAULT_STUDENT
    teacher: str = DEFAULT_TEACHER
    prompts: Path | None = None
    eval_prompts: Path | None = None
    eval_fraction: float = 0.2
    min_score: int = 8
    train: bool = True
    adapter: Path | None = None  # evaluate this adapter instead of training one
    synthesize: int = 0
    topic: str | None = None
    rubric: Path | None = None
    system: str | None = None
    max_tokens: int = 512
    judge_max_tokens: int = 768
    temperature: float = 0.0
    seed: int = 0
    parallel: int | None = None
    student_backend: str | None = None
    teacher_backend: str | None = None
    engine: dict[str, Any] = field(default_factory=dict)  # n_ctx, n_threads, n_gpu_layers
    train_settings: dict[str, Any] = field(default_factory=dict)

    def student_options(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "max_tokens": self.max_tokens, "seed": self.seed}

    def teacher_options(self) -> dict[str, Any]:
        return {"temperature": 0.0, "max_tokens": self.judge_max_tokens, "seed": self.seed}


class Progress:
    """What a front end hears about a run; this default hears nothing."""

    def phase(self, description: str, total: int) -> contextlib.AbstractContextManager[Callable[[int], None]]:
        return contextlib.nullcontext(lambda n=1: None)

    def training(self) -> contextlib.AbstractContextManager[Callable[[dict[str, Any]], None]]:
        """Where LoRA training's events (start, step, eval, save) go."""
        return contextlib.nullcontext(lambda event: None)

    def warn(self, message: str) -> None:
        pass


def side_engine(spec: str, backend: str | None, engine: dict[str, Any]) -> dict[str, Any]:
    """The engine options that apply to one side: a server's key only goes to a server."""
    if (backend or infer_backend(spec)) == "openai":
        return dict(engine)
    return {k: v for k, v in engine.items() if k != "api_key"}


def answer_key(identity: ModelIdentity, item: PromptItem, system: str | None, options: dict[str, Any]) -> str:
    return result_key("answer", identity, item.messages, system, options)


def verdict_key(
    identity: ModelIdentity, rubric: Rubric, question: str, answer: str, options: dict[str, Any], improve: bool = True
) -> str:
    """What a verdict depends on: the teacher, its rubric and settings, and what it saw."""
    return result_key(
        "verdict",
        identity,
        rubric.template,
        question[:MAX_LENGTH],
        answer[:MAX_LENGTH],
        options,
        VERDICT_SCHEMA if improve else SCORE_SCHEMA,
    )


class _Lazy:
    """A role whose model opens on first use, so a fully stored run loads no model."""

    def __init__(self, opener: Callable[[], Any]):
        self._opener, self._role = opener, None

    def get(self) -> Any:
        if self._role is None:
            self._role = self._opener()
        return self._role

    def close(self) -> None:
        """Free the model; a later `get` opens it again."""
        if self._role is not None:
            self._role.close()
            self._role = None


def fill_from_store(
    store: Store,
    kind: str,
    keys: Sequence[str],
    compute: Callable[[list[int]], Iterator[tuple[int, Any]]],
    advance: Callable[[int], None],
) -> list[Any]:
    """The stored result for each key; the missing ones are computed, each stored as it comes.

    `compute(indices)` yields (position in indices, value) in any order. Equal keys are
    computed once.
    """
    results = [store.get_result(kind, k) for k in keys]
    waiting: dict[str, list[int]] = {}
    for i, (key, value) in enumerate(zip(keys, results)):
        if value is None:
            waiting.setdefault(key, []).append(i)
    advance(len(keys) - sum(len(v) for v in waiting.values()))
    pending = [indices[0] for indices in waiting.values()]
    if pending:
        for j, value in compute(pending):
            key = keys[pending[j]]
            try:
                store.put_result(kind, key, value)
            except sqlite3.Error as e:  # a full disk, a store gone read-only
                raise LlamarchError(
                    f"could not save a result to {store.path} ({e}): fix that and rerun; what was saved before is kept"
                ) from None
            for i in waiting[key]:
                results[i] = value
            advance(len(waiting[key]))
    return results


class Distiller:
    """One distill run over a run directory (see the module docstring)."""

    def __init__(self, config: DistillConfig, progress: Progress | None = None):
        self.cfg = config
        self.ui = progress or Progress()
        self.out = paths.ensure_dir(Path(config.out))
        self.rubric = Rubric.load(config.rubric)
        self.bad_lines: list[str] = []
        self.timings: dict[str, dict[str, float]] = {}
        self.student_id = identify(config.student, config.student_backend)
        self.teacher_id = identify(config.teacher, config.teacher_backend)
        self._student = _Lazy(lambda: self._open_student())
        self._teacher = _Lazy(self._open_teacher)

    def _open_student(self, adapter: Path | None = None) -> Student:
        cfg = self.cfg
        engine = {
            **side_engine(cfg.student, cfg.student_backend, cfg.engine),
            **({"lora_path": adapter} if adapter else {}),
        }
        return Student(
            cfg.student, backend=cfg.student_backend, system=cfg.system, options=cfg.student_options(), **engine
        )

    def _open_teacher(self) -> Teacher:
        cfg = self.cfg
        options = cfg.teacher_options()
        if (cfg.teacher, cfg.teacher_backend) == (cfg.student, cfg.student_backend):
            return Teacher(self._student.get().llm, rubric=self.rubric, options=options)  # one model, two roles
        engine = side_engine(cfg.teacher, cfg.teacher_backend, cfg.engine)
        return Teacher(cfg.teacher, backend=cfg.teacher_backend, rubric=self.rubric, options=options, **engine)

    # --- the run --------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Do every step not yet done; returns the report (also written to DIR/report.json)."""
        t0 = time.perf_counter()
        with Store(self.out / STORE_FILE) as store:
            self.store = store
            try:
                train, held = self.load_prompts()
                answers = self.answer(train, self._student, self.student_id, "student answers")
                verdicts = self.judge(train, answers, "teacher verdicts")
                rows, summary = training_rows(train, answers, verdicts, self.cfg.min_score)
                n_train, n_valid = self.write_training_set(rows)
                adapter = self.adapter(rows)
                evaluation = self.evaluate(held, adapter)
            finally:
                self._student.close()
                self._teacher.close()
        report = {
            "student": self.cfg.student,
            "teacher": self.cfg.teacher,
            "recipe": "judge",
            "judged_by": "teacher",  # no checker: the scores are the teacher's opinion, not a test
            "settings": self.settings(),
            "prompts": {"train": len(train), "held_out": len(held), "skipped_lines": self.bad_lines},
            "verdicts": score_summary(verdicts),
            "training_set": {**summary, "train_rows": n_train, "valid_rows": n_valid},
            "adapter": os.path.relpath(adapter, self.out) if adapter else None,
            "evaluation": evaluation,
        }
        write_json(self.out / REPORT_FILE, report)
        self.timings["total"] = {"wall_s": round(time.perf_counter() - t0, 3)}
        write_json(self.out / TIMINGS_FILE, self.timings)
        return report

    def settings(self) -> dict[str, Any]:
        cfg = self.cfg
        return {
            "min_score": cfg.min_score,
            "max_tokens": cfg.max_tokens,
            "judge_max_tokens": cfg.judge_max_tokens,
            "temperature": cfg.temperature,
            "seed": cfg.seed,
            "eval_fraction": None if cfg.eval_prompts else cfg.eval_fraction,
            "rubric": Path(self.rubric.source).name,
            "max_length": MAX_LENGTH,
            "system": cfg.system,
        }

    # --- (0) prompts ------------------------------------------------------------------

    def load_prompts(self) -> tuple[list[PromptItem], list[PromptItem]]:
        cfg = self.cfg
        prompts = self._read(cfg.prompts) if cfg.prompts else []
        if cfg.synthesize:
            prompts += self.synthesized()
        if not prompts:
            where = f"{cfg.prompts} has no usable prompt" if cfg.prompts else "no prompts given"
            raise LlamarchError(f"{where}: give --prompts FILE.jsonl or --synthesize N --topic TEXT")
        if cfg.eval_prompts:
            held = self._read(cfg.eval_prompts)
            if not held:
                raise LlamarchError(f"{cfg.eval_prompts} has no usable prompt")
            return prompts, held
        return split_held_out(prompts, cfg.eval_fraction)

    def _read(self, path: Path) -> list[PromptItem]:
        def skipped(bad: BadLine) -> None:
            self.bad_lines.append(str(bad))
            self.ui.warn(f"skipped {bad}")

        return read_prompts(path, on_bad_line=skipped)

    def synthesized(self) -> list[PromptItem]:
        cfg = self.cfg
        if not cfg.topic:
            raise LlamarchError("--synthesize needs --topic TEXT: what the prompts should be about")

        def cache(request: str, compute: Callable[[], str]) -> str:
            key = result_key("synthesize", self.teacher_id, request)
            text = self.store.get_result("synthesize", key)
            if text is None:
                text = compute()
                self.store.put_result("synthesize", key, text)
            return text

        with self.ui.phase("teacher writes prompts", cfg.synthesize) as advance:
            texts = synthesize_prompts(lambda: self._teacher.get().llm, cfg.topic, cfg.synthesize, cache, advance)
        if len(texts) < cfg.synthesize:
            self.ui.warn(f"the teacher wrote {len(texts)} distinct prompts of the {cfg.synthesize} asked for")
        write_jsonl(self.out / PROMPTS_FILE, ({"prompt": t} for t in texts))
        return [PromptItem.from_text(t, f"synthesized:{n}") for n, t in enumerate(texts, 1)]

    # --- (a) answers, (b) verdicts ------------------------------------------------------------

    def answer(
        self, items: Sequence[PromptItem], student: _Lazy, identity: ModelIdentity, label: str
    ) -> list[dict[str, Any]]:
        """The student's answer to each prompt: {"text", "stats"}."""
        options = self.cfg.student_options()
        keys = [answer_key(identity, it, self.cfg.system, options) for it in items]

        def compute(indices: list[int]) -> Iterator[tuple[int, Any]]:
            for j, reply in student.get().answer_many([list(items[i].messages) for i in indices], self.cfg.parallel):
                yield j, {"text": reply.text, "stats": reply.stats.to_dict()}

        return self._phase(label, "answer", keys, compute)

    def judge(
        self, items: Sequence[PromptItem], answers: Sequence[dict[str, Any]], label: str, improve: bool = True
    ) -> list[Verdict]:
        """The teacher's verdict on each answer (held-out ones need no improved answer)."""
        options = self.cfg.teacher_options()
        pairs = [(it.question, a["text"]) for it, a in zip(items, answers)]
        keys = [verdict_key(self.teacher_id, self.rubric, q, a, options, improve) for q, a in pairs]

        def compute(indices: list[int]) -> Iterator[tuple[int, Any]]:
            teacher = self._teacher.get()
            for j, verdict, seconds in teacher.judge_many([pairs[i] for i in indices], self.cfg.parallel, improve):
                yield j, {**verdict.to_dict(), "seconds": seconds}

        return [Verdict.from_dict(v) for v in self._phase(label, "verdict", keys, compute)]

    def _phase(
        self, label: str, kind: str, keys: list[str], compute: Callable[[list[int]], Iterator[tuple[int, Any]]]
    ) -> list[Any]:
        t = time.perf_counter()
        computed = 0

        def counting(indices: list[int]) -> Iterator[tuple[int, Any]]:
            nonlocal computed
            for j, value in compute(indices):
                computed += 1
                yield j, value

        with self.ui.phase(label, len(keys)) as advance:
            results = fill_from_store(self.store, kind, keys, counting, advance)
        self.timings[label] = {
            "items": len(keys),
            "computed": computed,
            "wall_s": round(time.perf_counter() - t, 3),
            "generation_s": round(sum(_seconds(r) for r in results), 3),
        }
        return results

    # --- (c) training set, (d) training -----------------------------------------------------

    def write_training_set(self, rows: list[dict[str, Any]]) -> tuple[int, int]:
        return write_training_files(self.out, rows)

    def adapter(self, rows: list[dict[str, Any]]) -> Path | None:
        """The adapter to evaluate: the one given, the one trained before, or a new one."""

        def free_memory() -> None:
            self._teacher.close()  # training wants the memory
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
            "no training examples (every verdict was invalid): training skipped",
        )

    # --- (e) held-out evaluation ------------------------------------------------------------

    def evaluate(self, held: list[PromptItem], adapter: Path | None) -> dict[str, Any] | None:
        """Student (and student + adapter) on held-out prompts, both judged by the teacher."""
        if not held:
            return None
        before = self.judge(
            held,
            self.answer(held, self._student, self.student_id, "held-out: student"),
            "held-out: student verdicts",
            improve=False,
        )
        after = None
        if adapter is not None:
            tuned = _Lazy(lambda: self._open_student(adapter))
            identity = identify(self.cfg.student, self.cfg.student_backend, adapter)
            try:
                answers = self.answer(held, tuned, identity, "held-out: student + adapter")
            finally:
                tuned.close()
            after = self.judge(held, answers, "held-out: student + adapter verdicts", improve=False)
        return compare(held, before, after)


# --- the training step, shared by the recipes ----------------------------------------------


def write_training_files(out: Path, rows: list[dict[str, Any]]) -> tuple[int, int]:
    """DIR/train.jsonl and DIR/valid.jsonl from the rows; (train rows, valid rows)."""
    train, valid = split_valid(rows) if rows else ([], [])
    write_jsonl(out / TRAIN_FILE, train)
    write_jsonl(out / VALID_FILE, valid)
    return len(train), len(valid)


def run_adapter(
    store: Store,
    out: Path,
    given: Path | None,
    train: bool,
    rows: list[dict[str, Any]],
    student: str,
    student_id: ModelIdentity,
    train_settings: dict[str, Any],
    ui: Progress,
    free_memory: Callable[[], None],
    timings: dict[str, Any],
    no_rows_warning: str,
) -> Path | None:
    """The adapter a run evaluates: `given`, else the one trained before on the same files and
    settings (stored), else one trained now on DIR/train.jsonl; None with `train` off or no rows."""
    if given is not None:
        if not Path(given).is_file():
            raise LlamarchError(f"adapter not found: {given}")
        return Path(given)
    if not train:
        return None
    if not rows:
        ui.warn(no_rows_warning)
        return None
    key = result_key(
        "adapter", student_id, sha256_file(out / TRAIN_FILE), sha256_file(out / VALID_FILE), train_settings
    )
    stored = store.get_result("adapter", key)
    if stored is not None:
        path = out / stored["path"]
        if path.is_file() and sha256_file(path) == stored["sha256"]:
            return path
    free_memory()
    t = time.perf_counter()
    with ui.training() as on_event:
        path = train_adapter(student, out, out / ADAPTER_DIR, train_settings, key, on_event)
    timings["training"] = {"wall_s": round(time.perf_counter() - t, 3)}
    store.put_result("adapter", key, {"path": os.path.relpath(path, out), "sha256": sha256_file(path)})
    return path


def train_adapter(
    student: str,
    train_dir: Path,
    out: Path,
    settings: dict[str, Any],
    run_key: Key,
    progress: Callable[[dict[str, Any]], None],
) -> Path:
    """LoRA-train `student` on `train_dir` (`llamarch.finetune.fine_tune`); returns `out`/adapter.gguf.

    The MLX adapter goes to `out`/mlx-adapter. A run interrupted there with the same
    `run_key` (what the run depends on, in any of its forms) resumes from its last
    checkpoint; anything else left there is replaced.
    """
    from ...finetune import fine_tune, has_checkpoint

    mlx_dir, key_file = paths.ensure_dir(out) / "mlx-adapter", out / "run-key"
    resume = has_checkpoint(mlx_dir) and key_file.is_file() and key_file.read_text(encoding="utf-8") in run_key.forms()
    if not resume:
        key_file.write_text(run_key, encoding="utf-8")
    tuned = fine_tune(
        student,
        train_dir,
        mlx_dir,
        gguf_path=out / "adapter.gguf",
        resume=resume,
        overwrite=not resume,
        progress=progress,
        **settings,
    )
    return tuned.gguf_path


# --- pure helpers: training rows, scores, files -----------------------------------------


def training_rows(
    items: Sequence[PromptItem], answers: Sequence[dict[str, Any]], verdicts: Sequence[Verdict], min_score: int
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One chat row per prompt: the teacher's improved answer when the score is below
    `min_score`, else the student's own. Prompts without a valid verdict (or with a low
    score and no improved answer) are left out and counted."""
    rows: list[dict[str, Any]] = []
    counts = {
        "rows": 0,
        "teacher_answers": 0,
        "student_answers": 0,
        "skipped_invalid_verdict": 0,
        "skipped_no_improvement": 0,
    }
    for item, answer, verdict in zip(items, answers, verdicts):
        if not verdict.valid or verdict.score is None:
            counts["skipped_invalid_verdict"] += 1
        elif verdict.score >= min_score:
            rows.append(chat_row(item.messages, answer["text"]))
            counts["student_answers"] += 1
        elif verdict.improved_answer.strip():
            rows.append(chat_row(item.messages, verdict.improved_answer))
            counts["teacher_answers"] += 1
        else:
            counts["skipped_no_improvement"] += 1
    counts["rows"] = len(rows)
    return rows, counts


def score_summary(verdicts: Sequence[Verdict]) -> dict[str, Any]:
    scores = [v.score for v in verdicts if v.valid and v.score is not None]
    return {
        "count": len(verdicts),
        "valid": len(scores),
        "invalid": len(verdicts) - len(scores),
        "retried": sum(1 for v in verdicts if v.attempts > 1),
        "mean_score": round(sum(scores) / len(scores), 3) if scores else None,
    }


def compare(held: Sequence[PromptItem], before: Sequence[Verdict], after: Sequence[Verdict] | None) -> dict[str, Any]:
    """Mean scores before and after, and win/tie/loss of after against before per prompt."""
    result: dict[str, Any] = {
        "prompts": len(held),
        "before": score_summary(before),
        "after": score_summary(after) if after is not None else None,
    }
    items = []
    tally = {"win": 0, "tie": 0, "loss": 0, "unjudged": 0}
    for n, (item, b) in enumerate(zip(held, before)):
        row: dict[str, Any] = {"source": item.source, "question": item.question[:200], "before": b.score}
        if after is not None:
            a = after[n]
            row["after"] = a.score
            if a.score is None or b.score is None:
                tally["unjudged"] += 1
            else:
                tally["win" if a.score > b.score else "loss" if a.score < b.score else "tie"] += 1
        items.append(row)
    if after is not None:
        result.update(tally)
    result["items"] = items
    return result


def _seconds(value: Any) -> float:
    if isinstance(value, dict):
        return float(value.get("seconds") or value.get("stats", {}).get("total_s") or 0.0)
    return 0.0


def write_json(path: Path, obj: Any) -> None:
    """Stable JSON (sorted keys, 2-space indent), written atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def format_report(report: dict[str, Any]) -> str:
    """The before/after table printed at the end of a run."""
    lines = []
    v = report["verdicts"]
    t = report["training_set"]
    lines.append(
        f"verdicts on {v['count']} training prompts: mean score {_fmt(v['mean_score'])}, "
        f"{v['valid']} valid, {v['invalid']} invalid, {v['retried']} retried"
    )
    lines.append(
        f"training set: {t['rows']} rows ({t['teacher_answers']} improved by the teacher, "
        f"{t['student_answers']} the student's own; {t['skipped_invalid_verdict'] + t['skipped_no_improvement']} "
        f"left out) -> train.jsonl {t['train_rows']}, valid.jsonl {t['valid_rows']}"
    )
    ev = report.get("evaluation")
    if not ev:
        lines.append("held-out evaluation: no held-out prompts")
        return "\n".join(lines)
    rows = [
        ("", "mean score", "valid verdicts"),
        ("student", _fmt(ev["before"]["mean_score"]), f"{ev['before']['valid']}/{ev['prompts']}"),
    ]
    if ev["after"] is not None:
        rows.append(("student + adapter", _fmt(ev["after"]["mean_score"]), f"{ev['after']['valid']}/{ev['prompts']}"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines.append(f"held-out evaluation on {ev['prompts']} prompts, judged by the teacher (no checker ran the answers):")
    lines.extend(
        "  " + "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths)))
        for r in rows
    )
    if ev["after"] is not None:
        lines.append(
            f"  adapter vs student: {ev['win']} win / {ev['tie']} tie / {ev['loss']} loss"
            + (f" ({ev['unjudged']} unjudged)" if ev["unjudged"] else "")
        )
    else:
        lines.append("  (no adapter: run without --no-train, or give --adapter, to compare)")
    return "\n".join(lines)


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"
