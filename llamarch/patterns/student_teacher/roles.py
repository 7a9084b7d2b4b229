"""The two roles: a `Student` that answers and a `Teacher` that evaluates and judges."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ...backends import Chunk, Message, ModelFile, Prompt, Response
from ...llm import LLM
from .rubric import DEFAULT_EVALUATION_PROMPT, Rubric, fill
from .verdict import SCORE_SCHEMA, VERDICT_SCHEMA, Verdict, parse_verdict

MAX_LENGTH = 4000
"""The most characters of a student's answer the teacher sees (the rest is cut off).

4000 characters is about 1000-1300 tokens of Python: room for a whole function with its
explanation, while rubric + question + answer + verdict still fit a 4096-token context.
"""

ModelLike = LLM | str | os.PathLike[str]

STUDENT_OPTIONS: dict[str, Any] = {"temperature": 0.0, "max_tokens": 512}
TEACHER_OPTIONS: dict[str, Any] = {"temperature": 0.0, "max_tokens": 768}

RETRY_REQUEST = (
    "That reply was not a complete JSON object. Reply again with only the JSON object asked "
    "for, keeping the critique to at most three sentences."
)


def as_llm(model: ModelLike, backend: str | None = None, **engine: Any) -> tuple[LLM, bool]:
    """(LLM, owned): an LLM as given, or one opened from a catalog id, a path or a model spec."""
    if isinstance(model, LLM):
        return model, False
    return LLM(model, backend=backend, **engine), True


def model_spec(llm: LLM) -> str:
    """What reopens this model: its catalog id, else its file, else the spec it was opened with."""
    from ...catalog import load_catalog

    if llm.model_id in load_catalog() or not isinstance(llm.backend, ModelFile):
        return llm.model_id
    return str(llm.backend.model_path)


def completed(stream: Iterable[tuple[int, Chunk]]) -> Iterator[tuple[int, Response]]:
    """Whole replies from `LLM.stream_batch`, each as soon as its last chunk arrives."""
    parts: dict[int, list[str]] = {}
    for i, chunk in stream:
        parts.setdefault(i, []).append(chunk.text)
        if chunk.stats is not None:
            yield i, Response("".join(parts.pop(i)), chunk.stats)


class _Role:
    """A model with the generation options its role uses; closes the model if it opened it."""

    default_options: dict[str, Any] = {}

    def __init__(
        self, llm: ModelLike, backend: str | None = None, options: dict[str, Any] | None = None, **engine: Any
    ):
        self.llm, self._owned = as_llm(llm, backend, **engine)
        self.options = {**self.default_options, **(options or {})}

    def close(self) -> None:
        if self._owned:
            self.llm.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Student(_Role):
    """The small model being taught: it answers queries, and is fine-tuned on feedback.

    Answers are greedy by default (`options` overrides: max_tokens, temperature, ...).
    """

    default_options = STUDENT_OPTIONS

    def __init__(
        self,
        llm: ModelLike,
        system: str | None = None,
        backend: str | None = None,
        options: dict[str, Any] | None = None,
        **engine: Any,
    ):
        super().__init__(llm, backend, options, **engine)
        self.system = system
        self.engine = engine
        self.adapter_path: Path | None = None

    def prompt_for(self, query: str | Sequence[Message]) -> Prompt:
        if isinstance(query, str):
            return self.llm.messages_for(query, self.system)
        messages = list(query)
        if self.system and not any(m["role"] == "system" for m in messages):
            messages.insert(0, {"role": "system", "content": self.system})
        return messages

    def generate_response(self, query: str) -> str:
        """The student's answer to `query`."""
        return self.llm.respond(self.prompt_for(query), **self.options).text

    def answer_many(
        self, queries: Sequence[str | Sequence[Message]], parallel: int | None = None
    ) -> Iterator[tuple[int, Response]]:
        """(index, reply) for each query, as each reply finishes (not necessarily in order)."""
        prompts = [self.prompt_for(q) for q in queries]
        return completed(self.llm.stream_batch(prompts, parallel=parallel, **self.options))

    def fine_tune(self, data: Any, out_dir: str | os.PathLike[str] | None = None, **settings: Any) -> Path:
        """LoRA-train the student on `data` (`llamarch.finetune.fine_tune`), then answer with the
        adapter; returns the GGUF adapter, `out_dir`/adapter.gguf.

        `data` is a directory holding mlx-lm's train.jsonl/valid.jsonl, or examples:
        `{"messages": [...]}` rows, `{"prompt", "completion"}` rows or (prompt, answer) pairs
        (written to `out_dir`/data). `settings` are `LoraConfig` fields; the MLX adapter goes
        to `out_dir`/mlx-adapter, replacing one left there.
        """
        from ...finetune import default_adapter_dir, fine_tune
        from .training import training_data

        spec = model_spec(self.llm)
        out = Path(out_dir) if out_dir else default_adapter_dir(spec)
        train_dir = training_data(data, out / "data")
        tuned = fine_tune(
            spec, train_dir, out / "mlx-adapter", gguf_path=out / "adapter.gguf", overwrite=True, **settings
        )
        self.use_adapter(tuned.gguf_path)
        return tuned.gguf_path

    def use_adapter(self, adapter: str | os.PathLike[str]) -> None:
        """Reopen the student's model with a GGUF LoRA adapter applied."""
        reopened = LLM(model_spec(self.llm), backend=self.llm.backend_name, **{**self.engine, "lora_path": adapter})
        self.close()
        self.llm, self._owned = reopened, True
        self.adapter_path = Path(adapter)


