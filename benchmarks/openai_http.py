"""What the HTTP path costs: one model in-process vs the same model behind `llamarch serve`.

    python benchmarks/openai_http.py [--model smollm2-135m] [--runs 5] [--tokens 64]

Prints JSON: median decode tok/s and time per reply in-process and through the openai
backend (ratio = http / local), and the wall time of a batch of prompts sent one at a
time vs with --parallel requests in flight (llamarch serve runs one generation at a
time, so that ratio shows the client's overhead rather than a batching gain).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from llamarch import LLM


def start_server(model: str, threads: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    out = log.open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llamarch",
            "serve",
            "-m",
            model,
            "--port",
            "0",
            "--threads",
            str(threads),
            "--n-ctx",
            "2048",
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        m = re.search(r"at (http://\S+/v1)", log.read_text(errors="replace"))
        if m:
            return proc, m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"the server did not start:\n{log.read_text(errors='replace')}")


def replies(llm: LLM, runs: int, tokens: int) -> dict[str, float]:
    messages = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]
    options = {"max_tokens": tokens, "temperature": 0.0}
    llm.respond(messages, **options)  # warm-up
    stats = [llm.respond(messages, **options).stats for _ in range(runs)]
    return {
        "decode_tps": statistics.median(s.decode_tps for s in stats),
        "ttft_s": statistics.median(s.ttft_s for s in stats),
        "total_s": statistics.median(s.total_s for s in stats),
    }


def batch_wall(llm: LLM, prompts: int, tokens: int, parallel: int) -> float:
    batch = [[{"role": "user", "content": f"Describe the number {n} in one sentence."}] for n in range(prompts)]
    started = time.perf_counter()
    llm.generate_batch(batch, parallel=parallel, max_tokens=tokens, temperature=0.0)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args()

    with LLM(args.model, n_ctx=2048, n_threads=args.threads) as local:
        in_process = replies(local, args.runs, args.tokens)
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(args.model, args.threads, Path(tmp) / "serve.log")
        try:
            remote = LLM(f"openai:@{url}")
            over_http = replies(remote, args.runs, args.tokens)
            batch_wall(remote, 2, 8, 1)  # warm-up
            one_at_a_time = statistics.median(batch_wall(remote, args.prompts, 32, 1) for _ in range(3))
            concurrent = statistics.median(batch_wall(remote, args.prompts, 32, args.parallel) for _ in range(3))
        finally:
            proc.kill()
            proc.wait()
    print(
        json.dumps(
            {
                "model": args.model,
                "threads": args.threads,
                "tokens": args.tokens,
                "runs": args.runs,
                "in_process": in_process,
                "over_http": over_http,
                "decode_tps_ratio_http_to_local": over_http["decode_tps"] / in_process["decode_tps"],
                "total_s_ratio_http_to_local": over_http["total_s"] / in_process["total_s"],
                "batch": {
                    "prompts": args.prompts,
                    "parallel": args.parallel,
                    "sequential_s": one_at_a_time,
                    "concurrent_s": concurrent,
                    "ratio_concurrent_to_sequential": concurrent / one_at_a_time,
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
