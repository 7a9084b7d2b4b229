"""Does distillation help? HumanEval pass@1 of a student before and after `llamarch distill`.

The student (qwen2.5-coder-0.5b) answers Python function-writing prompts that are NOT
HumanEval problems (benchmarks/data/python_tasks.txt, checked for overlap with every
HumanEval prompt below), the teacher (qwen2.5-coder-1.5b) judges each answer and writes an
improved one, the student is LoRA-trained (MLX) on the result through the distill pipeline,
and HumanEval pass@1 (greedy, llama.cpp, the GGUF adapter applied) is measured for the
student, the adapted student and the teacher. Prints one JSON object; writes it, a plot and
the per-problem results to the output directory.

Resumable: the distill run lives in OUT/distill (its own store), HumanEval results in the
default user store (shared with `llamarch eval humaneval` at the same default settings, so
anchors evaluated there are reused), the teacher's verdicts on HumanEval answers in OUT/judge.db.

    flock /tmp/llamarch-heavy.lock python benchmarks/distill_humaneval.py --out runs/distill-he
    python benchmarks/distill_humaneval.py --overlap-only      # just the contamination check
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
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


def task_problems(tasks: Sequence[dict[str, str]]) -> list[Any]:
    """The tasks as eval problems whose only test is the task's own docstring example."""
    from llamarch.evals.humaneval import Problem

    return [Problem(task_id=f"python_tasks/{t['entry_point']}", prompt=t["stub"], entry_point=t["entry_point"],
                    test=f"def check(candidate):\n    assert {t['call']} == {t['result']}\n")
            for t in tasks]


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
    grams = (tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
    return {g for g in grams if not all(t.isdigit() for t in g)}


def overlap_report(texts: Sequence[str], names: Sequence[str], references: Sequence[str],
                   reference_names: Sequence[str], n: int = NGRAM) -> dict[str, Any]:
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
        "prompts": len(texts), "references": len(references), "ngram": n,
        "name_collisions": collisions, "max_ngram_overlap": round(best, 4),
        "max_overlap_pair": None if best_pair is None else [names[best_pair[0]], reference_names[best_pair[1]]],
        "prompts_sharing_any_ngram": sharing,
    }


def check_overlap(tasks: Sequence[dict[str, str]]) -> dict[str, Any]:
    from llamarch.evals.humaneval import load_problems

    problems = load_problems()
    args = ([t["stub"] for t in tasks], [t["entry_point"] for t in tasks],
            [p.prompt for p in problems], [p.entry_point for p in problems])
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
    settings = {"iters": args.iters, "rank": args.rank, "learning_rate": args.lr, "num_layers": args.layers,
                "batch_size": args.batch_size, "max_seq_length": 1024}
    if args.train_seed:  # seed 0 is the trainer's default, left out so earlier runs keep their keys
        settings["seed"] = args.train_seed
    if args.distill_weight:  # the teacher's next-token probabilities join the loss (left out at 0, as above)
        settings.update(teacher=args.teacher, distill_weight=args.distill_weight, distill_top_k=args.distill_top_k)
    return settings


def _named(args: argparse.Namespace, variant: str) -> str:
    """The recipe, the teacher's tries where not the default, `variant`, the --tag."""
    name = f"{args.recipe}-teacher{args.teacher_samples}" if args.teacher_samples else args.recipe
    return f"{name}{variant}-{args.tag}" if args.tag else f"{name}{variant}"


def training_name(args: argparse.Namespace) -> str:
    """One training run's directory (with the seed where it is not the default)."""
    return _named(args, f"-seed{args.train_seed}" if args.train_seed else "")


def run_name(args: argparse.Namespace) -> str:
    """What the results are named: the training run's name, or the average's."""
    if not args.average_seeds:
        return training_name(args)
    return _named(args, f"-soup{'-'.join(map(str, args.average_seeds))}")


