"""HumanEval harness: the problem data, prompts, resumable runs, and a real end-to-end eval."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from llamarch.cli import cli
from llamarch.evals.humaneval import (
    EvalSettings,
    build_prompt,
    check_answer,
    evaluate,
    identify,
    load_problems,
    program_for,
    summary,
)
from llamarch.evals.sandbox import Limits
from llamarch.store import Store


def test_problems_load_from_the_package_data() -> None:
    problems = load_problems()
    assert len(problems) == 164
    assert problems[0].task_id == "HumanEval/0" and problems[0].entry_point == "has_close_elements"
    assert [p.task_id for p in load_problems(offset=10, limit=2)] == ["HumanEval/10", "HumanEval/11"]


def test_canonical_solutions_pass_and_empty_ones_fail() -> None:
    # A sample across the set (all 164 pass; see the eval README figures for the full check).
    problems = load_problems()[::16]
    for p in problems:
        _, _, good = check_answer(p, f"```python\n{p.prompt}{p.canonical_solution}\n```", Limits())
        assert good is not None and good.passed, (p.task_id, good)
        _, _, bad = check_answer(p, "```python\n    return None\n```", Limits())
        assert bad is not None and not bad.passed, p.task_id


def test_prompt_carries_the_problem() -> None:
    p = load_problems(limit=1)[0]
    prompt = build_prompt(p)
    assert "markdown code block" in prompt and p.prompt.strip() in prompt
    assert program_for(p, "x").endswith(f"check({p.entry_point})\n")


def test_reply_without_code_is_a_failure() -> None:
    p = load_problems(limit=1)[0]
    how, solution, outcome = check_answer(p, "I am not sure.", Limits())
    assert (how, solution, outcome) == ("none", "", None)


def test_smollm_end_to_end_and_resume(smollm, tmp_path: Path) -> None:
    problems = load_problems(limit=3)
    identity = identify("smollm2-135m")
    assert identity.sha256 == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    settings = EvalSettings(max_tokens=256)
    seen: list[str] = []
    with Store(tmp_path / "store.db") as store:
        run = evaluate(
            smollm,
            problems,
            identity=identity,
            settings=settings,
            store=store,
            on_result=lambda r: seen.append(r.task_id),
        )
        assert sorted(seen) == [p.task_id for p in problems]
        assert [r.task_id for r in run.results] == [p.task_id for p in problems]
        for r in run.results:
            assert r.completion and r.completion_tokens > 0 and not r.resumed
            assert r.status in {"passed", "failed", "error", "timeout", "memory", "killed", "no_code"}
            assert r.passed == (r.status == "passed")
        s = summary(run)
        assert s["problems"] == 3 and s["passed"] == sum(r.passed for r in run.results)
        assert s["model_sha256"] == identity.sha256 and s["completion_tokens"] > 0 and s["tok_per_s"] > 0

        # A second run over one more problem resumes the first three and answers only the new one.
        more = load_problems(limit=4)
        rerun = evaluate(smollm, more, identity=identity, settings=settings, store=store)
        assert [r.resumed for r in rerun.results] == [True, True, True, False]
        assert [r.to_dict() for r in rerun.results[:3]] == [r.to_dict() for r in run.results]
        assert summary(rerun)["resumed"] == 3

        # Other settings (here a different token budget) never reuse those answers.
        other = evaluate(smollm, problems[:1], identity=identity, settings=EvalSettings(max_tokens=200), store=store)
        assert not other.results[0].resumed


def test_sampled_answers_follow_their_seed_and_are_stored_apart(smollm, tmp_path: Path) -> None:
    problems = load_problems(limit=2)
    identity = identify("smollm2-135m")
    greedy = EvalSettings(max_tokens=48)
    assert "temperature" not in greedy.key()  # greedy results stored before sampling existed stay valid
    sampled = replace(greedy, temperature=1.0, seed=1)
    with Store(tmp_path / "store.db") as store:
        first = evaluate(smollm, problems, identity=identity, settings=sampled, store=store)
        again = evaluate(smollm, problems, identity=identity, settings=sampled, store=store, resume=False)
        assert [r.completion for r in again.results] == [r.completion for r in first.results]
        other = evaluate(smollm, problems, identity=identity, settings=replace(sampled, seed=2), store=store)
        assert not any(r.resumed for r in other.results)
        assert [r.completion for r in other.results] != [r.completion for r in first.results]
        plain = evaluate(smollm, problems, identity=identity, settings=greedy, store=store)
        assert not any(r.resumed for r in plain.results)


def test_cli_humaneval_json_and_out(smollm_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    args = [
        "eval",
        "humaneval",
        "-m",
        "smollm2-135m",
        "--limit",
        "2",
        "--offset",
        "5",
        "--max-tokens",
        "128",
        "--n-ctx",
        "2048",
        "--json",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["problems"] == 2 and report["model"] == "smollm2-135m" and report["offset"] == 5
    saved = json.loads(out.read_text())
    assert saved["summary"]["pass@1"] == report["pass@1"]
    assert [r["task_id"] for r in saved["results"]] == ["HumanEval/5", "HumanEval/6"]
    # Run again: everything is resumed from the store.
    again = CliRunner().invoke(cli, args)
    assert json.loads(again.stdout)["resumed"] == 2


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["eval", "humaneval", "-m", "no-such-model", "--limit", "1"])
    assert result.exit_code == 1 and "unknown model" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["eval", "humaneval", "-m", "smollm2-135m", "--offset", "500"])
    assert result.exit_code == 2 and "past the last problem" in result.output


def test_identity_of_a_path_is_its_hash(smollm_path: Path, tmp_path: Path) -> None:
    by_path = identify(str(smollm_path))
    assert by_path.sha256 == identify("smollm2-135m").sha256 and by_path.path == str(smollm_path)
    adapter = tmp_path / "adapter.gguf"
    adapter.write_bytes(b"not really an adapter")
    with_adapter = identify("smollm2-135m", adapter=str(adapter))
    assert with_adapter.adapter == str(adapter) and len(with_adapter.adapter_sha256) == 64


class InterruptAfterFirstReply:
    """The real model, with Ctrl-C pressed as soon as its first reply is complete."""

    def __init__(self, llm):
        self.llm, self.backend = llm, llm.backend

    def messages_for(self, prompt):
        return self.llm.messages_for(prompt)

    def stream_batch(self, prompts, parallel=None, **options):
        for i, chunk in self.llm.stream_batch(prompts, parallel=parallel, **options):
            yield i, chunk
            if chunk.stats is not None:
                raise KeyboardInterrupt


def test_interrupted_run_keeps_finished_answers(smollm, tmp_path: Path) -> None:
    problems = load_problems(limit=2)
    identity = identify("smollm2-135m")
    settings = EvalSettings(max_tokens=64)
    with Store(tmp_path / "store.db") as store:
        with pytest.raises(KeyboardInterrupt):
            evaluate(InterruptAfterFirstReply(smollm), problems, identity=identity, settings=settings, store=store)
        resumed = evaluate(smollm, problems, identity=identity, settings=settings, store=store)
    assert [r.resumed for r in resumed.results] == [True, False]
