"""The teacher's pass of soft-target distillation: llamarch's vs the plain way, per answer.

For every training answer the teacher gives its top-k next tokens at each answer position.
llamarch (`llamarch.finetune.soft_targets.top_k_targets`) runs the model's blocks on the whole
row, projects only the answer positions onto the vocabulary and takes the top k by partition.
The plain way, as one would write it with mlx-lm: the model's full logits for every position,
then a full sort over the vocabulary at the answer positions. Both in this process, on the same
real model and the same chat rows (HumanEval prompts with their reference solutions as the
answers: token counts like the distill benchmark's rows), alternating per row after a warm-up.
Prints one JSON object: median seconds per answer of each, their ratio, and whether the top-k
ids agree.

    flock /tmp/llamarch-heavy.lock python benchmarks/soft_targets.py --teacher qwen2.5-coder-1.5b
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any


def plain_top_k(model: Any, item: Any, k: int) -> tuple[Any, Any]:
    """The baseline: full logits, full sort."""
    import mlx.core as mx
    import numpy as np

    from llamarch.finetune.data import trained_span

    start, end = trained_span(item)
    logits = model(mx.array([item.tokens[:-1]]))[0, start:end].astype(mx.float32)
    ids = mx.argsort(-logits, axis=-1)[:, :k]
    top = mx.softmax(mx.take_along_axis(logits, ids, axis=-1), axis=-1)
    mx.eval(ids, top)
    return np.array(ids, dtype=np.int32), np.array(top, dtype=np.float32)


def chat_rows(count: int) -> list[dict]:
    from llamarch.evals.humaneval import build_prompt, load_problems

    return [
        {
            "messages": [
                {"role": "user", "content": build_prompt(p)},
                {"role": "assistant", "content": f"```python\n{p.prompt}{p.canonical_solution}```"},
            ]
        }
        for p in load_problems(limit=count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", default="qwen2.5-coder-0.5b", help="catalog id, GGUF or MLX directory")
    parser.add_argument("--answers", type=int, default=8, help="timed answers (after one warm-up)")
    parser.add_argument("--top-k", type=int, default=16)
    args = parser.parse_args()

    import numpy as np

    from llamarch.finetune.data import tokenize_all
    from llamarch.finetune.soft_targets import top_k_targets
    from llamarch.mlx_convert import mlx_model_dir
    from llamarch.mlx_runtime import load_model

    model, tokenizer = load_model(mlx_model_dir(args.teacher))
    model.eval()
    items = tokenize_all(tokenizer, chat_rows(args.answers + 1), 2048, mask_prompt=True).items
    ours_s, plain_s, agree = [], [], 0
    for i, item in enumerate(items):
        timed = {}
        for name, fn in sorted({"ours": top_k_targets, "plain": plain_top_k}.items(), reverse=i % 2 == 1):
            tic = time.perf_counter()
            timed[name] = (fn(model, item, args.top_k), time.perf_counter() - tic)  # alternating who goes first
        (ours, ours_t), (plain, plain_t) = timed["ours"], timed["plain"]
        if i == 0:
            continue  # warm-up
        ours_s.append(ours_t)
        plain_s.append(plain_t)
        agree += int(np.array_equal(ours[0][:, 0], plain[0][:, 0]) and np.allclose(ours[1], plain[1], atol=1e-4))
    ours_median, plain_median = statistics.median(ours_s), statistics.median(plain_s)
    print(
        json.dumps(
            {
                "teacher": args.teacher,
                "answers": len(ours_s),
                "top_k": args.top_k,
                "tokens_per_row_median": statistics.median(len(t.tokens) for t in items[1:]),
                "llamarch_s_per_answer": round(ours_median, 3),
                "plain_s_per_answer": round(plain_median, 3),
                "speedup_vs_plain": round(plain_median / ours_median, 2),
                "rows_where_top1_and_probs_agree": agree,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