def run_averaged(args: argparse.Namespace, tasks: Sequence[dict[str, str]], timings: Timings) -> dict[str, Any]:
    """Train the recipe once per seed of --average-seeds (each run stored and reused as
    usual), then average the adapters (llamarch.finetune.soup) and export the mean."""
    from llamarch.finetune import export_gguf_lora
    from llamarch.finetune.soup import average_adapters

    seeds, adapters, report = args.average_seeds, [], {}
    for seed in seeds:
        args.train_seed = seed
        report = run_verified(args, tasks, timings)
        adapters.append(args.out / Path(report["adapter"]).parent / "mlx-adapter")
    out = args.out / run_name(args)
    soup = average_adapters(adapters, out / "mlx-adapter")
    adapter = export_gguf_lora(soup, out / "adapter.gguf")
    log(f"   averaged the adapters of seeds {seeds} into {adapter}")
    return {**report, "adapter": str(adapter.relative_to(args.out)),
            "train_settings": {**report["train_settings"], "seed": None, "average_of_seeds": seeds}}


def run_distill(args: argparse.Namespace, prompts_file: Path) -> dict[str, Any]:
    from llamarch.patterns.student_teacher.distill import DistillConfig, Distiller

    train = lora_settings(args)
    config = DistillConfig(
        out=args.out / "distill", student=args.student, teacher=args.teacher, prompts=prompts_file,
        eval_fraction=0.0, min_score=args.min_score, max_tokens=args.max_tokens, judge_max_tokens=args.judge_max_tokens,
        parallel=args.parallel, train_settings=train,
    )
    report = Distiller(config, LogProgress()).run()
    return {**report, "train_settings": train}


def humaneval(model: str, adapter: Path | None, parallel: int, limit: int | None) -> list[Any]:
    """Per-problem HumanEval results at the CLI's default settings (stored, so reruns are free)."""
    from llamarch.evals.humaneval import load_problems

    return evaluate_on(model, adapter, load_problems(0, limit), parallel)


def evaluate_on(model: str, adapter: Path | None, problems: Sequence[Any], parallel: int,
                settings: Any = None) -> list[Any]:
    """Generate and test `problems` with the eval harness (results stored in the user store);
    greedy at the CLI's defaults unless `settings` says otherwise."""
    from llamarch.evals.humaneval import EvalSettings, evaluate, identify
    from llamarch.llm import LLM
    from llamarch.store import Store

    identity = identify(model, None, str(adapter) if adapter else None)
    passed = [0, 0]

    def progress(result: Any) -> None:
        passed[0] += result.passed
        passed[1] += 1
        if passed[1] % 20 == 0 or passed[1] == len(problems):
            log(f"   {model}{' + adapter' if adapter else ''}: {passed[1]}/{len(problems)}, pass@1 {passed[0] / passed[1]:.1%}")

    options = {"lora_path": str(adapter)} if adapter else {}
    with Store() as store, LLM(model, **options) as llm:
        run = evaluate(llm, problems, identity=identity, settings=settings or EvalSettings(), store=store, parallel=parallel,
                       on_result=progress)
    return run.results


