"""The training losses over the answers' positions (as mlx-lm's `tuner/losses.py`).

Each loss takes the model and the arrays of `train.batch_arrays`: the inputs, the flattened
positions of the answers' tokens, their targets and weights (and, for distillation, the
teacher's top-k ids and probabilities at those positions). MLX is imported inside each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def split_head(model: Any) -> tuple[Any, Any] | None:
    """(backbone, output projection) of an mlx-lm Llama/Qwen-style model, or None."""
    backbone = getattr(model, "model", None)
    if backbone is None or not hasattr(backbone, "embed_tokens"):
        return None
    args = getattr(model, "args", None)
    if getattr(args, "tie_word_embeddings", False) or not hasattr(model, "lm_head"):
        return backbone, backbone.embed_tokens.as_linear
    return backbone, model.lm_head


def answer_logits(model: Any, inputs: Any, positions: Any) -> Any:
    """The logits at the selected positions of the flattened batch."""
    split = split_head(model)
    if split is None:
        logits = model(inputs)
        return logits.reshape(-1, logits.shape[-1])[positions]
    backbone, head = split
    hidden = backbone(inputs)
    return head(hidden.reshape(-1, hidden.shape[-1])[positions])


def masked_loss(model: Any, inputs: Any, positions: Any, targets: Any, weights: Any) -> Any:
    """Mean cross-entropy over the selected positions (the answers)."""
    import mlx.core as mx
    import mlx.nn as nn

    ce = nn.losses.cross_entropy(answer_logits(model, inputs, positions), targets) * weights
    return ce.astype(mx.float32).sum() / weights.sum()


def distill_loss(weight: float) -> Callable[..., Any]:
    """A loss over the answers mixing (1 - weight) x the cross-entropy against the answer's
    tokens with weight x the cross-entropy against the teacher's top-k probabilities."""
    import mlx.core as mx

    def loss(
        model: Any, inputs: Any, positions: Any, targets: Any, weights: Any, soft_ids: Any, soft_probs: Any
    ) -> Any:
        logits = answer_logits(model, inputs, positions).astype(mx.float32)
        logprobs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
        hard = -mx.take_along_axis(logprobs, targets[:, None], axis=-1)[:, 0]
        soft = -(soft_probs * mx.take_along_axis(logprobs, soft_ids, axis=-1)).sum(axis=-1)
        return (((1 - weight) * hard + weight * soft) * weights).sum() / weights.sum()

    return loss
