"""Chat turns: prompt tokens evaluated and time to first token, turn by turn.

A 6-turn scripted conversation, greedy, through three loops on the same model:
  llamarch   `ChatSession`: the model loaded once, the conversation re-rendered each turn,
             the KV cache reused for the common token prefix.
  naive      plain llama-cpp-python: the full history to `Llama.create_chat_completion`
             each turn, on one `Llama` object (llama-cpp-python itself reuses the prefix).
  stateless  the same call after `Llama.reset()`: every turn evaluates the whole history,
             as a tool that keeps no KV state between turns does.
Prompt tokens evaluated come from llama.cpp's own counters (`llama_perf_context`), read
at the first token.
One warm-up conversation per loop, then --trials conversations; medians are printed.

    flock /tmp/llamarch-heavy.lock python benchmarks/chat_turns.py -m qwen2.5-coder-0.5b
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from llamarch.backends.llamacpp_private import context_ptr, token_text

SYSTEM = "You are a concise Python tutor."
QUESTIONS = [
    "What is a Python list comprehension? Give one example.",
    "How is a generator expression different?",
    "Write a function that returns the squares of the even numbers in a list.",
    "Now make it a generator function instead.",
    "How would I test that function with pytest?",
    "Summarise what we covered in three bullet points.",
]

Turn = dict[str, Any]


def perf(ctx: Any) -> tuple[int, int]:
    import llama_cpp

    data = llama_cpp.llama_perf_context(ctx)
    return data.n_p_eval, data.n_eval


class FirstToken:
    """Marks the first token of a reply: when it came, and how many prompt tokens llama.cpp
    had evaluated by then (work done after the reply, such as prefill, is not counted)."""

    def __init__(self, llama: Any):
        import llama_cpp

        self.ctx = context_ptr(llama)
        llama_cpp.llama_synchronize(self.ctx)  # llama.cpp counts queued tokens at the next sync
        llama_cpp.llama_perf_context_reset(self.ctx)
        self.t0 = time.perf_counter()
        self.at: float | None = None
        self.evaluated = 0

    def mark(self) -> None:
        if self.at is None:
            self.at = time.perf_counter()
            self.evaluated = perf(self.ctx)[0]

    def turn(self, prompt_tokens: int) -> Turn:
        self.mark()
        assert self.at is not None
        return {"ttft_s": self.at - self.t0, "prompt_tokens": prompt_tokens, "evaluated_tokens": self.evaluated}


def llamarch_loop(model: str, args: argparse.Namespace) -> Callable[[], list[Turn]]:
    from llamarch import LLM
    from llamarch.chat import ChatSession

    llm = LLM(model, n_ctx=args.n_ctx, n_threads=args.threads)
    llama = llm.backend._llm

    def conversation() -> list[Turn]:
        session = ChatSession(llm, system=SYSTEM, options={"temperature": 0, "max_tokens": args.max_tokens})
        turns = []
        for q in QUESTIONS:
            first = FirstToken(llama)
            for _ in session.stream(q):
                first.mark()
            assert session.last_turn is not None
            turns.append(first.turn(session.last_turn.stats.prompt_tokens))
        return turns

    return conversation


def plain_loop(path: str, args: argparse.Namespace, stateless: bool) -> Callable[[], list[Turn]]:
    import llama_cpp

    llama = llama_cpp.Llama(path, n_ctx=args.n_ctx, n_threads=args.threads, n_threads_batch=args.threads, verbose=False)

    def conversation() -> list[Turn]:
        messages = [{"role": "system", "content": SYSTEM}]
        turns = []
        for q in QUESTIONS:
            messages.append({"role": "user", "content": q})
            if stateless:
                llama.reset()
            first, parts = FirstToken(llama), []
            for event in llama.create_chat_completion(messages, stream=True, temperature=0, max_tokens=args.max_tokens):
                delta = event["choices"][0]["delta"].get("content")
                if delta:
                    first.mark()
                    parts.append(delta)
            n_prompt = len(llama.tokenize(llama_prompt(llama, messages), special=True))
            messages.append({"role": "assistant", "content": "".join(parts)})
            turns.append(first.turn(n_prompt))
        return turns

    return conversation


def llama_prompt(llama: Any, messages: list[dict[str, str]]) -> bytes:
    """The prompt llama-cpp-python renders for these messages (to count its tokens)."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llama.metadata["tokenizer.chat_template"]
    eos, bos = llama.token_eos(), llama.token_bos()
    fmt = Jinja2ChatFormatter(
        template, eos_token=token_text(llama, eos), bos_token=token_text(llama, bos) if bos != -1 else ""
    )
    return fmt(messages=messages).prompt.encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    from llamarch.catalog import resolve
    from llamarch.hardware import physical_cores

    args.threads = args.threads or physical_cores()
    path = str(resolve(args.model).path)
    loops = {
        "llamarch": llamarch_loop(args.model, args),
        "naive": plain_loop(path, args, stateless=False),
        "stateless": plain_loop(path, args, stateless=True),
    }
    runs: dict[str, list[list[Turn]]] = {name: [] for name in loops}
    for trial in range(args.trials + 1):  # trial 0 is the warm-up
        for name, conversation in loops.items():
            turns = conversation()
            if trial:
                runs[name].append(turns)
            print(f"trial {trial} {name}: turn-6 ttft {turns[-1]['ttft_s']:.3f} s", file=sys.stderr)

    def median(name: str, turn: int, key: str) -> float:
        return statistics.median(run[turn][key] for run in runs[name])

    per_turn = []
    for i in range(len(QUESTIONS)):
        per_turn.append(
            {
                "turn": i + 1,
                **{
                    name: {
                        "prompt_tokens": int(median(name, i, "prompt_tokens")),
                        "evaluated_tokens": int(median(name, i, "evaluated_tokens")),
                        "ttft_s": round(median(name, i, "ttft_s"), 4),
                    }
                    for name in loops
                },
            }
        )
    last = per_turn[-1]
    print(
        json.dumps(
            {
                "benchmark": "chat_turns",
                "model": args.model,
                "threads": args.threads,
                "n_ctx": args.n_ctx,
                "max_tokens": args.max_tokens,
                "trials": args.trials,
                "turns": per_turn,
                "turn6_ttft_ratio_vs_naive": round(last["llamarch"]["ttft_s"] / last["naive"]["ttft_s"], 3),
                "turn6_ttft_ratio_vs_stateless": round(last["llamarch"]["ttft_s"] / last["stateless"]["ttft_s"], 3),
                "target_ratio": 0.5,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
