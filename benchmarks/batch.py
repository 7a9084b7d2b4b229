"""Batched generation against a sequential loop of plain llama-cpp-python.

For each model, the same prompts (32 Python chat prompts of mixed lengths, see
code_prompts.py) go through (a) a loop of `Llama.create_chat_completion` and (b) llamarch's
`LLM.generate_batch`, both greedy with the same token budget. After a warm-up, `--runs`
trials alternate the order; caches are reset before each trial. Prints one JSON object per
model: median wall time and aggregate tok/s of each, their ratio, how many batched replies
equal the sequential ones, and this machine's ceiling estimate for the ratio (prompt tok/s
÷ decode tok/s of one sequence, measured here: what decoding would reach if every step
were as efficient as reading a prompt).

    flock /tmp/llamarch-heavy.lock python benchmarks/batch.py \
        [--models qwen2.5-coder-0.5b,qwen2.5-coder-1.5b] [--runs 3] [--max-tokens 128] [--parallel N]
    python benchmarks/batch.py --sweep 1,2,4,8,16 --runs 1   # aggregate tok/s per N
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from code_prompts import code_prompts  # noqa: E402


def ceiling(plain, n_prompt: int = 256, n_decode: int = 48) -> dict[str, float]:
    """Prompt and single-sequence decode throughput of plain llama-cpp-python, and their ratio."""
    tokens = plain.tokenize(("def f(x):\n    return x + 1\n" * 200).encode())[:n_prompt]
    plain.reset()
    t0 = time.perf_counter()
    plain.eval(tokens)
    prompt_tps = len(tokens) / (time.perf_counter() - t0)
    plain.reset()
    stamps = []
    for _ in plain.generate(tokens[:32], temp=0.0):
        stamps.append(time.perf_counter())
        if len(stamps) >= n_decode:
            break
    decode_tps = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    return {"prompt_tps": prompt_tps, "decode_tps": decode_tps, "ratio": prompt_tps / decode_tps}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_plain(plain, prompts, max_tokens: int) -> dict:
    plain.reset()
    t0 = time.perf_counter()
    texts, tokens = [], 0
    for messages in prompts:
        out = plain.create_chat_completion(messages, max_tokens=max_tokens, temperature=0.0, repeat_penalty=1.0)
        texts.append(out["choices"][0]["message"]["content"] or "")
        tokens += out["usage"]["completion_tokens"]
    wall = time.perf_counter() - t0
    log(f"sequential plain: {tokens} tokens in {wall:.1f} s = {tokens / wall:.1f} tok/s")
    return {"wall_s": wall, "tokens": tokens, "tok_s": tokens / wall, "texts": texts}


def run_batched(llm, prompts, max_tokens: int, parallel: int | None) -> dict:
    engine = getattr(llm.backend, "_batch_engine", None)
    if engine is not None:
        engine.clear()
    t0 = time.perf_counter()
    replies = llm.generate_batch(prompts, parallel=parallel, max_tokens=max_tokens, temperature=0.0)
    wall = time.perf_counter() - t0
    tokens = sum(r.stats.completion_tokens for r in replies)
    log(f"batched llamarch (parallel {llm.backend.last_plan.n_parallel}): {tokens} tokens in {wall:.1f} s = {tokens / wall:.1f} tok/s")
    return {"wall_s": wall, "tokens": tokens, "tok_s": tokens / wall, "texts": [r.text for r in replies],
            "parallel": llm.backend.last_plan.n_parallel, "plan": llm.backend.last_plan.summary()}


def bench_model(model: str, args: argparse.Namespace) -> dict:
    from llama_cpp import Llama

    from llamarch import LLM
    from llamarch.catalog import resolve
    from llamarch.hardware import physical_cores

    threads = args.threads or physical_cores()
    prompts = code_prompts(args.prompts)
    llm = LLM(model, n_ctx=args.n_ctx, n_threads=threads)
    plain = Llama(str(resolve(model).path), n_ctx=args.n_ctx, n_threads=threads, n_threads_batch=threads,
                  n_gpu_layers=0 if not llm.backend.on_gpu else -1, verbose=False)
    limit = ceiling(plain)
    run_plain(plain, prompts[:2], 8), run_batched(llm, prompts[:4], 8, args.parallel)  # warm-up

    if args.sweep:
        sweep = {}
        for n in args.sweep:
            trials = [run_batched(llm, prompts, args.max_tokens, n)["tok_s"] for _ in range(args.runs)]
            sweep[n] = round(statistics.median(trials), 2)
        llm.close()
        return {"model": model, "threads": threads, "ceiling": limit, "tok_s_by_parallel": sweep}

    seq, bat = [], []
    for i in range(args.runs):
        order = [(seq, lambda: run_plain(plain, prompts, args.max_tokens)),
                 (bat, lambda: run_batched(llm, prompts, args.max_tokens, args.parallel))]
        for results, fn in order if i % 2 == 0 else order[::-1]:
            results.append(fn())
    same = [a == b for a, b in zip(seq[0]["texts"], bat[0]["texts"])]
    llm.close()

    def summary(results: list[dict]) -> dict:
        return {"wall_s": round(statistics.median(r["wall_s"] for r in results), 2),
                "tok_s": round(statistics.median(r["tok_s"] for r in results), 2),
                "tokens": results[0]["tokens"]}

    out = {
        "model": model,
        "threads": threads,
        "prompts": len(prompts),
        "max_tokens": args.max_tokens,
        "runs": args.runs,
        "parallel": bat[0]["parallel"],
        "plan": bat[0]["plan"],
        "sequential_plain": summary(seq),
        "batched_llamarch": summary(bat),
        "ratio": round(statistics.median(b["tok_s"] for b in bat) / statistics.median(s["tok_s"] for s in seq), 2),
        "identical": f"{sum(same)}/{len(same)}",
        "identical_rate": round(sum(same) / len(same), 3),
        "different": [i for i, s in enumerate(same) if not s],
        "ceiling": {k: round(v, 2) for k, v in limit.items()},
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="qwen2.5-coder-0.5b,qwen2.5-coder-1.5b")
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--parallel", type=int, help="sequences decoded together (default: llamarch's plan)")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--n-ctx", type=int, default=4096)
    ap.add_argument("--sweep", type=lambda s: [int(x) for x in s.split(",")], help="report tok/s for each N")
    args = ap.parse_args()
    results = [bench_model(m, args) for m in args.models.split(",")]
    print(json.dumps(results if len(results) > 1 else results[0], indent=2))


if __name__ == "__main__":
    main()
