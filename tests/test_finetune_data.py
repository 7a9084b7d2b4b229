"""Training data: formats, bad input named by line, truncation counts, batching."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llamarch.finetune.data import DataError, load_data, tokenize_all
from llamarch.finetune.train import LoraConfig, batch_for_step, make_batches


def write(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


GOOD = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


def test_directory_without_train_jsonl(tmp_path):
    write(tmp_path / "data" / "valid.jsonl", [GOOD])
    with pytest.raises(DataError, match="has no train.jsonl"):
        load_data(tmp_path / "data")


def test_malformed_line_is_named_by_number(tmp_path):
    write(tmp_path / "d" / "train.jsonl", [GOOD, GOOD, "{not json"])
    with pytest.raises(DataError, match=r"train.jsonl:3: not valid JSON"):
        load_data(tmp_path / "d")


@pytest.mark.parametrize(
    "row, reason",
    [
        ({"messages": [{"role": "user", "content": "q"}]}, "last message must be the assistant"),
        ({"messages": [{"role": "robot", "content": "q"}]}, "role 'robot'"),
        ({"prompt": "q"}, "'prompt' and 'completion' must both be strings"),
        ({"foo": 1}, "no 'messages', 'prompt'/'completion' or 'text' key"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_bad_examples(tmp_path, row, reason):
    write(tmp_path / "d" / "train.jsonl", [GOOD, row])
    with pytest.raises(DataError, match=f"train.jsonl:2: .*{reason}"):
        load_data(tmp_path / "d")
    with pytest.raises(DataError, match=rf"data\[1\]: .*{reason}"):
        load_data([GOOD, row])


def test_formats_and_valid_split(tmp_path):
    write(tmp_path / "d" / "train.jsonl", [GOOD, {"prompt": "a", "completion": "b"}, {"text": "plain"}])
    write(tmp_path / "d" / "valid.jsonl", [GOOD])
    data = load_data(tmp_path / "d")
    assert len(data.train) == 3 and len(data.valid) == 1


class CharTokenizer:
    """Pure logic stand-in: one token per character, a chat format of fixed markers."""

    has_chat_template = True
    eos_token_id = 0

    def apply_chat_template(self, messages, add_generation_prompt, tokenize):
        text = "".join(f"<{m['role'][0]}>{m['content']}|" for m in messages) + ("<a>" if add_generation_prompt else "")
        return [ord(c) for c in text]

    def encode(self, text, add_special_tokens=True):
        return [ord(c) for c in text]


def test_prompt_mask_and_truncation_counts():
    long = {"messages": [{"role": "user", "content": "q" * 50}, {"role": "assistant", "content": "answer"}]}
    short = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a" * 30}]}
    masked = tokenize_all(CharTokenizer(), [short, long], max_seq_length=40, mask_prompt=True)
    assert masked.truncated == 1 and masked.dropped == 1  # the long one lost its whole answer
    item = masked.items[0]
    assert item.offset == len("<u>q|<a>")
    unmasked = tokenize_all(CharTokenizer(), [short, long], max_seq_length=40, mask_prompt=False)
    assert unmasked.truncated == 1 and unmasked.dropped == 0 and unmasked.items[1].offset == 0


def test_batch_order_is_reproducible_for_resume():
    batches = make_batches([5, 1, 9, 3, 7, 2], 2)
    assert [sorted(b) for b in batches] == [[1, 5], [0, 3], [2, 4]]
    run = [batch_for_step(batches, s, seed=3) for s in range(9)]
    assert run == [batch_for_step(batches, s, seed=3) for s in range(9)]
    assert sorted(map(tuple, run[:3])) == sorted(map(tuple, batches))  # each epoch visits every batch


def test_lora_config():
    assert LoraConfig(rank=8).lora_scale == 2.0
    assert LoraConfig(rank=8, alpha=32).lora_scale == 4.0
    assert LoraConfig(rank=4, scale=20).lora_scale == 20.0
    assert LoraConfig(targets=("q", "v")).keys == ["self_attn.q_proj", "self_attn.v_proj"]
    assert LoraConfig(epochs=2).total_steps(5) == 10 and LoraConfig().total_steps(5) == 100
    with pytest.raises(Exception, match="alpha or scale"):
        LoraConfig(rank=8, alpha=16, scale=3)
    with pytest.raises(Exception, match="unknown LoRA target"):
        LoraConfig(targets=("qq",))
