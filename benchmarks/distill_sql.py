"""Verified distillation on a SQLite database, full size: the figures of `make demo` and more.

A thin driver over the library (`llamarch.patterns.student_teacher.verified`): the teacher
writes the training questions, samples K queries each with context the student never
gets, execution keeps what agrees, the student learns it, and every held-out question is
scored by execution for the student, the student with the adapter, and the teacher greedy
and amplified. Then, in the same run:

- `humaneval`: HumanEval pass@1 of the student with and without the adapter, paired by
  problem (McNemar's p, 95% interval), so that damage to general coding shows (skip with
  --no-humaneval);
- `prompt_cache`: prompt tokens evaluated per question (the schema prefix is read once per
  run, not once per question or sample);
- `k_samples`: the K-sample teacher (one prompt, K sequences sharing its KV cache) against K
  independent requests, median of --runs after a warm-up, and their ratio;
- `k_batching`: the teacher's K samples of --batching-questions questions, all in one batch
  (what the library does: a finished sequence's slot takes the next sample at once) against
  one batch per question (each waiting for its slowest sample), median of --runs after a
  warm-up, and their ratio;
- `flash_attn`: the same one batch with llama.cpp's flash attention off (the default) and on,
  from an empty cache (`cold`: the schema prefix read) and with the prefix cached (`warm`:
  every later question of a run), median of --runs after a warm-up, the ratios, and how
  many samples came out the same;
- `settle`: the same one batch with every sample run against each question's samples
  stopped once its vote is decided (`--settle`), prefix cached, median of --runs after a
  warm-up, the ratio, and whether the same results were voted for.

Prints one JSON object and writes DIR/report.png.

    flock /tmp/llamarch-heavy.lock python benchmarks/distill_sql.py --out runs/distill-sql \\
        [--db llamarch/data/chinook/Chinook_Sqlite.sqlite] [--questions llamarch/data/chinook/test.jsonl] \\
        [--synthesize 300] [--samples 8] [--recipe corrected] [--epochs 2] [--config FILE.json]

`--config FILE.json` holds any of these options as keys (one small file per experiment).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHINOOK = ROOT / "llamarch" / "data" / "chinook"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from llamarch.sql.prompt import STUDENT_SCHEMA, STUDENT_VALUES
    from llamarch.sql.schema import SCHEMA_STYLES

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--db", type=Path, default=CHINOOK / "Chinook_Sqlite.sqlite")
    p.add_argument(
        "--questions", type=Path, default=CHINOOK / "test.jsonl", help="held-out questions with reference SQL"
    )
    p.add_argument("--prompts", type=Path, help="training questions (JSONL); added to --synthesize")
    p.add_argument("--synthesize", type=int, default=300)
    p.add_argument(
        "--from-queries", type=int, default=0, help="queries built from the data, with teacher-written questions"
    )
    p.add_argument("--query-seed", type=int, help="the seed of the built queries (default: the run's seed)")
    p.add_argument(
        "--confirm-questions",
        action="store_true",
        help="built one-table questions kept only when answered to the query's result",
    )
    p.add_argument("--student", default="qwen2.5-coder-0.5b")
    p.add_argument("--teacher", default="qwen2.5-coder-1.5b")
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--sample-temperature", type=float, default=0.7)
    p.add_argument("--min-votes", type=int, default=2, help="samples that must share a result for it to be accepted")
    p.add_argument(
        "--settle",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="stop a question's samples once its vote is decided (--no-settle: as the runs before 2026-12-03)",
    )
    p.add_argument("--recipe", default="corrected", choices=["corrected", "verified"])
    p.add_argument("--student-schema", default=STUDENT_SCHEMA, choices=SCHEMA_STYLES)
    p.add_argument(
        "--student-values",
        action=argparse.BooleanOptionalAction,
        default=STUDENT_VALUES,
        help="the values of short text columns in the student's prompt",
    )
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--learning-rate", type=float, default=1e-4)
    p.add_argument("--num-layers", type=int, default=16)
    p.add_argument("--max-seq-length", type=int, default=1024, help="longest training row in tokens")
    p.add_argument("--eval-limit", type=int)
    p.add_argument(
        "--no-teacher-eval",
        action="store_true",
        help="score only the student and the adapter on the held-out questions",
    )
    p.add_argument("--no-humaneval", action="store_true")
    p.add_argument("--runs", type=int, default=3, help="trials of the k_samples, k_batching and flash_attn timings")
    p.add_argument(
        "--batching-questions", type=int, default=8, help="questions of the k_batching and flash_attn timings"
    )
    p.add_argument(
        "--only",
        choices=["k_samples", "k_batching", "flash_attn", "settle", "prompt_cache"],
        help="run just this measurement",
    )
    p.add_argument(
        "--no-timings",
        action="store_true",
        help="leave out the prompt_cache, k_samples, k_batching and flash_attn measurements "
        "(they depend on the engine, not on the run's data or training settings)",
    )
    p.add_argument("--config", type=Path)
    args = p.parse_args(argv)
    if args.config:
        for key, value in json.loads(args.config.read_text()).items():
            setattr(args, key.replace("-", "_"), value)
    return args


def distill(args: argparse.Namespace) -> dict[str, Any]:
    from llamarch.cli.distill import CliProgress
    from llamarch.patterns.student_teacher.verified import VerifiedConfig, VerifiedDistiller

    config = VerifiedConfig(
        out=args.out,
        db=args.db,
        student=args.student,
        teacher=args.teacher,
        prompts=args.prompts,
        eval_questions=args.questions,
        synthesize=args.synthesize,
        from_queries=args.from_queries,
        query_seed=args.query_seed,
        confirm_questions=args.confirm_questions,
        samples=args.samples,
        sample_temperature=args.sample_temperature,
        min_votes=args.min_votes,
        settle=args.settle,
        recipe=args.recipe,
        student_schema=args.student_schema,
        student_values=args.student_values,
        eval_limit=args.eval_limit,
        evaluate_teacher=not args.no_teacher_eval,
        train_settings={
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "learning_rate": args.learning_rate,
            "num_layers": args.num_layers,
            "max_seq_length": args.max_seq_length,
        },
    )
    return VerifiedDistiller(config, CliProgress()).run()


def humaneval(args: argparse.Namespace, adapter: Path) -> dict[str, Any]:
    """HumanEval pass@1 of the student with and without the adapter, paired by problem.

    Both run here (stored results resume), so the change comes with McNemar's p and its
    interval, as every other before/after figure of this benchmark.
    """
    from llamarch.evals.humaneval import EvalSettings, evaluate, identify, load_problems
    from llamarch.evals.stats import compare_paired
    from llamarch.llm import LLM
    from llamarch.store import Store

    problems = load_problems()
    passed: dict[str, dict[str, bool]] = {}
    with Store(args.out / "humaneval.db") as store:
        for name, lora in (("student", None), ("adapter", str(adapter))):
            with LLM(args.student, lora_path=lora) as llm:
                run = evaluate(
                    llm, problems, identity=identify(args.student, None, lora), settings=EvalSettings(), store=store
                )
            passed[name] = {r.task_id: r.passed for r in run.results}
    ids = [p.task_id for p in problems]
    change = compare_paired([passed["student"][t] for t in ids], [passed["adapter"][t] for t in ids])
    return {
        "adapter_pass@1": change["after"],
        "student_pass@1": change["before"],
        "delta_points": change["delta_points"],
        "change": change,
    }


def _questions(args: argparse.Namespace, n: int) -> list[Any]:
    from llamarch.sql.guard import open_readonly
    from llamarch.sql.questions import load_questions

    return load_questions(args.questions, open_readonly(args.db))[:n]


def prompt_cache(args: argparse.Namespace, n: int = 12) -> dict[str, Any]:
    """Prompt tokens llama.cpp evaluates per question when n questions share the schema prefix."""
    from llamarch.evals.checkers import SQLChecker
    from llamarch.evals.sql import SQLSettings, schema_text
    from llamarch.llm import LLM
    from llamarch.sql.prompt import sql_messages

    checker = SQLChecker(args.db)
    schema = schema_text(checker, SQLSettings(schema=args.student_schema, distinct=args.student_values))
    messages = [sql_messages(q.question, schema) for q in _questions(args, n)]
    with LLM(args.student, n_ctx=4096) as llm:
        lengths = [len(llm.backend.prompt_tokens(m)[0]) for m in messages]
        replies = llm.generate_batch(messages, temperature=0.0, max_tokens=64)
        run = llm.backend._batch_engine.last_run
    generated = sum(r.stats.completion_tokens + 1 for r in replies)
    evaluated = run["decoded_tokens"] - generated
    return {
        "questions": n,
        "prompt_tokens_per_question": round(statistics.mean(lengths), 1),
        "evaluated_prompt_tokens_per_question": round(evaluated / n, 1),
        "shared_prefix_share": round(1 - evaluated / sum(lengths), 3),
    }


def forget(llm: Any) -> None:
    """Empty the batch engine's prompt cache."""
    if llm.backend._batch_engine is not None:
        llm.backend._batch_engine.clear()