def run_verified(args: argparse.Namespace, tasks: Sequence[dict[str, str]], timings: Timings) -> dict[str, Any]:
    """The recipes checked by execution. 'verified': the teacher answers each task as it
    would a HumanEval problem, and its answer is kept when it passes the task's docstring
    example (run in the sandbox). 'corrected': the student answers first and keeps its own
    answer where that passes; the teacher answers only the tasks the student fails, and its
    passing answer is kept there. 'sampled': as 'corrected', but where the student's greedy
    answer fails it first gets `--samples` tries at `--temperature`, and its first passing
    one is kept (an answer in its own words); the teacher's fills only what is left. 'onpolicy':
    the student's own greedy answer to every task, passing or not, trained only against the
    teacher's next-token probabilities on it (distill weight 1: the teacher corrects each token
    of what the student actually writes; nothing from the tests). The student is
    LoRA-trained on the kept answers, worded exactly as the replies it gives under the
    harness (same prompt, same opening line, same fence)."""
    import hashlib

    from llamarch.evals.humaneval import build_prompt
    from llamarch.patterns.student_teacher.training import chat_row, train_student_adapter, write_training_set

    problems = task_problems(tasks[:args.prompts])
    student = [None] * len(problems)
    if args.recipe in ("corrected", "sampled", "onpolicy"):
        with timings.phase("student answers the tasks (checked by their examples)"):
            student = evaluate_on(args.student, None, problems, args.tasks_parallel)
    greedy = list(student)
    greedy_passes = sum(r is not None and r.passed for r in greedy)
    if args.recipe == "sampled":
        with timings.phase(f"student samples the tasks it fails ({args.samples} tries at temperature {args.temperature})"):
            student = resample_failures(args.student, args, problems, student, args.samples)
    asked = [i for i, r in enumerate(student) if r is None or not r.passed]  # the teacher is needed only there
    if args.recipe == "onpolicy":
        asked = []  # the teacher reads the student's answers in training instead
    which = "the tasks" if len(asked) == len(problems) else f"the {len(asked)} tasks the student fails"
    answers = []
    if asked:
        with timings.phase(f"teacher answers {which} (checked by their examples)"):
            answers = evaluate_on(args.teacher, None, [problems[i] for i in asked], args.tasks_parallel)
    teacher: list[Any] = [None] * len(problems)
    for i, answer in zip(asked, answers):
        teacher[i] = answer
    teacher_greedy = teacher
    if args.teacher_samples:
        neither = [i for i, r in enumerate(teacher) if r is not None and not r.passed]
        with timings.phase(f"teacher samples the tasks no answer passes ({args.teacher_samples} tries at "
                           f"temperature {args.temperature})"):
            tried = resample_failures(args.teacher, args, [problems[i] for i in neither], [teacher[i] for i in neither],
                                      args.teacher_samples)
        teacher = list(teacher)
        for i, result in zip(neither, tried):
            teacher[i] = result
    rows, counts = [], {"student_answers": 0, "teacher_answers": 0, "neither_passes": 0}
    passing_teacher = [i for i, (own, better) in enumerate(zip(student, teacher))
                       if not (own is not None and own.passed) and better is not None and better.passed]
    own_rows = sum(own is not None and own.passed for own in student)
    kept_teacher = capped_teacher_rows(passing_teacher, [teacher[i] for i in passing_teacher], own_rows,
                                       args.teacher_share)
    if len(kept_teacher) < len(passing_teacher):
        counts["teacher_answers_left_out_by_share"] = len(passing_teacher) - len(kept_teacher)
    for i, (problem, own, first, better, teacher_first) in enumerate(zip(problems, student, greedy, teacher, teacher_greedy)):
        if args.recipe == "onpolicy":
            chosen = own if own is not None and own.completion.strip() else None
        else:
            chosen = own if own is not None and own.passed else better if i in kept_teacher else None
        if chosen is None:
            counts["neither_passes"] += better is None or not better.passed
            continue
        counts["student_answers" if chosen is own else "teacher_answers"] += 1
        if chosen is own and own is not first:
            counts["student_samples"] = counts.get("student_samples", 0) + 1
        if chosen is better and better is not teacher_first:
            counts["teacher_samples"] = counts.get("teacher_samples", 0) + 1
        rows.append(chat_row([{"role": "user", "content": build_prompt(problem)}], chosen.completion))
    if len(rows) < 2:
        raise SystemExit(f"{len(rows)} of {len(problems)} tasks have a passing answer: too few to train on")
    if args.epochs:
        args.iters = math.ceil(args.epochs * len(rows) / args.batch_size)
        log(f"   {len(rows)} training rows: {args.epochs:g} epoch(s) at batch {args.batch_size} is {args.iters} iterations")
    train = lora_settings(args)
    out = args.out / training_name(args)
    write_training_set(rows, out / "data")
    key = hashlib.sha256(json.dumps([args.student, rows, train], sort_keys=True).encode()).hexdigest()
    adapter, key_file = out / "adapter.gguf", out / "run-key"
    if not (adapter.is_file() and key_file.is_file() and key_file.read_text() == key
            and adapter.stat().st_mtime >= key_file.stat().st_mtime):
        with timings.phase("training (MLX LoRA) and export"):
            adapter = train_student_adapter(args.student, out / "data", out, train, run_key=key, progress=_log_training)
    task_pass: dict[str, Any] = {}
    if answers:
        task_pass.update(teacher=round(sum(r.passed for r in answers) / len(answers), 3), teacher_tasks=len(answers))
    if args.teacher_samples:
        task_pass["teacher_sampling"] = {"tries": args.teacher_samples, "temperature": args.temperature,
                                         "tasks_tried": len(neither), "now_passing": sum(r.passed for r in tried)}
    if args.recipe in ("corrected", "sampled", "onpolicy"):
        task_pass["student"] = round(greedy_passes / len(problems), 3)
    if args.recipe == "sampled":
        task_pass["student_any_sample"] = round(sum(r.passed for r in student) / len(problems), 3)
        task_pass["student_sampling"] = {"tries": args.samples, "temperature": args.temperature}
    return {"prompts": {"train": len(problems)}, "verdicts": None, "adapter": str(adapter.relative_to(args.out)),
            "training_set": {"rows": len(rows), **counts, "task_example_pass_rate": task_pass},
            "train_settings": train}


