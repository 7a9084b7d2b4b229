"""How closely an MLX model follows llama.cpp: token ids, greedy tokens and logits.

A quantized GGUF model and its dequantized MLX twin differ by rounding (llama.cpp also
quantizes activations for its dot products), so greedy continuations can part ways where
two candidates are nearly tied. The report says where they part and by how much.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..backends.llamacpp_private import logits_ith, vocab_ptr

PARITY_TEXTS = (
    "Hello world!",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "  Ünïcödé 日本語 emoji 🎉 numbers 1234567 and   spaces\t\ttabs\r\n",
    "I'm, you're; they'll've... DON'T 'S",
    "x = {'a': [1, 2.5e-3], \"b\": None}  # comment\n\n\n    indented",
)
PARITY_PROMPTS = (
    "Write a Python function that reverses a string.",
    "What is the capital of France?",
    "List three colors.",
    "Explain recursion in one sentence.",
    "Say hello.",
)


@dataclass
class PromptParity:
    prompt: str
    mlx_tokens: list[int]
    llamacpp_tokens: list[int]
    agree_prefix: int  # tokens equal before the first difference
    first_logit_max_abs_diff: float  # on the prompt's last position, same input for both
    first_top1_margin: float  # llama.cpp's gap between its best and second-best token there
    # Where the two part (same input to both): the rank of llama.cpp's token among MLX's logits
    # (2 = MLX's second choice) and how far apart each engine puts the two tokens. A near tie
    # has rank 2 and small gaps; a wrong conversion parts at once, far down the ranking.
    part_mlx_rank: int | None = None
    part_mlx_gap: float | None = None  # MLX's logit for its own token minus for llama.cpp's
    part_llamacpp_gap: float | None = None  # llama.cpp's logit for its token minus for MLX's

    def agrees_but_for_a_near_tie(self, max_gap: float) -> bool:
        """Agrees to the end, or parts where both engines' two candidates lie within `max_gap`."""
        if self.part_mlx_rank is None:
            return self.agree_prefix == len(self.llamacpp_tokens)
        gaps = (self.part_mlx_gap or 0.0) + (self.part_llamacpp_gap or 0.0)
        return self.part_mlx_rank == 2 and gaps <= max_gap


@dataclass
class ParityReport:
    tokenizer_matches: int
    tokenizer_total: int
    prompts: list[PromptParity] = field(default_factory=list)

    @property
    def greedy_agreement(self) -> float:
        """Fraction of compared greedy tokens before each prompt's first difference."""
        total = sum(len(p.llamacpp_tokens) for p in self.prompts)
        return sum(p.agree_prefix for p in self.prompts) / total if total else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "tokenizer": f"{self.tokenizer_matches}/{self.tokenizer_total}",
            "greedy_agreement": round(self.greedy_agreement, 4),
            "prompts": [asdict(p) for p in self.prompts],
        }


def llamacpp_logits(backend: Any, ids: Sequence[int]) -> Any:
    """llama.cpp's logits for the token after `ids` (a fresh evaluation, no cache reuse)."""
    import ctypes

    import numpy as np

    llm = backend._llm
    llm.reset()
    llm.eval(list(ids))
    ptr = logits_ith(llm, -1)
    return np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(llm.n_vocab(),)).copy()


def llamacpp_greedy(backend: Any, ids: Sequence[int], n: int) -> list[int]:
    llm = backend._llm
    llm.reset()
    out: list[int] = []
    gen = llm.generate(list(ids), temp=0.0, top_k=1, reset=True)
    try:
        for token in gen:
            out.append(int(token))
            if len(out) >= n or backend._llama_cpp.llama_vocab_is_eog(vocab_ptr(llm), token):
                break
    finally:
        gen.close()
    return out


def mlx_greedy(model: Any, ids: Sequence[int], n: int, eos: set[int]) -> list[int]:
    from mlx_lm.generate import generate_step

    from ..mlx_runtime import import_mlx

    mx = import_mlx()
    out: list[int] = []
    for token, _ in generate_step(mx.array(list(ids)), model, max_tokens=n):
        out.append(int(token))
        if int(token) in eos:
            break
    return out


def mlx_logits(model: Any, ids: Sequence[int]) -> Any:
    import numpy as np

    from ..mlx_runtime import import_mlx

    mx = import_mlx()
    logits = model(mx.array(list(ids))[None])[0, -1].astype(mx.float32)
    return np.array(logits)


def compare(
    model: Any,
    tokenizer: Any,
    backend: Any,
    *,
    texts: Sequence[str] = PARITY_TEXTS,
    prompts: Sequence[str] = PARITY_PROMPTS,
    n_tokens: int = 16,
) -> ParityReport:
    """Compare an MLX model + tokenizer with a llama.cpp backend on the same GGUF model."""
    import numpy as np

    matches = sum(tokenizer.encode(t, add_special_tokens=False) == backend.tokenize(t, special=True) for t in texts)
    report = ParityReport(matches, len(texts))
    eos = set(getattr(tokenizer, "eos_token_ids", ()) or ())
    for prompt in prompts:
        ids = backend.tokenize(backend.render_chat([{"role": "user", "content": prompt}]), special=True)
        ref = llamacpp_greedy(backend, ids, n_tokens)
        ours = mlx_greedy(model, ids, n_tokens, eos)
        agree = next((i for i, (a, b) in enumerate(zip(ours, ref)) if a != b), min(len(ours), len(ref)))
        a, b = llamacpp_logits(backend, ids), mlx_logits(model, ids)
        top2 = np.sort(a)[-2:]
        parity = PromptParity(prompt, ours, ref, agree, float(np.abs(a - b).max()), float(top2[1] - top2[0]))
        if agree < min(len(ours), len(ref)):
            at = [*ids, *ref[:agree]]
            theirs, mine = llamacpp_logits(backend, at), mlx_logits(model, at)
            parity.part_mlx_rank = int((mine > mine[ref[agree]]).sum()) + 1
            parity.part_mlx_gap = float(mine[ours[agree]] - mine[ref[agree]])
            parity.part_llamacpp_gap = float(theirs[ref[agree]] - theirs[ours[agree]])
        report.prompts.append(parity)
    return report


def check_conversion(model: str, directory: Any, lora_gguf: Any = None, mlx_adapter: Any = None) -> ParityReport:
    """Compare llama.cpp on `model` (with an optional GGUF adapter) and MLX on `directory`
    (with the optional MLX adapter it was exported from)."""
    from ..llm import LLM
    from ..mlx_runtime import load_model

    mlx_model, tokenizer = load_model(directory, mlx_adapter)
    with LLM(model, backend="llamacpp", n_ctx=1024, lora_path=lora_gguf) as llm:
        return compare(mlx_model, tokenizer, llm.backend)