def k_samples(args: argparse.Namespace, n: int = 2) -> dict[str, Any]:
    """K samples of a question as one batch (shared prompt cache) vs K independent requests."""
    from llamarch.evals.checkers import SQLChecker
    from llamarch.evals.sql import SQLSettings, schema_text
    from llamarch.llm import LLM
    from llamarch.sql.prompt import sql_messages

    checker = SQLChecker(args.db)
    settings = SQLSettings(schema="ddl", sample_rows=3, distinct=True)
    schema = schema_text(checker, settings)
    k = args.samples
    options = {"temperature": args.sample_temperature, "max_tokens": 96, "seed": 1}
    batched, independent = [], []
    with LLM(args.teacher, n_ctx=8192) as llm:
        questions = _questions(args, n + 1)
        for trial in range(args.runs + 1):  # trial 0 is the warm-up
            m = sql_messages(questions[trial % len(questions)].question, schema)
            forget(llm)  # both start from an empty cache
            t0 = time.perf_counter()
            got = llm.generate_batch([m] * k, **options)
            tb = time.perf_counter() - t0
            tokens_b = sum(r.stats.completion_tokens for r in got)
            t0 = time.perf_counter()
            tokens_i = 0
            for j in range(k):
                forget(llm)  # an independent request reads its whole prompt
                tokens_i += llm.generate_batch([m], **{**options, "seed": 1 + j})[0].stats.completion_tokens
            ti = time.perf_counter() - t0
            if trial:
                batched.append(tokens_b / tb)
                independent.append(tokens_i / ti)
    b, i = statistics.median(batched), statistics.median(independent)
    return {
        "k": k,
        "runs": args.runs,
        "batched_tok_per_s": round(b, 2),
        "independent_tok_per_s": round(i, 2),
        "ratio": round(b / i, 2),
    }


