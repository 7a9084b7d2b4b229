"""Speculative decoding against plain decoding, on code prompts, one sequence at a time.

The target model answers the same prompts greedily three ways, in the same process:
plain llamarch decoding (no drafts), prompt-lookup drafting, and a small draft model of the
same family (the student drafting for the teacher). Two kinds of code prompt: writing new
code (drafts must be guessed) and editing given code (the reply repeats the prompt). After a
warm-up, `--runs` trials in rotating order; prints JSON with the median tok/s of each way,
the speed-up over plain, the share of draft tokens accepted, and whether the greedy replies
are identical to plain decoding.

    flock /tmp/llamarch-heavy.lock python benchmarks/speculative.py \
        [--target qwen2.5-coder-1.5b] [--draft qwen2.5-coder-0.5b] [--runs 3] [--max-tokens 160]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from code_prompts import LISTING_PART, SNIPPET, TASKS  # noqa: E402


def prompts_by_kind() -> dict[str, list]:
    write = [[{"role": "user", "content": f"Write a Python function to {t}."}] for t in TASKS[:4]]
    edit = [
        [
            {
                "role": "user",
                "content": "Add type hints to this function and return the full code:\n\n"
                f"```python\n{SNIPPET.format(name='group_sorted')}```",
            }
        ],
        [
            {
                "role": "user",
                "content": "Rename the class to CsvTable and the method `column` to `get_column`; "
                f"return the full code.\n\n```python\n{LISTING_PART.format(cls='Table')}```",
            }
        ],
        [
            {
                "role": "user",
                "content": "Add a docstring to every method and return the full code.\n\n"
                f"```python\n{LISTING_PART.format(cls='Table')}```",
            }
        ],
    ]
    return {"write": write, "edit": edit}


def run(llm, prompts, max_tokens: int) -> dict:
    """Greedy replies one after another; tok/s over the whole time (prompt included)."""
    ids, tokens, drafted, accepted = [], 0, 0, 0
    t0 = time.perf_counter()
    for prompt in prompts:
        engine = getattr(llm.backend, "_batch_engine", None)
        if engine is not None:
            engine.clear()
        elif hasattr(llm.backend, "_llm"):
            llm.backend._llm.reset()
        reply = [t for c in llm.stream(prompt, temperature=0, max_tokens=max_tokens) for t in c.token_ids]
        ids.append(reply)
        tokens += len(reply)
        engine = getattr(llm.backend, "_batch_engine", None)
        if engine is not None:
            drafted += engine.last_run["drafted"]
            accepted += engine.last_run["accepted"]
    wall = time.perf_counter() - t0
    return {
        "tok_s": tokens / wall,
        "wall_s": wall,
        "tokens": tokens,
        "ids": ids,
        "drafted": drafted,
        "accepted": accepted,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", default="qwen2.5-coder-1.5b")
    ap.add_argument("--draft", default="qwen2.5-coder-0.5b")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=160)
    ap.add_argument("--n-draft", type=int, help="draft tokens per step (default: llamarch's)")
    ap.add_argument("--threads", type=int)
    args = ap.parse_args()

    from llamarch import LLM
    from llamarch.hardware import physical_cores

    threads = args.threads or physical_cores()
    common = {"n_ctx": 2048, "n_threads": threads}
    extra = {"n_draft": args.n_draft} if args.n_draft else {}
    ways = {
        "plain": LLM(args.target, **common),
        "prompt_lookup": LLM(args.target, prompt_lookup=True, **common, **extra),
        "draft_model": LLM(args.target, draft_model=args.draft, **common, **extra),
    }
    kinds = prompts_by_kind()
    for llm in ways.values():  # warm-up
        run(llm, kinds["write"][:1], 8)

    report: dict = {
        "target": args.target,
        "draft": args.draft,
        "threads": threads,
        "runs": args.runs,
        "max_tokens": args.max_tokens,
    }
    for kind, prompts in kinds.items():
        results: dict[str, list[dict]] = {name: [] for name in ways}
        names = list(ways)
        for i in range(args.runs):
            for name in names[i % len(names) :] + names[: i % len(names)]:
                results[name].append(run(ways[name], prompts, args.max_tokens))
        plain_tps = statistics.median(r["tok_s"] for r in results["plain"])
        plain_ids = results["plain"][0]["ids"]
        section = {"prompts": len(prompts), "plain_tok_s": round(plain_tps, 2)}
        for name in names[1:]:
            rs = results[name]
            tps = statistics.median(r["tok_s"] for r in rs)
            same = sum(a == b for a, b in zip(rs[0]["ids"], plain_ids))
            section[name] = {
                "tok_s": round(tps, 2),
                "speedup": round(tps / plain_tps, 2),
                "accepted_share": round(rs[0]["accepted"] / rs[0]["drafted"], 3) if rs[0]["drafted"] else None,
                "identical_to_plain": f"{same}/{len(prompts)}",
            }
        report[kind] = section
    for llm in ways.values():
        llm.close()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