def capped_teacher_rows(indices: Sequence[int], answers: Sequence[Any], own_rows: int,
                        share: float | None) -> set[int]:
    """The tasks (of `indices`, whose passing teacher answers are `answers`) whose teacher
    answer is trained on when at most `share` of all rows may be the teacher's next to
    `own_rows` of the student's: the shortest answers (fewest tokens), the nearest to what
    the student writes itself. No share keeps them all."""
    if share is None:
        return set(indices)
    room = math.floor(share * own_rows / (1 - share) + 1e-9) if share < 1 else len(indices)
    by_length = sorted(zip(indices, answers), key=lambda pair: (pair[1].completion_tokens, pair[0]))
    return {i for i, _ in by_length[:room]}


def resample_failures(model: str, args: argparse.Namespace, problems: Sequence[Any], results: Sequence[Any],
                      tries: int) -> list[Any]:
    """Replace each failing result by `model`'s first passing sample (seeds 1..tries)."""
    from llamarch.evals.humaneval import EvalSettings

    results = list(results)
    for seed in range(1, tries + 1):
        failing = [i for i, r in enumerate(results) if not r.passed]
        if not failing:
            break
        settings = EvalSettings(temperature=args.temperature, seed=seed)
        samples = evaluate_on(model, None, [problems[i] for i in failing], args.tasks_parallel, settings)
        for i, result in zip(failing, samples):
            if result.passed:
                results[i] = result
        log(f"   {model} sample {seed}: {sum(r.passed for r in samples)} of {len(failing)} failing tasks now pass")
    return results


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
    from llamarch.patterns.student_teacher.roles import Teacher
    from llamarch.store import Store, result_key

    problems = {p.task_id: p for p in load_problems()}
    half = args.judge_subset // 2
    chosen = [r for r in results if r.passed][:half] + [r for r in results if not r.passed][:half]
    pairs = [(build_prompt(problems[r.task_id]), r.completion) for r in chosen]
    options = {"temperature": 0.0, "max_tokens": 256, "seed": 0}
    with Store(args.out / "judge.db") as store:
        keys = [result_key("he-judge", args.teacher, q, a, options) for q, a in pairs]
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
        raise SystemExit(f"--judged-from {path}: not a `llamarch eval judge --out` report ({e}); "
                         "run that command with --out first") from None
    return [{"task_id": r["task_id"], "passed": r["passed"], "score": (r.get("verdict") or {}).get("score"),
             "valid": (r.get("verdict") or {}).get("valid", False)} for r in rows]


def plot(path: Path, bars: dict[str, float], judged: list[dict[str, Any]] | None, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2 if judged else 1, figsize=(11 if judged else 5.5, 4.2), squeeze=False)
    ax = axes[0][0]
    names = list(bars)
    ax.bar(names, [bars[n] for n in names], color=["#8da0cb", "#66c2a5", "#fc8d62"][:len(names)])
    for i, n in enumerate(names):
        ax.text(i, bars[n] + 0.5, f"{bars[n]:.1f}", ha="center", va="bottom")
    ax.set_ylabel("HumanEval pass@1 (%)")
    ax.set_ylim(0, max(bars.values()) * 1.2 + 1)
    ax.set_title(title, fontsize=9)
    if judged:
        ax = axes[0][1]
        bins = list(range(1, 12))
        groups = [[j["score"] for j in judged if j["passed"] == passed and j["score"] is not None] for passed in (True, False)]
        ax.hist(groups, bins=bins, color=["#66c2a5", "#e78ac3"], align="left", rwidth=0.85,
                label=[f"student passes (n={len(groups[0])})", f"student fails (n={len(groups[1])})"])
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