def _teacher_samples(args: argparse.Namespace, n: int) -> tuple[Any, list[Any]]:
    """The teacher's K-sample settings (the distiller's context) and the prompts of n questions."""
    from llamarch.evals.checkers import SQLChecker
    from llamarch.evals.sql import SQLSettings, schema_text
    from llamarch.sql.prompt import sql_messages

    settings = SQLSettings(
        schema="ddl", sample_rows=3, distinct=True, samples=args.samples, temperature=args.sample_temperature
    )
    schema = schema_text(SQLChecker(args.db), settings)
    return settings, [sql_messages(q.question, schema) for q in _questions(args, n)]


def k_batching(args: argparse.Namespace) -> dict[str, Any]:
    """Every question's K samples in one batch against one batch per question, as `eval sql -k K` asks them."""
    import tempfile

    from llamarch.evals.sql import generate_replies
    from llamarch.llm import LLM
    from llamarch.store import Store

    settings, (warm, *rest) = _teacher_samples(args, args.batching_questions + 1)
    seconds: dict[str, list[float]] = {"one_batch": [], "per_question": []}
    tokens: dict[str, list[int]] = {"one_batch": [], "per_question": []}
    with LLM(args.teacher, n_ctx=8192) as llm, tempfile.TemporaryDirectory() as tmp:

        def timed(groups: list[list[Any]], name: str) -> tuple[float, int]:
            store = Store(Path(tmp) / f"{name}.db")  # a new store: no reply is stored yet
            forget(llm)
            t0, n = time.perf_counter(), 0
            for group in groups:
                replies, _ = generate_replies(llm, group, settings, store=store, model_key=args.teacher)
                n += sum(r["completion_tokens"] for r in replies)
            return time.perf_counter() - t0, n

        timed([[warm]], "warm-up")
        for trial in range(args.runs):
            ways = {"one_batch": [rest], "per_question": [[m] for m in rest]}
            for name in sorted(ways, reverse=bool(trial % 2)):  # alternate which goes first
                t, n = timed(ways[name], f"{name}-{trial}")
                seconds[name].append(t)
                tokens[name].append(n)
                _log_trial("k_batching", name, trial, t, n)
    return {"questions": len(rest), "k": args.samples, "runs": args.runs} | _timed_pair(
        seconds, tokens, baseline="per_question", candidate="one_batch"
    )


