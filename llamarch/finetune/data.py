"""Training data: mlx-lm's JSONL formats, checked line by line, tokenized with prompt masks.

A data directory holds `train.jsonl` (required) and `valid.jsonl` (optional). Each line is
one example in one of mlx-lm's formats, `messages` first:

    {"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}
    {"prompt": "...", "completion": "..."}
    {"text": "..."}

With prompt masking, the loss covers only the answer: the last assistant message, or the
completion. `text` examples have no prompt, so all of their tokens are trained on.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LlamarchError
from ..jsonl import read_jsonl

ROLES = ("system", "user", "assistant", "tool")
FORMATS = ("messages", "prompt/completion", "text")


class DataError(LlamarchError):
    """Training data that cannot be used as it is."""


def example_problem(obj: Any) -> str | None:
    """Why a decoded JSON line is not a training example, or None when it is one."""
    if not isinstance(obj, dict):
        return f"expected a JSON object, got {type(obj).__name__}"
    if "messages" in obj:
        messages = obj["messages"]
        if not isinstance(messages, list) or not messages:
            return "'messages' must be a non-empty list"
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or not isinstance(m.get("content"), str):
                return f"message {i} must be an object with a string 'content'"
            if m.get("role") not in ROLES:
                return f"message {i} has role {m.get('role')!r}: expected one of {', '.join(ROLES)}"
        if messages[-1]["role"] != "assistant":
            return "the last message must be the assistant's answer (role 'assistant')"
        return None
    if "prompt" in obj or "completion" in obj:
        if not isinstance(obj.get("prompt"), str) or not isinstance(obj.get("completion"), str):
            return "'prompt' and 'completion' must both be strings"
        return None
    if "text" in obj:
        return None if isinstance(obj["text"], str) else "'text' must be a string"
    return f"no 'messages', 'prompt'/'completion' or 'text' key (supported formats: {', '.join(FORMATS)})"


def read_examples(path: Path) -> list[dict[str, Any]]:
    """All examples of one JSONL file; the first bad line raises DataError with its number."""
    try:
        return [obj for _, obj in read_jsonl(path, validate=example_problem)]
    except DataError:
        raise
    except LlamarchError as e:
        raise DataError(f"{e}: fix or remove that line") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def check_examples(examples: Iterable[Any], where: str = "data") -> list[dict[str, Any]]:
    """Validate in-memory examples (a list of dicts), naming the first bad one by index."""
    checked = []
    for i, obj in enumerate(examples):
        if (reason := example_problem(obj)) is not None:
            raise DataError(f"{where}[{i}]: {reason}")
        checked.append(obj)
    return checked


@dataclass
class Dataset:
    train: list[dict[str, Any]]
    valid: list[dict[str, Any]]
    source: str


def load_data(
    data: str | os.PathLike[str] | Sequence[dict[str, Any]],
    valid: str | os.PathLike[str] | Sequence[dict[str, Any]] | None = None,
) -> Dataset:
    """A data directory (train.jsonl, optional valid.jsonl), a JSONL file, or a list of examples."""
    if isinstance(data, (str, os.PathLike)):
        path = Path(data).expanduser()
        if path.is_dir():
            train_file = path / "train.jsonl"
            if not train_file.is_file():
                raise DataError(
                    f"{path} has no train.jsonl: put one example per line there "
                    f"(formats: {', '.join(FORMATS)}), and optionally valid.jsonl"
                )
            train = read_examples(train_file)
            valid_file = path / "valid.jsonl"
            valid_rows = read_examples(valid_file) if valid is None and valid_file.is_file() else []
            source = str(path)
        elif path.is_file():
            train, valid_rows, source = read_examples(path), [], str(path)
        else:
            raise DataError(f"training data not found: {path} (give a directory with train.jsonl, or a .jsonl file)")
    else:
        train, valid_rows, source = check_examples(data), [], "examples"
    if valid is not None:
        valid_rows = load_data(valid).train
    if not train:
        raise DataError(f"{source}: no training examples")
    return Dataset(train, valid_rows, source)


# --- tokenization ---------------------------------------------------------------------


@dataclass
class Tokenized:
    tokens: list[int]
    offset: int  # loss starts at this token (0: the whole sequence)
    soft: Any = field(default=None, compare=False, repr=False)  # the teacher's (ids, probs) per trained position


@dataclass
class TokenizedSet:
    items: list[Tokenized]
    truncated: int  # examples cut to max_seq_length
    dropped: int  # examples with no answer token left after truncation


def _chat(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool) -> list[int]:
    return list(tokenizer.apply_chat_template(messages, add_generation_prompt=generation_prompt, tokenize=True))


def tokenize_example(tokenizer: Any, example: dict[str, Any], mask_prompt: bool) -> Tokenized:
    has_template = getattr(tokenizer, "has_chat_template", False) or getattr(tokenizer, "chat_template", None)
    if "messages" in example or ("prompt" in example and has_template):
        messages = example.get("messages") or [
            {"role": "user", "content": example["prompt"]},
            {"role": "assistant", "content": example["completion"]},
        ]
        if not has_template:
            raise DataError("the model has no chat template, so 'messages' examples cannot be rendered: use 'text'")
        tokens = _chat(tokenizer, messages, False)
        offset = len(_chat(tokenizer, messages[:-1], True)) if mask_prompt else 0
        return Tokenized(tokens, offset)
    if "prompt" in example:
        prompt = list(tokenizer.encode(example["prompt"], add_special_tokens=True))
        answer = list(tokenizer.encode(example["completion"], add_special_tokens=False))
        eos = getattr(tokenizer, "eos_token_id", None)
        tail = [eos] if eos is not None else []
        return Tokenized(prompt + answer + tail, len(prompt) if mask_prompt else 0)
    tokens = list(tokenizer.encode(example["text"], add_special_tokens=True))
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is not None and (not tokens or tokens[-1] != eos):
        tokens.append(eos)
    return Tokenized(tokens, 0)


def tokenize_all(
    tokenizer: Any, examples: Sequence[dict[str, Any]], max_seq_length: int, mask_prompt: bool
) -> TokenizedSet:
    """Tokenize, truncate to max_seq_length (counted), drop examples left with no answer."""
    items, truncated, dropped = [], 0, 0
    for example in examples:
        t = tokenize_example(tokenizer, example, mask_prompt)
        if len(t.tokens) > max_seq_length:
            truncated += 1
            t = Tokenized(t.tokens[:max_seq_length], t.offset)
        if t.offset >= len(t.tokens) - 1 or len(t.tokens) < 2:
            dropped += 1
            continue
        items.append(t)
    return TokenizedSet(items, truncated, dropped)


def trained_span(item: Tokenized, width: int | None = None) -> tuple[int, int]:
    """[start, end) of the input positions whose next token is trained on (as `batch_arrays`
    masks them), within the first `width` inputs when given."""
    end = len(item.tokens) - 1 if width is None else min(len(item.tokens), width + 1) - 1
    return max(item.offset, 1) - 1, end