def seed_list(text: str) -> list[int]:
    try:
        seeds = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of seeds, like 0,1") from None
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"{text!r} repeats a seed")
    return seeds


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("runs/distill-humaneval"), help="run directory (rerun to resume)")
    ap.add_argument("--student", default="qwen2.5-coder-0.5b")
    ap.add_argument("--teacher", default="qwen2.5-coder-1.5b")
    ap.add_argument("--prompts", type=int, default=120, help="how many of the shipped tasks to distill on")
    ap.add_argument("--recipe", choices=("judge", "verified", "corrected", "sampled", "onpolicy"), default="judge",
                    help="judge: `llamarch distill` (teacher judges and improves the student's answers); "
                         "verified: the teacher's answers that pass the task's example; corrected: the "
                         "student's passing answers, the teacher's passing ones where the student fails; "
                         "sampled: as corrected, the student first sampling the tasks it fails; onpolicy: the "
                         "student's own answers to every task, trained on the teacher's next-token probabilities only")
    ap.add_argument("--samples", type=int, default=4, help="sampled recipe: tries per failing task")
    ap.add_argument("--teacher-samples", type=int, default=0,
                    help="verified/corrected/sampled: the teacher's tries at tasks no greedy answer passes")
    ap.add_argument("--teacher-share", type=float, help="corrected/sampled: at most this fraction of the training "
                    "rows are the teacher's answers (its shortest are kept); default: all of them")
    ap.add_argument("--temperature", type=float, default=0.8, help="sampling temperature (--samples, --teacher-samples)")
    ap.add_argument("--min-score", type=int, default=11, help="judge recipe: 11 makes every training target the teacher's answer")
    ap.add_argument("--max-tokens", type=int, default=320, help="most tokens per student answer")
    ap.add_argument("--judge-max-tokens", type=int, default=512, help="most tokens per verdict")
    ap.add_argument("--iters", type=int, default=40)
    ap.add_argument("--epochs", type=float, help="checked recipes: train this many passes over the rows "
                    "(sets --iters once the rows are known)")
    ap.add_argument("--distill-weight", type=float, default=0.0, help="checked recipes: this share of the loss is the "
                    "cross-entropy against the teacher's top-k next-token probabilities on the training answers")
    ap.add_argument("--distill-top-k", type=int, default=16, help="with --distill-weight: the teacher's tokens kept per position")
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--layers", type=int, default=8, help="LoRA on the last N blocks")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--train-seed", type=int, default=0, help="training order seed (rerun a recipe to see its spread)")
    ap.add_argument("--average-seeds", type=seed_list, help="train with each of these seeds (e.g. 0,1) and "
                    "evaluate the average of their adapters (an execution-checked recipe only)")
    ap.add_argument("--tag", help="label for a variant of the settings (names its run directory and results apart)")
    ap.add_argument("--parallel", type=int, default=4, help="sequences decoded at once")
    ap.add_argument("--tasks-parallel", type=int, help="sequences decoded at once while the models answer the "
                    "training tasks (default: --parallel); HumanEval keeps --parallel, since a batch's makeup "
                    "shifts llama.cpp's rounding and so a few greedy replies")
    ap.add_argument("--limit", type=int, help="HumanEval problems (default: all 164)")
    ap.add_argument("--no-teacher-eval", action="store_true", help="leave the teacher's HumanEval run out (rerun without to add it)")
    ap.add_argument("--judge-subset", type=int, default=30, help="student HumanEval answers the teacher scores (0: none)")
    ap.add_argument("--judged-from", type=Path, help="take the score histogram from `llamarch eval judge --out FILE` "
                    "(the same student) instead of judging a subset here")
    ap.add_argument("--overlap-only", action="store_true", help="check the prompt set against HumanEval and stop")
    ap.add_argument("--no-copy", action="store_true", help="do not copy the JSON and plot to benchmarks/results/")
    args = ap.parse_args(argv)
    if args.tasks_parallel is not None and args.tasks_parallel < 1:
        ap.error(f"--tasks-parallel {args.tasks_parallel}: give 1 or more sequences")
    args.tasks_parallel = args.tasks_parallel or args.parallel
    if args.average_seeds and (args.recipe == "judge" or len(args.average_seeds) < 2):
        ap.error("--average-seeds takes two or more seeds, with the verified, corrected or sampled recipe")
    if args.teacher_share is not None and (args.recipe not in ("corrected", "sampled") or not 0 <= args.teacher_share <= 1):
        ap.error("--teacher-share takes a fraction from 0 to 1, with the corrected or sampled recipe")
    if args.distill_weight and (args.recipe == "judge" or not 0 < args.distill_weight <= 1 or args.distill_top_k < 1):
        ap.error("--distill-weight takes a fraction above 0 up to 1 (and --distill-top-k 1 or more), with a checked recipe")
    if args.recipe == "onpolicy":
        if args.distill_weight not in (0, 1) or args.teacher_samples:
            ap.error("--recipe onpolicy trains on the teacher's probabilities alone (--distill-weight 1) and asks "
                     "the teacher for no answers (no --teacher-samples)")
        args.distill_weight = 1.0
    if args.epochs is not None and (args.recipe == "judge" or args.epochs <= 0):
        ap.error("--epochs takes a positive number, with the verified, corrected or sampled recipe")
    if args.tag and not re.fullmatch(r"[A-Za-z0-9_.-]+", args.tag):
        ap.error(f"--tag {args.tag!r}: use letters, digits, '.', '_' or '-' (it names a directory)")

    if not args.overlap_only and importlib.util.find_spec("matplotlib") is None:
        ap.error("the plot needs matplotlib, which is not installed: pip install -e '.[bench]'")

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

    prompts_file = args.out / "prompts.jsonl"
    write_jsonl(prompts_file, ({"prompt": task_prompt(t["stub"]), "entry_point": t["entry_point"]} for t in tasks[:args.prompts]))

    if args.average_seeds:
        report = run_averaged(args, tasks, timings)
        adapter = args.out / report["adapter"]
    elif args.recipe in ("verified", "corrected", "sampled", "onpolicy"):
        report = run_verified(args, tasks, timings)
        adapter = args.out / report["adapter"]
    else:
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
    judged = None
    if args.judged_from:
        judged = judged_from(args.judged_from)
    elif args.judge_subset:
        with timings.phase("teacher judges student HumanEval answers"):
            judged = judge_subset(args, base)

    scores = {"student": pass_at_1(base), "student + adapter": pass_at_1(tuned)}
    if teacher is not None:
        scores["teacher"] = pass_at_1(teacher)
    flips = {"fixed": sum(not b.passed and t.passed for b, t in zip(base, tuned)),
             "broken": sum(b.passed and not t.passed for b, t in zip(base, tuned))}
    result = {
        "student": args.student, "teacher": args.teacher,
        "settings": {"recipe": args.recipe, "prompts": args.prompts, "min_score": args.min_score, "max_tokens": args.max_tokens,
                     "judge_max_tokens": args.judge_max_tokens, "parallel": args.parallel,
                     "lora": report["train_settings"], "humaneval": "greedy pass@1, llamarch eval defaults (max_tokens 768)"},
        "data": {"tasks_shipped": len(tasks), "prompts_used": report["prompts"]["train"],
                 "verdicts": report["verdicts"], "training_set": report["training_set"]},
        "overlap_with_humaneval": overlap,
        "humaneval_problems": len(base),
        "pass@1": scores,
        "delta_adapter_vs_student": round(scores["student + adapter"] - scores["student"], 2),
        "gap_closed": (round((scores["student + adapter"] - scores["student"]) / (scores["teacher"] - scores["student"]), 3)
                       if scores.get("teacher", scores["student"]) != scores["student"] else None),
        "problems_fixed_broken": flips,
        "paired_difference": paired_difference(flips["fixed"], flips["broken"], len(base)),
        "teacher_scores_on_student_answers": _score_summary(judged) if judged else None,
        "wall_s": {k: v for k, v in timings.now.items()},
        "wall_s_all_invocations": {k: sum(v) for k, v in timings.data.items()},
    }
    (args.out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "humaneval.json").write_text(json.dumps(
        {name: [r.to_dict() for r in rs] for name, rs in (("student", base), ("student+adapter", tuned), ("teacher", teacher or []))}) + "\n")
    if judged:
        (args.out / "judged.json").write_text(json.dumps(judged, indent=1) + "\n")
    data = (f"min-score {args.min_score}" if args.recipe == "judge"
            else f"{report['training_set']['rows']} answers checked by execution")
    title = (f"{args.student} distilled from {args.teacher} ({args.recipe} recipe)\n{report['prompts']['train']} prompts, "
             f"{data}, LoRA r{args.rank} lr {args.lr:g} {args.iters} iters"
             + (f", mean of seeds {','.join(map(str, args.average_seeds))}" if args.average_seeds else ""))
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
            "n": len(scores), "mean": round(sum(scores) / len(scores), 2) if scores else None,
            "histogram": {s: scores.count(s) for s in sorted(set(scores))}}
    return out


if __name__ == "__main__":
    sys.exit(main())
