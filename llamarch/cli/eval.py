"""`llamarch eval`: measure models on benchmarks with executable tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .ui import engine_options, item_progress, model_options


@click.group("eval")
def eval_group() -> None:
    """Measure models on benchmarks whose answers are checked by running tests."""


@eval_group.command()
@model_options
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate only this many problems.")
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True, help="Skip this many problems first.")
@click.option("--parallel", type=click.IntRange(min=1), help="Sequences the engine decodes at once (where it batches).")
@click.option("--max-tokens", type=click.IntRange(min=16), default=768, show_default=True, help="Longest reply.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.5), default=10.0, show_default=True,
              help="Seconds each problem's tests may run.")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Sandboxes running tests alongside generation.")
@click.option("--fresh", is_flag=True, help="Answer every problem again, ignoring stored results.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the summary and every problem's result (JSON).")
def humaneval(model: str | None, backend: str | None, limit: int | None, offset: int, parallel: int | None,
              max_tokens: int, timeout_s: float, workers: int, fresh: bool, as_json: bool, out: Path | None,
              **engine: Any) -> None:
    """HumanEval pass@1 (greedy) of a model: answers run against the tests in a sandbox.

    Results are stored as each problem finishes; running the same command again resumes.
    """
    from ..evals.humaneval import EvalSettings, evaluate, identify, load_problems, summary
    from ..llm import LLM
    from ..store import Store

    problems = load_problems(offset, limit)
    if not problems:
        raise click.UsageError(f"--offset {offset} is past the last problem")
    options = engine_options(**engine)
    identity = identify(model, backend, options.get("lora_path"))
    settings = EvalSettings(max_tokens=max_tokens, timeout_s=timeout_s)
    with Store() as store, LLM(model, backend=backend, **options) as llm, \
            item_progress(f"HumanEval {identity.model}", len(problems)) as advance:
        passed = [0, 0]

        def progress(result: Any) -> None:
            passed[0] += result.passed
            passed[1] += 1
            advance(info=f"pass@1 {passed[0] / passed[1]:.1%}")

        run = evaluate(llm, problems, identity=identity, settings=settings, store=store, resume=not fresh,
                       parallel=parallel, workers=workers, on_result=progress)
    report = summary(run)
    report.update(offset=offset, limit=limit)
    if out is not None:
        _write_json(out, {"summary": report, "results": [r.to_dict() for r in run.results]})
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _print_summary(report)


def _print_summary(s: dict[str, Any]) -> None:
    sha = f" (sha256 {s['model_sha256'][:12]})" if s["model_sha256"] else ""
    adapter = f" + adapter {s['adapter']}" if s["adapter"] else ""
    click.echo(f"HumanEval pass@1 {s['pass@1']:.1%} ({s['passed']}/{s['problems']})  {s['model']}{sha}{adapter}")
    click.echo("  " + ", ".join(f"{k} {v}" for k, v in s["statuses"].items()))
    speed = f" at {s['tok_per_s']} tok/s" if s["tok_per_s"] else ""
    resumed = f", {s['resumed']} resumed" if s["resumed"] else ""
    click.echo(f"  {s['completion_tokens']} tokens generated{speed}; {s['wall_s']:.0f} s{resumed}")


def _write_json(path: Path, data: Any) -> None:
    """Write atomically: a crash leaves the old file or the new one."""
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
