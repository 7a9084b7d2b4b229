"""llamarch's llama.cpp backend against plain llama-cpp-python `create_completion`.

Same model, threads, prompt and greedy settings; a warm-up, then N interleaved runs of
each (the order alternates). Both are timed the same way, from outside: prompt tok/s =
prompt tokens / time to first token; decode tok/s = (tokens - 1) / (last - first token).
Prints one JSON object with medians, the ratios llamarch/plain, and decode tok/s × model
bytes as GB/s beside this machine's copy bandwidth (the physical limit for decoding).

    python benchmarks/decode.py [--model qwen2.5-coder-0.5b] [--runs 5] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Iterable

PROMPT_SEED = (
    'def merge_sorted(a, b):\n    """Merge two sorted lists into one sorted list."""\n'
    "    out, i, j = [], 0, 0\n    while i < len(a) and j < len(b):\n"
    "        if a[i] <= b[j]:\n            out.append(a[i]); i += 1\n"
    "        else:\n            out.append(b[j]); j += 1\n    return out + a[i:] + b[j:]\n\n"
)


def build_prompt(tokenize, target_tokens: int) -> str:
    """Distinct numbered functions until the prompt has about `target_tokens` tokens."""
    parts, n = [], 0
    while len(tokenize("".join(parts))) < target_tokens:
        parts.append(PROMPT_SEED.replace("merge_sorted", f"merge_sorted_{n}"))
        n += 1
    return "".join(parts) + "def binary_search(items, target):\n"


def timed(stream: Iterable[str], n_prompt: int) -> dict[str, float]:
    t0 = time.perf_counter()
    stamps, text = [], []
    for piece in stream:
        stamps.append(time.perf_counter())
        text.append(piece)
    first, last = stamps[0], stamps[-1]
    return {
        "prompt_tps": n_prompt / (first - t0),
        "decode_tps": (len(stamps) - 1) / (last - first) if len(stamps) > 1 else 0.0,
        "tokens": len(stamps),
        "text": "".join(text),
    }


def copy_bandwidth_gbps(size_mb: int = 512, repeats: int = 5) -> float:
    """Bytes read + written per second by one thread's numpy copy (best of `repeats`)."""
    import numpy as np

    src = np.ones(size_mb * 2**20 // 8)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return 2 * src.nbytes / best / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--prompt-tokens", type=int, default=512)
    ap.add_argument("--gen-tokens", type=int, default=128)
    args = ap.parse_args()

    from llama_cpp import Llama

    from llamarch import LLM
    from llamarch.catalog import resolve
    from llamarch.hardware import physical_cores

    threads = args.threads or physical_cores()
    path = resolve(args.model).path
    n_ctx = args.prompt_tokens + args.gen_tokens + 64
    ours = LLM(args.model, n_ctx=n_ctx, n_threads=threads)
    plain = Llama(
        str(path),
        n_ctx=n_ctx,
        n_threads=threads,
        n_threads_batch=threads,
        n_gpu_layers=ours.backend.n_gpu_layers,
        verbose=False,
    )
    tokenize = lambda s: plain.tokenize(s.encode(), add_bos=True)  # noqa: E731
    prompt = build_prompt(tokenize, args.prompt_tokens)
    n_prompt = len(tokenize(prompt))

    def run_plain() -> dict[str, float]:
        plain.reset()  # no KV reuse between runs: every run evaluates the whole prompt
        chunks = plain.create_completion(prompt, max_tokens=args.gen_tokens, temperature=0.0, stream=True)
        return timed((c["choices"][0]["text"] for c in chunks), n_prompt)

    def run_ours() -> dict[str, float]:
        ours.backend.reset_cache()
        chunks = ours.stream(prompt, raw=True, max_tokens=args.gen_tokens, temperature=0.0)
        return timed((c.text for c in chunks if c.text), n_prompt)

    run_plain(), run_ours()  # warm-up
    results: dict[str, list[dict[str, float]]] = {"plain": [], "llamarch": []}
    for i in range(args.runs):
        order = [("plain", run_plain), ("llamarch", run_ours)]
        for name, fn in order if i % 2 == 0 else reversed(order):
            results[name].append(fn())

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    model_bytes = path.stat().st_size
    ceiling = copy_bandwidth_gbps()
    out = {
        "model": args.model,
        "model_bytes": model_bytes,
        "threads": threads,
        "n_gpu_layers": ours.backend.n_gpu_layers,
        "runs": args.runs,
        "prompt_tokens": n_prompt,
        "gen_tokens": args.gen_tokens,
        "plain": {"prompt_tps": med("plain", "prompt_tps"), "decode_tps": med("plain", "decode_tps")},
        "llamarch": {"prompt_tps": med("llamarch", "prompt_tps"), "decode_tps": med("llamarch", "decode_tps")},
        "ratio_prompt": med("llamarch", "prompt_tps") / med("plain", "prompt_tps"),
        "ratio_decode": med("llamarch", "decode_tps") / med("plain", "decode_tps"),
        "same_text": results["plain"][-1]["text"] == results["llamarch"][-1]["text"],
        "decode_weight_GBps": med("llamarch", "decode_tps") * model_bytes / 1e9,
        "copy_bandwidth_GBps": ceiling,
        "fraction_of_copy_bandwidth": med("llamarch", "decode_tps") * model_bytes / 1e9 / ceiling,
    }
    print(json.dumps(out, indent=2))
    ours.close()
    plain.close()


if __name__ == "__main__":
    main()
