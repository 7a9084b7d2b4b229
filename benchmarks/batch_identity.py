"""Where batched greedy replies part from sequential ones, and why.

For each model, the same prompts (code_prompts.py) are answered greedily by llamarch one at
a time (`parallel=1`) and batched (`parallel=N`), and, unless --no-plain, by a loop of plain
llama-cpp-python `create_chat_completion`. Prints one JSON object per model with the
identical-reply rates of each pair, and for every batched reply that differs, the first
token where it parts from the sequential one. `--no-repack` loads the weights without
llama.cpp's CPU repacking (`use_extra_bufts = false`), to tell the repacked matmul kernels'
share of the differences from the rest (llamafile's tinyBLAS, which llama.cpp uses only
when a matmul has 2 or more rows, i.e. for batches, and plain dot products for 1 row).

    flock /tmp/llamarch-heavy.lock python benchmarks/batch_identity.py \
        [--models smollm2-135m,qwen2.5-coder-0.5b] [--prompts 16] [--max-tokens 64] [--parallel 8] [--no-repack]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from code_prompts import code_prompts  # noqa: E402


def without_repacking() -> None:
    """Make every llama.cpp model loaded from now on skip the CPU weight repacking."""
    import llama_cpp.llama_cpp as lc

    default = lc.llama_model_default_params

    def params():  # noqa: ANN202
        p = default()
        p.use_extra_bufts = False
        return p

    lc.llama_model_default_params = params


def same(a: list[str], b: list[str]) -> str:
    return f"{sum(x == y for x, y in zip(a, b))}/{len(a)}"


def first_difference(llm, a: str, b: str) -> int | None:
    """The index of the first token where two replies differ (None when equal)."""
    if a == b:
        return None
    ta, tb = llm.tokenize(a), llm.tokenize(b)
    return next((i for i, (x, y) in enumerate(zip(ta, tb)) if x != y), min(len(ta), len(tb)))


def bench_model(model: str, args: argparse.Namespace) -> dict:
    from llamarch import LLM
    from llamarch.catalog import resolve

    prompts = code_prompts(args.prompts)
    llm = LLM(model, n_threads=args.threads)
    replies, wall = {}, {}
    for parallel in (1, args.parallel):
        engine = getattr(llm.backend, "_batch_engine", None)
        if engine is not None:
            engine.clear()
        t0 = time.perf_counter()
        replies[parallel] = [
            r.text for r in llm.generate_batch(prompts, parallel=parallel, max_tokens=args.max_tokens, temperature=0.0)
        ]
        wall[parallel] = round(time.perf_counter() - t0, 1)
    seq, bat = replies[1], replies[args.parallel]
    out = {
        "model": model,
        "prompts": len(prompts),
        "max_tokens": args.max_tokens,
        "parallel": args.parallel,
        "repack": not args.no_repack,
        "wall_s": wall,
        "llamarch_sequential_vs_batched": same(seq, bat),
        "first_differing_token": [first_difference(llm, a, b) for a, b in zip(seq, bat) if a != b],
    }
    llm.close()
    if not args.no_plain:
        from llama_cpp import Llama

        plain = Llama(
            str(resolve(model).path), n_ctx=4096, n_threads=args.threads, n_threads_batch=args.threads, verbose=False
        )
        texts = [
            plain.create_chat_completion(m, max_tokens=args.max_tokens, temperature=0.0, repeat_penalty=1.0)["choices"][
                0
            ]["message"]["content"]
            or ""
            for m in prompts
        ]
        out["plain_vs_llamarch_sequential"] = same(texts, seq)
        out["plain_vs_llamarch_batched"] = same(texts, bat)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="smollm2-135m,qwen2.5-coder-0.5b")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-repack", action="store_true", help="load weights without llama.cpp's CPU repacking")
    ap.add_argument("--no-plain", action="store_true", help="leave out the plain llama-cpp-python loop")
    args = ap.parse_args()
    if args.no_repack:
        without_repacking()
    results = [bench_model(m, args) for m in args.models.split(",")]
    print(json.dumps(results if len(results) > 1 else results[0], indent=2))


if __name__ == "__main__":
    main()