class Teacher(_Role):
    """The larger expert: evaluates answers in free text, and judges them with a `Verdict`.

    `evaluation_prompt` is the free-text template of `evaluate_response`; `rubric` (a
    `Rubric` or the path of a template file) is what `judge` uses. Both have `{question}`
    and `{answer}` slots. The teacher never sees more than `MAX_LENGTH` characters of an
    answer.
    """

    default_options = TEACHER_OPTIONS

    def __init__(
        self,
        llm: ModelLike,
        evaluation_prompt: str = DEFAULT_EVALUATION_PROMPT,
        rubric: Rubric | str | os.PathLike[str] | None = None,
        backend: str | None = None,
        options: dict[str, Any] | None = None,
        **engine: Any,
    ):
        super().__init__(llm, backend, options, **engine)
        self.evaluation_prompt = evaluation_prompt
        self.rubric = rubric if isinstance(rubric, Rubric) else Rubric.load(rubric)

    # --- free text (seed API) -----------------------------------------------------------

    def evaluate_response(self, student_response: str, query: str | None = None) -> str:
        """The teacher's evaluation of an answer, in its own words."""
        prompt = fill(self.evaluation_prompt, query, student_response[:MAX_LENGTH])
        return self.llm.respond(self.llm.messages_for(prompt), **self.options).text

    # --- structured verdicts ----------------------------------------------------------------

    def judge_prompt(self, query: str, answer: str) -> Prompt:
        return self.llm.messages_for(self.rubric.render(query[:MAX_LENGTH], answer[:MAX_LENGTH]))

    def judge(self, query: str, answer: str, improve: bool = True) -> Verdict:
        """Score an answer from 1 to 10, with a critique and (unless `improve` is False) an improved answer."""
        for _, verdict, _ in self.judge_many([(query, answer)], improve=improve):
            return verdict
        raise AssertionError("judge_many yielded nothing")

    def judge_many(
        self, pairs: Sequence[tuple[str, str]], parallel: int | None = None, improve: bool = True
    ) -> Iterator[tuple[int, Verdict, float]]:
        """(index, verdict, seconds) per (query, answer) pair, as each verdict is ready.

        `improve=False` skips the improved answer (a quicker verdict, for comparisons).

        Output is constrained to `VERDICT_SCHEMA` where the engine can; a reply that still
        does not parse (an engine that ignores the schema, a reply cut at max_tokens) is
        asked for once more, with twice the tokens. If that fails too, the verdict has
        `valid=False` and no score.
        """
        prompts = [self.judge_prompt(q, a) for q, a in pairs]
        options = {**self.options, "json_schema": VERDICT_SCHEMA if improve else SCORE_SCHEMA}
        failed: dict[int, Response] = {}
        for i, reply in completed(self.llm.stream_batch(prompts, parallel=parallel, **options)):
            verdict = parse_verdict(reply.text)
            if verdict.valid:
                yield i, verdict, reply.stats.total_s
            else:
                failed[i] = reply
        if not failed:
            return
        order = sorted(failed)
        retries = [self._retry_prompt(prompts[i], failed[i].text) for i in order]
        if options.get("max_tokens"):
            options["max_tokens"] *= 2
        for j, reply in completed(self.llm.stream_batch(retries, parallel=parallel, **options)):
            i = order[j]
            verdict = replace(parse_verdict(reply.text), attempts=2)
            yield i, verdict, failed[i].stats.total_s + reply.stats.total_s

    def _retry_prompt(self, prompt: Prompt, bad_reply: str) -> Prompt:
        if isinstance(prompt, str):  # a model without a chat template: ask afresh
            return prompt
        return [
            *prompt,
            {"role": "assistant", "content": bad_reply[:MAX_LENGTH]},
            {"role": "user", "content": RETRY_REQUEST},
        ]
