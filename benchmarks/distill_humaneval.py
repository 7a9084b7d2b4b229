"""Does distillation help broad coding? HumanEval pass@1 of a student before and after.

A thin driver over the library's recipes. The student (qwen2.5-coder-0.5b) learns from
Python function-writing tasks that are NOT HumanEval problems (benchmarks/data/python_tasks.txt,
checked here for name and n-gram overlap with every HumanEval prompt), and HumanEval pass@1
(greedy, llama.cpp, the GGUF adapter applied) is measured for the student, the adapted
student and the teacher (qwen2.5-coder-1.5b):

- `--recipe judge`: `llamarch distill` (the teacher judges and improves the student's answers);
- `--recipe corrected|verified`: `llamarch distill --check python` (answers kept when the
  task's docstring example passes in the sandbox; `--teacher-samples K` samples the teacher).

Prints one JSON object; writes it and a plot to the output directory and benchmarks/results/.
One experiment's settings can live in a small JSON file (`--config benchmarks/configs/X.json`).
Resumable: the run directory holds its store; HumanEval results go to the user store
(shared with `llamarch eval humaneval`, so anchors evaluated there are reused).

    flock /tmp/llamarch-heavy.lock python benchmarks/distill_humaneval.py --config benchmarks/configs/humaneval-corrected.json
    python benchmarks/distill_humaneval.py --overlap-only      # just the contamination check
"""  # noqa: E501 (a command to copy whole)

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from llamarch.evals.stats import paired_difference  # noqa: F401 (the results files have always carried it)

HERE = Path(__file__).resolve().parent
TASKS_FILE = HERE / "data" / "python_tasks.txt"
RESULTS_DIR = HERE / "results"
NGRAM = 8  # word n-grams compared against HumanEval (13 is the GPT-3 contamination test; 8 is stricter)


# --- the prompt set ------------------------------------------------------------------------


def parse_tasks(text: str) -> list[dict[str, str]]:
    """Tasks from `signature | description | example -> result` lines ('#' starts a comment)."""
    tasks = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(" | ")]
        if len(parts) != 3 or " -> " not in parts[2]:
            raise ValueError(f"{TASKS_FILE.name}:{n}: expected 'signature | description | call -> result'")
        signature, description, example = parts
        call, _, result = example.rpartition(" -> ")
        name = signature.split("(", 1)[0].strip()
        stub = f'def {signature}:\n    """ {description}\n    >>> {call}\n    {result}\n    """\n'
        tasks.append({"entry_point": name, "stub": stub, "call": call.strip(), "result": result.strip()})
    return tasks


def task_row(task: dict[str, str]) -> dict[str, str]:
    """A task as a `llamarch distill --check python` line: its only test is its docstring example."""
    return {
        "task_id": f"python_tasks/{task['entry_point']}",
        "prompt": task["stub"],
        "entry_point": task["entry_point"],
        "tests": f"assert {task['call']} == {task['result']}",
    }


def task_problems(tasks: Sequence[dict[str, str]]) -> list[Any]:
    """The tasks as eval problems, read the way `llamarch distill --check python` reads them."""
    import tempfile

    from llamarch.jsonl import write_jsonl
    from llamarch.patterns.student_teacher.verified_code import load_tasks

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tasks.jsonl"
        write_jsonl(path, (task_row(t) for t in tasks))
        return load_tasks(path)


def task_prompt(stub: str) -> str:
    """The user message, worded exactly as the HumanEval harness words its requests."""
    from llamarch.evals.humaneval import INSTRUCTION

    return f"{INSTRUCTION}\n```\n{stub.strip()}\n```\n"


# --- overlap with HumanEval (pure logic) ---------------------------------------------------


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9_]+", text.lower())


def ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    """Word n-grams of a text, leaving out those made of numbers only (runs like 1 2 3 ... 8
    in example matrices are not shared text)."""
    tokens = words(text)
    grams = (tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return {g for g in grams if not all(t.isdigit() for t in g)}


def overlap_report(
    texts: Sequence[str],
    names: Sequence[str],
    references: Sequence[str],
    reference_names: Sequence[str],
    n: int = NGRAM,
) -> dict[str, Any]:
    """How much a prompt set shares with reference problems.

    name_collisions: function names (case-insensitive) found in both. max_ngram_overlap: over
    every (prompt, reference) pair, the largest share of the prompt's word n-grams that also
    occur in the reference; prompts_sharing_any_ngram: prompts with at least one such n-gram.
    """
    ref_grams = [ngrams(r, n) for r in references]
    best, best_pair, sharing = 0.0, None, 0
    for i, text in enumerate(texts):
        grams = ngrams(text, n)
        if not grams:
            continue
        shared_any = False
        for j, ref in enumerate(ref_grams):
            common = len(grams & ref)
            shared_any = shared_any or common > 0
            if common / len(grams) > best:
                best, best_pair = common / len(grams), (i, j)
        sharing += shared_any
    collisions = sorted({a.lower() for a in names} & {b.lower() for b in reference_names})
    return {
        "prompts": len(texts),
        "references": len(references),
        "ngram": n,
        "name_collisions": collisions,
        "max_ngram_overlap": round(best, 4),
        "max_overlap_pair": None if best_pair is None else [names[best_pair[0]], reference_names[best_pair[1]]],
        "prompts_sharing_any_ngram": sharing,
    }


def check_overlap(tasks: Sequence[dict[str, str]]) -> dict[str, Any]:
    from llamarch.evals.humaneval import load_problems

    problems = load_problems()
    args = (
        [t["stub"] for t in tasks],
        [t["entry_point"] for t in tasks],
        [p.prompt for p in problems],
        [p.entry_point for p in problems],
    )
    report = overlap_report(*args)
    loose = overlap_report(*args, n=4)
    report["max_4gram_overlap"], report["max_4gram_pair"] = loose["max_ngram_overlap"], loose["max_overlap_pair"]
    report["compared"] = "each task's signature and docstring (the instruction line is the harness's own)"
    return report


# --- phases ----------------------------------------------------------------------------------


class Timings:
    """Wall time per phase of this invocation, merged into OUT/timings.json across resumes."""

    def __init__(self, path: Path):
        self.path = path
        self.data: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
        self.now: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        log(f"== {name}")
        t = time.perf_counter()
        try:
            yield
        finally:
            self.now[name] = round(time.perf_counter() - t, 1)
            self.data.setdefault(name, []).append(self.now[name])
            self.path.write_text(json.dumps(self.data, indent=1) + "\n")
            log(f"== {name}: {self.now[name]} s")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class LogProgress:
    """The distill pipeline's progress as log lines (every 10 items, every 5 training steps)."""

    @contextmanager
    def training(self) -> Iterator[Callable[[dict[str, Any]], None]]:
        yield _log_training

    @contextmanager
    def phase(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        done = [0]

        def advance(n: int = 1) -> None:
            before = done[0]
            done[0] += n
            if done[0] // 10 != before // 10 or done[0] == total:
                log(f"   {description}: {done[0]}/{total}")

        yield advance

    def warn(self, message: str) -> None:
        log(f"warning: {message}")


def lora_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The LoRA training settings every recipe uses."""
    settings = {
        "iters": args.iters,
        "rank": args.rank,
        "learning_rate": args.lr,
        "num_layers": args.layers,
        "batch_size": args.batch_size,
        "max_seq_length": 1024,
    }
    if args.epochs:  # checked recipes: passes over the rows (the trainer turns them into iterations)
        settings["epochs"] = args.epochs
        del settings["iters"]
    if args.train_seed:  # seed 0 is the trainer's default, left out so earlier runs keep their keys
        settings["seed"] = args.train_seed
    if args.distill_weight:  # the teacher's next-token probabilities join the loss (left out at 0, as above)
        settings.update(teacher=args.teacher, distill_weight=args.distill_weight, distill_top_k=args.distill_top_k)
    return settings


def run_name(args: argparse.Namespace) -> str:
    """What a run's directory and results are named: the recipe, the teacher's samples, the seed, the --tag."""
    name = f"{args.recipe}-teacher{args.teacher_samples}" if args.teacher_samples > 1 else args.recipe
    name += f"-seed{args.train_seed}" if args.train_seed else ""
    return f"{name}-{args.tag}" if args.tag else name


def run_distill(args: argparse.Namespace, prompts_file: Path) -> dict[str, Any]:
    """The judge recipe: `llamarch distill` (the teacher judges and improves the student's answers)."""
    from llamarch.patterns.student_teacher.distill import DistillConfig, Distiller

    train = lora_settings(args)
    config = DistillConfig(
        out=args.out / "distill",
        student=args.student,
        teacher=args.teacher,
        prompts=prompts_file,
        eval_fraction=0.0,
        min_score=args.min_score,
        max_tokens=args.max_tokens,
        judge_max_tokens=args.judge_max_tokens,
        parallel=args.parallel,
        train_settings=train,
    )
    report = Distiller(config, LogProgress()).run()
    return {**report, "train_settings": train}


def run_checked(args: argparse.Namespace, tasks_file: Path) -> dict[str, Any]:
    """The checked recipes, through the library (`llamarch distill --check python`): answers kept
    when the task's docstring example passes in the sandbox; HumanEval pass@1 before and after."""
    from llamarch.patterns.student_teacher.verified_code import HUMANEVAL, CodeConfig, CodeDistiller

    train = lora_settings(args)
    config = CodeConfig(
        out=args.out / run_name(args),
        tasks=tasks_file,
        student=args.student,
        teacher=args.teacher,
        eval_tasks=HUMANEVAL,
        eval_limit=args.limit,
        samples=max(1, args.teacher_samples),
        sample_temperature=args.temperature,
        recipe=args.recipe,
        parallel=args.parallel,
        evaluate_teacher=not args.no_teacher_eval,
        train_settings=train,
    )
    report = CodeDistiller(config, LogProgress()).run()
    return {**report, "train_settings": train, "verdicts": None}


def humaneval(model: str, adapter: Path | None, parallel: int, limit: int | None) -> list[Any]:
    """Per-problem HumanEval results at the CLI's default settings (in the user store, shared
    with `llamarch eval humaneval`, so reruns are free)."""
    from llamarch.evals.humaneval import EvalSettings, evaluate, identify, load_problems
    from llamarch.llm import LLM
    from llamarch.store import Store

    problems = load_problems(0, limit)
    options = {"lora_path": str(adapter)} if adapter else {}
    with Store() as store, LLM(model, **options) as llm:
        run = evaluate(
            llm,
            problems,
            identity=identify(model, None, str(adapter) if adapter else None),
            settings=EvalSettings(),
            store=store,
            parallel=parallel,
        )
    log(f"   {model}{' + adapter' if adapter else ''}: pass@1 {pass_at_1(run.results)}")
    return run.results


def _log_training(event: dict[str, Any]) -> None:
    kind = event.get("event")
    if kind == "step" and (event["step"] % 5 == 0 or event["step"] == event["total"]):
        log(f"   training step {event['step']}/{event['total']}: loss {event.get('loss', float('nan')):.3f}")
    elif kind == "teacher" and (event["done"] % 25 == 0 or event["done"] == event["total"]):
        log(f"   teacher's soft targets: {event['done']}/{event['total']} answers")
    elif kind in ("eval", "done"):
        log(f"   training {kind}: {', '.join(f'{k} {v}' for k, v in event.items() if k != 'event')}")


def pass_at_1(results: Sequence[Any]) -> float:
    return round(100.0 * sum(r.passed for r in results) / len(results), 2)


def judge_subset(args: argparse.Namespace, results: Sequence[Any]) -> list[dict[str, Any]]:
    """The teacher's score (no improved answer) for a balanced subset of the student's
    HumanEval answers: up to N/2 that pass and N/2 that fail, in problem order."""
    from llamarch.evals.humaneval import build_prompt, load_problems
    from llamarch.identity import identify
    from llamarch.patterns.student_teacher.roles import Teacher
    from llamarch.store import Store, result_key

    problems = {p.task_id: p for p in load_problems()}
    half = args.judge_subset // 2
    chosen = [r for r in results if r.passed][:half] + [r for r in results if not r.passed][:half]
    pairs = [(build_prompt(problems[r.task_id]), r.completion) for r in chosen]
    options = {"temperature": 0.0, "max_tokens": 256, "seed": 0}
    with Store(args.out / "judge.db") as store:
        teacher_id = identify(args.teacher)
        keys = [result_key("he-judge", teacher_id, q, a, options) for q, a in pairs]
        scores = [store.get_result("he-judge", k) for k in keys]
        todo = [i for i, s in enumerate(scores) if s is None]
        if todo:
            with Teacher(args.teacher, options=options) as teacher:
                for j, verdict, _ in teacher.judge_many([pairs[i] for i in todo], args.parallel, improve=False):
                    i = todo[j]
                    scores[i] = {"score": verdict.score, "valid": verdict.valid}
                    store.put_result("he-judge", keys[i], scores[i])
                    log(f"   judged {sum(s is not None for s in scores)}/{len(scores)}")
    return [{"task_id": r.task_id, "passed": r.passed, **s} for r, s in zip(chosen, scores)]


def judged_from(path: Path) -> list[dict[str, Any]]:
    """The teacher's scores from a `llamarch eval judge --out FILE` report (same student)."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))["results"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SystemExit(
            f"--judged-from {path}: not a `llamarch eval judge --out` report ({e}); run that command with --out first"
        ) from None
    return [
        {
            "task_id": r["task_id"],
            "passed": r["passed"],
            "score": (r.get("verdict") or {}).get("score"),
            "valid": (r.get("verdict") or {}).get("valid", False),
        }
        for r in rows
    ]


def plot(path: Path, bars: dict[str, float], judged: list[dict[str, Any]] | None, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2 if judged else 1, figsize=(11 if judged else 5.5, 4.2), squeeze=False)
    ax = axes[0][0]
    names = list(bars)
    ax.bar(names, [bars[n] for n in names], color=["#8da0cb", "#66c2a5", "#fc8d62"][: len(names)])
    for i, n in enumerate(names):
        ax.text(i, bars[n] + 0.5, f"{bars[n]:.1f}", ha="center", va="bottom")
    ax.set_ylabel("HumanEval pass@1 (%)")
    ax.set_ylim(0, max(bars.values()) * 1.2 + 1)
    ax.set_title(title, fontsize=9)
    if judged:
        ax = axes[0][1]
        bins = list(range(1, 12))
        groups = [
            [j["score"] for j in judged if j["passed"] == passed and j["score"] is not None] for passed in (True, False)
        ]
        ax.hist(
            groups,
            bins=bins,
            color=["#66c2a5", "#e78ac3"],
            align="left",
            rwidth=0.85,
            label=[f"student passes (n={len(groups[0])})", f"student fails (n={len(groups[1])})"],
        )
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.set_xticks(range(1, 11))
        ax.set_xlabel("teacher's score (1-10)")
        ax.set_ylabel("student answers")
        ax.set_title("teacher's verdicts on the student's HumanEval answers", fontsize=9)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("runs/distill-humaneval"), help="run directory (rerun to resume)")
    ap.add_argument(
        "--config",
        type=Path,
        help="a JSON file of these options (one small file per experiment, "
        "e.g. benchmarks/configs/humaneval-corrected.json); flags given on the command line win",
    )
    ap.add_argument("--student", default="qwen2.5-coder-0.5b")
    ap.add_argument("--teacher", default="qwen2.5-coder-1.5b")
    ap.add_argument("--prompts", type=int, default=120, help="how many of the shipped tasks to distill on")
    ap.add_argument(
        "--recipe",
        choices=("judge", "verified", "corrected"),
        default="judge",
        help="judge: `llamarch distill` (teacher judges and improves the student's answers); "
        "corrected: the student's passing answers, the teacher's passing ones where the student "
        "fails; verified: the teacher's passing answers (both `llamarch distill --check python`)",
    )
    ap.add_argument(
        "--teacher-samples",
        type=int,
        default=1,
        help="checked recipes: the teacher's answers per task (1: greedy; more: sampled at --temperature)",
    )
    ap.add_argument("--temperature", type=float, default=0.7, help="the teacher's sampling temperature")
    ap.add_argument(
        "--min-score", type=int, default=11, help="judge recipe: 11 makes every training target the teacher's answer"
    )
    ap.add_argument("--max-tokens", type=int, default=320, help="judge recipe: most tokens per student answer")
    ap.add_argument("--judge-max-tokens", type=int, default=512, help="most tokens per verdict")
    ap.add_argument("--iters", type=int, default=40)
    ap.add_argument(
        "--epochs", type=float, help="checked recipes: train this many passes over the rows (instead of --iters)"
    )
    ap.add_argument(
        "--distill-weight",
        type=float,
        default=0.0,
        help="checked recipes: this share of the loss is the "
        "cross-entropy against the teacher's top-k next-token probabilities on the training answers",
    )
    ap.add_argument(
        "--distill-top-k", type=int, default=16, help="with --distill-weight: the teacher's tokens kept per position"
    )
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--layers", type=int, default=8, help="LoRA on the last N blocks")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--train-seed", type=int, default=0, help="training order seed (rerun a recipe to see its spread)")
    ap.add_argument("--tag", help="label for a variant of the settings (names its run directory and results apart)")
    ap.add_argument("--parallel", type=int, default=4, help="sequences decoded at once")
    ap.add_argument("--limit", type=int, help="HumanEval problems (default: all 164)")
    ap.add_argument(
        "--no-teacher-eval", action="store_true", help="leave the teacher's HumanEval run out (rerun without to add it)"
    )
    ap.add_argument(
        "--judge-subset", type=int, default=30, help="student HumanEval answers the teacher scores (0: none)"
    )
    ap.add_argument(
        "--judged-from",
        type=Path,
        help="take the score histogram from `llamarch eval judge --out FILE` "
        "(the same student) instead of judging a subset here",
    )
    ap.add_argument("--overlap-only", action="store_true", help="check the prompt set against HumanEval and stop")
    ap.add_argument("--no-copy", action="store_true", help="do not copy the JSON and plot to benchmarks/results/")
    given = ap.parse_args(argv)
    if given.config:
        try:
            options = json.loads(given.config.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            ap.error(f"--config {given.config}: {e}")
        known = {a.dest for a in ap._actions}
        unknown = sorted(k for k in options if k.replace("-", "_") not in known)
        if unknown:
            ap.error(f"--config {given.config}: unknown options {', '.join(unknown)}")
        ap.set_defaults(**{k.replace("-", "_"): v for k, v in options.items()})
        given = ap.parse_args(argv)
    args = given
    if args.teacher_samples < 1:
        ap.error("--teacher-samples takes 1 or more")
    if args.distill_weight and (args.recipe == "judge" or not 0 < args.distill_weight <= 1 or args.distill_top_k < 1):
        ap.error(
            "--distill-weight takes a fraction above 0 up to 1 (and --distill-top-k 1 or more), with a checked recipe"
        )
    if args.epochs is not None and (args.recipe == "judge" or args.epochs <= 0):
        ap.error("--epochs takes a positive number, with the verified or corrected recipe")
    if args.tag and not re.fullmatch(r"[A-Za-z0-9_.-]+", args.tag):
        ap.error(f"--tag {args.tag!r}: use letters, digits, '.', '_' or '-' (it names a directory)")
    if not args.overlap_only and importlib.util.find_spec("matplotlib") is None:
        ap.error("the plot needs matplotlib, which is not installed: pip install -e '.[bench]'")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    tasks = parse_tasks(TASKS_FILE.read_text(encoding="utf-8"))
    overlap = check_overlap(tasks)
    if args.overlap_only:
        print(json.dumps(overlap, indent=2))
        return 0
    if overlap["name_collisions"] or overlap["max_ngram_overlap"] > 0:
        log(f"the prompt set overlaps HumanEval: {overlap}")
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    timings = Timings(args.out / "timings.json")
    from llamarch.jsonl import write_jsonl

    used = tasks[: args.prompts]
    if args.recipe == "judge":
        prompts_file = args.out / "prompts.jsonl"
        write_jsonl(prompts_file, ({"prompt": task_prompt(t["stub"]), "entry_point": t["entry_point"]} for t in used))
        with timings.phase("distill (answers, verdicts, training, export)"):
            report = run_distill(args, prompts_file)
        adapter = args.out / "distill" / report["adapter"]
        with timings.phase("humaneval: student + adapter"):
            tuned = humaneval(args.student, adapter, args.parallel, args.limit)
        with timings.phase("humaneval: student"):
            base = humaneval(args.student, None, args.parallel, args.limit)
        teacher = None
        if not args.no_teacher_eval:
            with timings.phase("humaneval: teacher"):
                teacher = humaneval(args.teacher, None, args.parallel, args.limit)
    else:
        tasks_file = args.out / "tasks.jsonl"
        write_jsonl(tasks_file, (task_row(t) for t in used))
        with timings.phase(f"distill --check python ({args.recipe}): answers, tests, training, HumanEval"):
            report = run_checked(args, tasks_file)
        runs = {
            name: [SimpleNamespace(passed=r["matched"], task_id=r["task_id"]) for r in rows]
            for name, rows in report["evaluation"]["results"].items()
        }
        base, tuned, teacher = runs["student"], runs["student + adapter"], runs.get("teacher greedy")
    judged = None
    if args.judged_from:
        judged = judged_from(args.judged_from)
    elif args.judge_subset:
        with timings.phase("teacher judges student HumanEval answers"):
            judged = judge_subset(args, humaneval(args.student, None, args.parallel, args.limit))

    scores = {"student": pass_at_1(base), "student + adapter": pass_at_1(tuned)}
    if teacher is not None:
        scores["teacher"] = pass_at_1(teacher)
    flips = {
        "fixed": sum(not b.passed and t.passed for b, t in zip(base, tuned)),
        "broken": sum(b.passed and not t.passed for b, t in zip(base, tuned)),
    }
    result = {
        "student": args.student,
        "teacher": args.teacher,
        "settings": {
            "recipe": args.recipe,
            "prompts": args.prompts,
            "min_score": args.min_score,
            "max_tokens": args.max_tokens,
            "judge_max_tokens": args.judge_max_tokens,
            "parallel": args.parallel,
            "teacher_samples": args.teacher_samples,
            "temperature": args.temperature,
            "lora": report["train_settings"],
            "humaneval": "greedy pass@1, llamarch eval defaults (max_tokens 768)",
        },
        "data": {
            "tasks_shipped": len(tasks),
            "prompts_used": report.get("prompts", report.get("questions"))["train"],
            "verdicts": report["verdicts"],
            "training_set": report["training_set"],
        },
        "overlap_with_humaneval": overlap,
        "humaneval_problems": len(base),
        "pass@1": scores,
        "delta_adapter_vs_student": round(scores["student + adapter"] - scores["student"], 2),
        "gap_closed": (
            round((scores["student + adapter"] - scores["student"]) / (scores["teacher"] - scores["student"]), 3)
            if scores.get("teacher", scores["student"]) != scores["student"]
            else None
        ),
        "problems_fixed_broken": flips,
        "paired_difference": paired_difference(flips["fixed"], flips["broken"], len(base)),
        "teacher_scores_on_student_answers": _score_summary(judged) if judged else None,
        "wall_s": {k: v for k, v in timings.now.items()},
        "wall_s_all_invocations": {k: sum(v) for k, v in timings.data.items()},
    }
    (args.out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    if args.recipe == "judge":
        (args.out / "humaneval.json").write_text(
            json.dumps(
                {
                    name: [r.to_dict() for r in rs]
                    for name, rs in (("student", base), ("student+adapter", tuned), ("teacher", teacher or []))
                }
            )
            + "\n"
        )
    if judged:
        (args.out / "judged.json").write_text(json.dumps(judged, indent=1) + "\n")
    data = (
        f"min-score {args.min_score}"
        if args.recipe == "judge"
        else f"{report['training_set']['rows']} answers checked by execution"
    )
    lora = report["train_settings"]
    length = f"{lora['epochs']:g} epochs" if "epochs" in lora else f"{lora['iters']} iters"
    title = (
        f"{args.student} distilled from {args.teacher} ({args.recipe} recipe)\n{len(used)} prompts, "
        f"{data}, LoRA r{args.rank} lr {args.lr:g} {length}"
    )
    plot(args.out / "distill_humaneval.png", scores, judged, title)
    if not args.no_copy:
        RESULTS_DIR.mkdir(exist_ok=True)
        name = f"distill_humaneval-{run_name(args)}"
        (RESULTS_DIR / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        (RESULTS_DIR / f"{name}.png").write_bytes((args.out / "distill_humaneval.png").read_bytes())
    print(json.dumps(result, indent=2))
    return 0


def _score_summary(judged: Sequence[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for passed in (True, False):
        scores = [j["score"] for j in judged if j["passed"] == passed and j["score"] is not None]
        out["passing" if passed else "failing"] = {
            "n": len(scores),
            "mean": round(sum(scores) / len(scores), 2) if scores else None,
            "histogram": {s: scores.count(s) for s in sorted(set(scores))},
        }
    return out


if __name__ == "__main__":
    sys.exit(main())