def flash_attention(args: argparse.Namespace) -> dict[str, Any]:
    """The teacher's K samples in one batch with llama.cpp's flash attention off and on, each
    timed twice: `cold` from an empty cache (the schema prefix is read, as by a run's first
    batch) and `warm` with the prefix cached (what every later question of a run costs). A
    cold trial of a few questions is mostly the prefix: on 2 AVX2 cores 3,070 tokens take
    about 100 s, two questions' 16 samples about 25 s."""
    import tempfile

    from llamarch.evals.sql import generate_replies
    from llamarch.llm import LLM
    from llamarch.store import Store

    settings, (warm_up, *rest) = _teacher_samples(args, args.batching_questions + 1)
    ways = [f"{fa}_{cache}" for fa in ("off", "on") for cache in ("cold", "warm")]
    seconds: dict[str, list[float]] = {w: [] for w in ways}
    tokens: dict[str, list[int]] = {w: [] for w in ways}
    texts: dict[str, list[str]] = {}
    with (
        LLM(args.teacher, n_ctx=8192) as off,
        LLM(args.teacher, n_ctx=8192, flash_attn=True) as on,
        tempfile.TemporaryDirectory() as tmp,
    ):
        llms = {"off": off, "on": on}

        def timed(name: str, messages: list[Any], run: str, cold: bool) -> tuple[float, int, list[str]]:
            store = Store(Path(tmp) / f"{name}-{run}-{cold}.db")  # a new store: no reply is stored yet
            if cold:
                forget(llms[name])
            t0 = time.perf_counter()
            replies, _ = generate_replies(llms[name], messages, settings, store=store, model_key=args.teacher)
            elapsed = time.perf_counter() - t0
            return elapsed, sum(r["completion_tokens"] for r in replies), [t for r in replies for t in r["replies"]]

        for name in llms:
            timed(name, [warm_up], "warm-up", cold=True)
        for trial in range(args.runs):
            for name in sorted(llms, reverse=bool(trial % 2)):  # alternate which goes first
                for cache in ("cold", "warm"):  # warm right after cold: the prefix is in the cache
                    way = f"{name}_{cache}"
                    t, n, texts[way] = timed(name, rest, str(trial), cold=cache == "cold")
                    seconds[way].append(t)
                    tokens[way].append(n)
                    _log_trial("flash_attn", way, trial, t, n)

    def pair(cache: str) -> dict[str, Any]:
        return _timed_pair(
            {k: seconds[f"{k}_{cache}"] for k in llms},
            {k: tokens[f"{k}_{cache}"] for k in llms},
            baseline="off",
            candidate="on",
        )

    return {
        "questions": len(rest),
        "k": args.samples,
        "runs": args.runs,
        "cold": pair("cold"),
        "warm": pair("warm"),
        "same_samples": sum(a == b for a, b in zip(texts["off_warm"], texts["on_warm"])),
        "samples_compared": len(texts["off_warm"]),
    }


