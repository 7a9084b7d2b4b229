"""Execution accuracy of a model on text-to-SQL questions about one SQLite database.

A prediction matches when its result equals the reference query's (as a multiset of
rows; in order when the reference has ORDER BY). Every reply is stored as it finishes,
so a run stopped at any point resumes without answering again. With `samples` > 1 the
model samples that many queries per question and the one whose result most of them
share is its answer (self-consistency); the reference never takes part in that vote.
With `retry`, a prediction that does not run gets the one retry `llamarch sql` gives it
(`sql.ask.Asker.ask`: SQLite's error and what the schema says about it), so the figure is
what a user of `llamarch sql` gets.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence, Set
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from typing import Any

from ..backends.base import sequence_seed
from ..sql.prompt import STOPS
from .checkers import Check, SQLChecker, Task
from .vote import Settler, pick, vote

HARNESS_VERSION = 1


@dataclass(frozen=True)
class SQLSettings:
    """How questions are asked: the schema in the prompt, sampling, and extra context."""

    schema: str = "compact"  # one of sql.schema.SCHEMA_STYLES
    sample_rows: int = 0  # example rows per table in the prompt
    distinct: bool = False  # the values of short text columns in the prompt
    notes: str | None = None  # the user's notes about the data
    samples: int = 1  # >1: vote over this many samples
    temperature: float = 0.0  # of the samples (0 with samples == 1: greedy)
    max_tokens: int = 256
    seed: int = 0
    retry: bool = False  # a prediction that fails to run gets `llamarch sql`'s one retry
    # >0: a question's samples stop once its vote is decided with at least this many agreeing
    # (`vote.Settler`); the vote accepts what all `samples` would have, for fewer tokens.
    settle_votes: int = 0

    def key(self) -> dict[str, Any]:
        """What the first replies depend on (the retry does not change them: its replies have their own keys)."""
        fields = asdict(self)
        del fields["retry"]
        if not self.settle_votes or self.samples <= 1:  # keys stored before the field existed
            del fields["settle_votes"]
        return {**fields, "harness": HARNESS_VERSION}


def schema_text(checker: SQLChecker, settings: SQLSettings) -> str:
    """The database as the prompt describes it, read from the database itself."""
    from ..sql.schema import describe

    return describe(
        checker.conn,
        style=settings.schema,
        sample_rows=settings.sample_rows,
        distinct=settings.distinct,
        notes=settings.notes,
    )


def question_seed(seed: int, question: str) -> int:
    """A seed per question, so each question's samples do not depend on which others ran."""
    digest = hashlib.blake2b(f"{seed}\x1f{question}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little") & 0x7FFFFFFF


