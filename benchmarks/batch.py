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
    python benchmarks/batch.py --step-costs 1,4,8,16,32      # + cost of one decode step of N sequences
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


def step_costs(plain, ns: list[int], depth: int = 128, steps: int = 8) -> dict[int, dict[str, float]]:
    """Time one decode step of N sequences (one new token each, every row's logits kept) at
    `depth` cached tokens per sequence, in a context with one cache stream per sequence as
    llamarch's engine uses. Median ms per step after one warm-up step, and tok/s = N / step:
    the most any batched decoder on this machine gets from N sequences, before prompts."""
    import llama_cpp as lc

    from llamarch.backends.llamacpp_private import model_ptr

    n_max = max(ns)
    params = lc.llama_context_default_params()
    params.n_ctx = n_max * 256 * -(-(depth + steps + 8) // 256)  # llama.cpp pads each stream to 256
    params.n_batch = params.n_ubatch = 512
    params.n_seq_max = n_max
    params.n_threads = params.n_threads_batch = plain.n_threads
    params.kv_unified = False
    ctx = lc.llama_init_from_model(model_ptr(plain), params)
    batch = lc.llama_batch_init(512, 0, 1)
    prompt = plain.tokenize(("def f(x):\n    return x + 1\n" * 200).encode())[:depth]

    def decode(rows: list[tuple[int, int, int]]) -> None:
        for i, (token, pos, seq) in enumerate(rows):
            batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = token, pos, 1, True
            batch.seq_id[i][0] = seq
        batch.n_tokens = len(rows)
        if lc.llama_decode(ctx, batch) != 0:
            raise RuntimeError("llama_decode failed")

    out = {}
    try:
        for n in ns:
            lc.llama_memory_clear(lc.llama_get_memory(ctx), True)
            for seq in range(n):
                for start in range(0, depth, 512):
                    decode([(t, start + j, seq) for j, t in enumerate(prompt[start : start + 512])])
            times = []
            for k in range(steps + 1):
                t0 = time.perf_counter()
                decode([(prompt[k], depth + k, seq) for seq in range(n)])
                times.append(time.perf_counter() - t0)
            ms = 1000 * statistics.median(times[1:])
            out[n] = {"ms_per_step": round(ms, 2), "tok_s": round(1000 * n / ms, 2)}
            log(f"step cost: {n} sequences {ms:.1f} ms = {1000 * n / ms:.1f} tok/s")
    finally:
        lc.llama_batch_free(batch)
        lc.llama_free(ctx)
    return out


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_plain(plain, prompts, max_tokens: int) -> dict:
    plain.reset()
    t0 = time.perf_counter()
    texts, tokens, prompt_tokens = [], 0, 0
    for messages in prompts:
        out = plain.create_chat_completion(messages, max_tokens=max_tokens, temperature=0.0, repeat_penalty=1.0)
        texts.append(out["choices"][0]["message"]["content"] or "")
        prompt_tokens += out["usage"]["prompt_tokens"]
        tokens += out["usage"]["completion_tokens"]
    wall = time.perf_counter() - t0
    log(f"sequential plain: {tokens} tokens in {wall:.1f} s = {tokens / wall:.1f} tok/s")
    return {"wall_s": wall, "tokens": tokens, "tok_s": tokens / wall, "texts": texts, "prompt_tokens": prompt_tokens}


def run_batched(llm, prompts, max_tokens: int, parallel: int | None) -> dict:
    engine = getattr(llm.backend, "_batch_engine", None)
    if engine is not None:
        engine.clear()
    t0 = time.perf_counter()
    replies = llm.generate_batch(prompts, parallel=parallel, max_tokens=max_tokens, temperature=0.0)
    wall = time.perf_counter() - t0
    tokens = sum(r.stats.completion_tokens for r in replies)
    log(
        f"batched llamarch (parallel {llm.backend.last_plan.n_parallel}): "
        f"{tokens} tokens in {wall:.1f} s = {tokens / wall:.1f} tok/s"
    )
    return {
        "wall_s": wall,
        "tokens": tokens,
        "tok_s": tokens / wall,
        "texts": [r.text for r in replies],
        "parallel": llm.backend.last_plan.n_parallel,
        "plan": llm.backend.last_plan.summary(),
    }


def bench_model(model: str, args: argparse.Namespace) -> dict:
    from llama_cpp import Llama

    from llamarch import LLM
    from llamarch.catalog import resolve
    from llamarch.hardware import physical_cores

    threads = args.threads or physical_cores()
    prompts = code_prompts(args.prompts)
    llm = LLM(model, n_ctx=args.n_ctx, n_threads=threads)
    plain = Llama(
        str(resolve(model).path),
        n_ctx=args.n_ctx,
        n_threads=threads,
        n_threads_batch=threads,
        n_gpu_layers=0 if not llm.backend.on_gpu else -1,
        verbose=False,
    )
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
        order = [
            (seq, lambda: run_plain(plain, prompts, args.max_tokens)),
            (bat, lambda: run_batched(llm, prompts, args.max_tokens, args.parallel)),
        ]
        for results, fn in order if i % 2 == 0 else order[::-1]:
            results.append(fn())
    same = [a == b for a, b in zip(seq[0]["texts"], bat[0]["texts"])]
    llm.close()

    def summary(results: list[dict]) -> dict:
        return {
            "wall_s": round(statistics.median(r["wall_s"] for r in results), 2),
            "tok_s": round(statistics.median(r["tok_s"] for r in results), 2),
            "tokens": results[0]["tokens"],
        }

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
    if args.step_costs:
        out["step_costs"] = costs = step_costs(plain, args.step_costs)
        out["bound"] = ratio_bound(seq[0]["prompt_tokens"], seq[0]["tokens"], limit, costs)
    return out


def ratio_bound(prompt_tokens: int, tokens: int, limit: dict[str, float], costs: dict[int, dict[str, float]]) -> dict:
    """The best ratio a batched decoder could show in this benchmark: both sides read the
    same prompts at prompt speed; the loop decodes at one sequence's speed, the batch at
    the fastest measured step (its prompts mixed in at no extra cost)."""
    best = max(costs, key=lambda n: costs[n]["tok_s"])
    prompt_s = prompt_tokens / limit["prompt_tps"]
    loop_s = prompt_s + tokens / costs[1]["tok_s"] if 1 in costs else prompt_s + tokens / limit["decode_tps"]
    batch_s = prompt_s + tokens / costs[best]["tok_s"]
    return {
        "prompt_tokens": prompt_tokens,
        "best_parallel": best,
        "ratio": round(loop_s / batch_s, 2),
        "decode_only_ratio": round(
            costs[best]["tok_s"] / (costs[1]["tok_s"] if 1 in costs else limit["decode_tps"]), 2
        ),
    }


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
    ap.add_argument(
        "--step-costs",
        type=lambda s: [int(x) for x in s.split(",")],
        help="also time one decode step of N sequences for each N (e.g. 1,4,8,16,32) and report the best "
        "ratio this machine allows",
    )
    args = ap.parse_args()
    results = [bench_model(m, args) for m in args.models.split(",")]
    print(json.dumps(results if len(results) > 1 else results[0], indent=2))


if __name__ == "__main__":
    main()