def settling(args: argparse.Namespace) -> dict[str, Any]:
    """The teacher's K samples of --batching-questions questions in one batch, every sample run
    against each question's samples stopped once its vote is decided (`--settle`), prefix
    cached (after a warm-up), median of --runs; and whether the answers voted for are the same
    result, with the accuracy of both, paired."""
    import tempfile
    from dataclasses import replace

    from llamarch.evals.checkers import SQLChecker, Task
    from llamarch.evals.sql import evaluate
    from llamarch.evals.stats import compare_paired
    from llamarch.evals.vote import MIN_VOTES
    from llamarch.llm import LLM
    from llamarch.store import Store

    full, _ = _teacher_samples(args, 0)
    ways = {"all_k": full, "settled": replace(full, settle_votes=MIN_VOTES)}
    warm_up, *questions = _questions(args, args.batching_questions + 1)
    checker = SQLChecker(args.db)
    seconds: dict[str, list[float]] = {w: [] for w in ways}
    tokens: dict[str, list[int]] = {w: [] for w in ways}
    rows: dict[str, list[dict[str, Any]]] = {}
    with LLM(args.teacher, n_ctx=8192) as llm, tempfile.TemporaryDirectory() as tmp:

        def timed(way: str, items: list[Any], run: str) -> tuple[float, int, list[dict[str, Any]]]:
            with Store(Path(tmp) / f"{way}-{run}.db") as store:  # a new store: no reply is stored yet
                t0 = time.perf_counter()
                got = evaluate(llm, checker, items, ways[way], store=store, model_key=args.teacher)
                elapsed = time.perf_counter() - t0
            return elapsed, got["summary"]["completion_tokens"], got["results"]

        timed("all_k", [warm_up], "warm-up")  # reads the schema prefix: every trial after finds it cached
        for trial in range(args.runs):
            for way in sorted(ways, reverse=bool(trial % 2)):  # alternate which goes first
                t, n, rows[way] = timed(way, questions, str(trial))
                seconds[way].append(t)
                tokens[way].append(n)
                _log_trial("settle", way, trial, t, n)

    def result_of(row: dict[str, Any]) -> str | None:
        return checker(Task(row["question"]), row["reply"]).signature

    same = sum(result_of(a) == result_of(b) for a, b in zip(rows["all_k"], rows["settled"]))
    return {
        "questions": len(questions),
        "k": args.samples,
        "runs": args.runs,
        "same_result_voted": same,
        "accuracy": compare_paired([r["matched"] for r in rows["all_k"]], [r["matched"] for r in rows["settled"]]),
    } | _timed_pair(seconds, tokens, baseline="all_k", candidate="settled")


def _log_trial(measurement: str, way: str, trial: int, seconds: float, tokens: int) -> None:
    """One timed trial on stderr as it ends, so that a run stopped early still shows what it measured."""
    print(f"{measurement}: {way} trial {trial + 1}: {seconds:.1f} s, {tokens} tokens", file=sys.stderr, flush=True)


def _timed_pair(
    seconds: dict[str, list[float]], tokens: dict[str, list[int]], *, baseline: str, candidate: str
) -> dict[str, Any]:
    """Median seconds and tok/s of two ways over the same runs, and the candidate's speed-up."""
    median = {name: statistics.median(ts) for name, ts in seconds.items()}
    return {
        **{f"{name}_s": round(median[name], 1) for name in (candidate, baseline)},
        **{
            f"{name}_tok_per_s": round(statistics.median(tokens[name]) / median[name], 2)
            for name in (candidate, baseline)
        },
        "completion_tokens": tokens,
        "seconds": {name: [round(t, 1) for t in ts] for name, ts in seconds.items()},
        "speedup": round(median[baseline] / median[candidate], 2),
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {}
    if args.only is None:
        report = distill(args)
        ev = report["evaluation"]
        result = {
            "settings": report["settings"],
            "questions": report["questions"],
            "training_set": report["training_set"],
            "models": ev["models"],
            "student_change": ev.get("student_change"),
            "plot": str(args.out / "report.png"),
        }
        if report["adapter"] and not args.no_humaneval:
            result["humaneval"] = humaneval(args, args.out / report["adapter"])
    timings = not args.no_timings or args.only is not None
    if timings and args.only in (None, "prompt_cache"):
        result["prompt_cache"] = prompt_cache(args)
    if timings and args.only in (None, "k_samples"):
        result["k_samples"] = k_samples(args)
    if timings and args.only in (None, "k_batching"):
        result["k_batching"] = k_batching(args)
    if timings and args.only in (None, "flash_attn"):
        result["flash_attn"] = flash_attention(args)
    if timings and args.only in (None, "settle"):
        result["settle"] = settling(args)
    (args.out / "benchmark.json").write_text(json.dumps(result, indent=2) + "\n")
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