def generate_replies(
    llm: Any,
    messages: Sequence[Any],
    settings: SQLSettings,
    *,
    store: Any,
    model_key: Any,
    parallel: int | None = None,
    advance: Callable[[int], None] | None = None,
    check: Callable[[int, str], Check] | None = None,
    exempt: Set[int] = frozenset(),
) -> tuple[list[dict[str, Any]], float]:
    """Each prompt's replies ({"replies": [...], "completion_tokens": n}), stored as they finish.

    Greedy prompts go through the engine as one batch; sampled ones too, `samples` sequences
    per prompt, each prompt stored once all of its samples are in. With `settings.settle_votes`,
    `check(i, reply)` checks each sample of prompt i as it finishes, and the rest of a prompt's
    samples are dropped once its vote is decided (prompts in `exempt` excepted; the result
    then has fewer replies and says how many were "dropped"). Returns the replies and, when
    this call generated all of them, the seconds it took (else 0).
    """
    from ..store import result_key

    keys = [result_key("sql-replies", model_key, m, settings.key()) for m in messages]
    results: list[dict[str, Any] | None] = [store.get_result("sql-replies", k) for k in keys]
    todo = [i for i, r in enumerate(results) if r is None]
    if advance:
        advance(len(messages) - len(todo))
    options = {"temperature": settings.temperature, "max_tokens": settings.max_tokens, "stop": list(STOPS)}
    t0 = time.perf_counter()
    if not todo:
        pass  # all stored: the model is not even opened
    elif settings.samples <= 1:
        for j, text, stats in _replies(llm, [messages[i] for i in todo], parallel, seed=settings.seed, **options):
            i = todo[j]
            results[i] = {"replies": [text], "completion_tokens": stats.completion_tokens}
            _save(store, keys[i], results[i])
            if advance:
                advance(1)
    else:
        # Every question's samples in one batch, each with the seeds it would get alone, so
        # the engine keeps all its sequences busy (a new one starts as soon as one finishes)
        # and a question's samples do not depend on what they were batched with.
        k = settings.samples
        prompts = [messages[i] for i in todo for _ in range(k)]
        seeds = [sequence_seed(question_seed(settings.seed, repr(messages[i])), j) for i in todo for j in range(k)]
        settler = _settler(settings, check, exempt)
        settled: set[int] = set()
        if settler is not None:
            options["drop"] = lambda n: todo[n // k] in settled
        got: dict[int, list[tuple[int, str, Any]]] = {}
        for n, text, stats in _replies(llm, prompts, parallel, seeds=seeds, **options):
            i = todo[n // k]
            got.setdefault(i, []).append((n % k, text, stats))
            if settler is not None and stats.finish_reason != "dropped" and settler.add(i, text):
                settled.add(i)
            if len(got[i]) < k:
                continue
            done = sorted(got.pop(i), key=lambda g: g[0])
            kept = [(text, stats) for _, text, stats in done if stats.finish_reason != "dropped"]
            results[i] = {
                "replies": [text for text, _ in kept],
                "completion_tokens": sum(stats.completion_tokens for _, _, stats in done),
            }
            if len(kept) < k:
                results[i]["dropped"] = k - len(kept)
            _save(store, keys[i], results[i])
            if advance:
                advance(1)
    seconds = time.perf_counter() - t0 if len(todo) == len(messages) else 0.0
    return [r for r in results if r is not None], seconds


def _settler(settings: SQLSettings, check: Callable[[int, str], Check] | None, exempt: Set[int]) -> Settler | None:
    if not settings.settle_votes or settings.samples <= 1:
        return None
    if check is None:
        raise ValueError("settle_votes needs a check of each sample")
    return Settler(check, settings.samples, settings.settle_votes, exempt)


def _save(store: Any, key: str, value: Any) -> None:
    """Store one prompt's replies; a full disk or a read-only store is one line, and what was saved stays."""
    with store.guard():
        store.put_result("sql-replies", key, value)


def _replies(llm: Any, prompts: Sequence[Any], parallel: int | None, **options: Any):
    parts: dict[int, list[str]] = {}
    for i, chunk in llm.stream_batch(list(prompts), parallel=parallel, **options):
        parts.setdefault(i, []).append(chunk.text)
        if chunk.stats is not None:
            if chunk.stats.finish_reason == "cancelled":
                raise KeyboardInterrupt
            yield i, "".join(parts.pop(i)), chunk.stats


def choose_answer(checker: SQLChecker, question: str, replies: Sequence[str]) -> tuple[int, dict[str, Any]]:
    """The reply that stands for a model's answer: the majority's (see `vote`), else the
    first that runs and returns rows, else the first."""
    if len(replies) == 1:
        return 0, {}
    checks = [checker(Task(question), r) for r in replies]
    outcome = vote(checks)
    if outcome.verified:
        return pick([c.answer for c in checks], outcome.accepted), outcome.to_dict()
    ran = [i for i, c in enumerate(checks) if c.executed and not c.empty]
    return (ran[0] if ran else 0), outcome.to_dict()


def score(checker: SQLChecker, questions: Sequence[Any], replies: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each question's prediction checked against its reference."""
    rows = []
    for q, got in zip(questions, replies):
        chosen, voted = choose_answer(checker, q.question, got["replies"])
        check: Check = checker(Task(q.question, q.sql, q.source), got["replies"][chosen])
        row = {
            "source": q.source,
            "question": q.question,
            "reference": q.sql,
            "prediction": check.answer,
            "status": check.status,
            "reason": check.reason,
            "matched": check.passed,
            "executed": check.executed,
            "reply": got["replies"][chosen],
        }
        if voted:
            row["vote"] = voted
        rows.append(row)
    return rows


def summary(rows: Sequence[dict[str, Any]], completion_tokens: int = 0, generation_s: float = 0.0) -> dict[str, Any]:
    n = len(rows)
    matched = sum(r["matched"] for r in rows)
    report = {
        "questions": n,
        "matched": matched,
        "accuracy": round(100 * matched / n, 2) if n else None,
        "did_not_execute": sum(not r["executed"] for r in rows),
        "completion_tokens": completion_tokens,
        "tok_per_s": round(completion_tokens / generation_s, 2) if generation_s > 0 else None,
    }
    retried = [r["retry"] for r in rows if "retry" in r]
    if retried:
        report["retried"] = sum(r["attempts"] > 1 for r in retried)
        report["ran_after_retry"] = sum(r["ran"] for r in retried)
        report["matched_after_retry"] = sum(r["matched"] for r in retried)
    return report


def _stored_asker(llm: Any, checker: SQLChecker, schema: str, settings: SQLSettings, store: Any, model_key: Any) -> Any:
    """`llamarch sql`'s Asker whose replies are stored as they come (a rerun resumes)."""
    from ..sql.ask import Asker
    from ..store import result_key

    class StoredAsker(Asker):
        def generate(self, messages: list[Any], cancel: Any = None, **overrides: Any) -> tuple[str, Any]:
            options = {**self.options, **overrides, "harness": HARNESS_VERSION}
            key = result_key("sql-retry", model_key, messages, options)
            got = store.get_result("sql-retry", key)
            if got is None:
                text, stats = super().generate(messages, cancel, **overrides)
                if stats is not None and stats.get("finish_reason") == "cancelled":
                    raise KeyboardInterrupt
                got = {"reply": text, "stats": stats}
                with store.guard():
                    store.put_result("sql-retry", key, got)
            return got["reply"], got["stats"]

    return StoredAsker(
        llm,
        checker.conn,
        schema=schema,
        max_tokens=settings.max_tokens,
        seed=settings.seed,
        time_budget_s=checker.limits["time_budget_s"],
    )


def retry_failed(
    asker: Any,
    checker: SQLChecker,
    questions: Sequence[Any],
    rows: list[dict[str, Any]],
    advance: Callable[[int], None] | None = None,
) -> int:
    """Give each prediction that did not run `llamarch sql`'s retry (`Asker.ask` with it as the
    first reply), and score what the retry ran; returns the tokens the retries generated."""
    tokens = 0
    for q, row in zip(questions, rows):
        if row["executed"]:
            continue
        answer = asker.ask(q.question, first_reply=row["reply"])
        tokens += sum((a.stats or {}).get("completion_tokens", 0) for a in answer.attempts)
        first = {"prediction": row["prediction"], "reason": row["reason"]}
        if answer.ok:  # the retry's query ran: it is the prediction now
            check = checker(Task(q.question, q.sql, q.source), answer.attempts[-1].reply)
            row.update(
                prediction=check.answer,
                status=check.status,
                reason=check.reason,
                matched=check.passed,
                executed=check.executed,
                reply=answer.attempts[-1].reply,
            )
        row["retry"] = {"attempts": len(answer.attempts), "ran": answer.ok, "matched": row["matched"], "first": first}
        if advance:
            advance(1)
    return tokens


def evaluate(
    llm: Any,
    checker: SQLChecker,
    questions: Sequence[Any],
    settings: SQLSettings,
    *,
    store: Any,
    model_key: Any,
    parallel: int | None = None,
    advance: Callable[[int], None] | None = None,
    retry_progress: Callable[[int], AbstractContextManager[Callable[[int], None]]] | None = None,
) -> dict[str, Any]:
    """{"summary": ..., "results": [...]} of one model (with its settings) on the questions.

    `retry_progress(n)`, when given, is the progress bar of the n retries (`settings.retry`)."""
    from ..sql.prompt import sql_messages
    from ..store import result_key

    schema = schema_text(checker, settings)
    messages = [sql_messages(q.question, schema) for q in questions]
    replies, seconds = generate_replies(
        llm,
        messages,
        settings,
        store=store,
        model_key=model_key,
        parallel=parallel,
        advance=advance,
        check=lambda i, reply: checker(Task(questions[i].question), reply),  # as `choose_answer` votes
    )
    rows = score(checker, questions, replies)
    tokens = sum(r["completion_tokens"] for r in replies)
    if settings.retry:
        asker = _stored_asker(llm, checker, schema, settings, store, model_key)
        n = sum(not r["executed"] for r in rows)
        with retry_progress(n) if retry_progress else nullcontext(None) as advance_retry:
            retry_tokens = retry_failed(asker, checker, questions, rows, advance_retry)
    # Throughput is known only from a call that generated every reply; it is stored for reruns.
    key = result_key("sql-throughput", model_key, settings.key(), [q.question for q in questions])
    if seconds > 0:
        store.put_result("sql-throughput", key, {"tokens": tokens, "seconds": seconds})
    measured = store.get_result("sql-throughput", key) or {}
    report = summary(rows, tokens)
    if measured:
        report["tok_per_s"] = round(measured["tokens"] / measured["seconds"], 2)
        report["generation_s"] = round(measured["seconds"], 2)
    if settings.retry:
        report["retry_completion_tokens"] = retry_tokens
    return {"summary": report, "results": rows}
