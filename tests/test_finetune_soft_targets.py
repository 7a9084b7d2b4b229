"""Distillation from a teacher's next-token probabilities, on two tiny random models that
share a tokenizer (different seeds): the teacher's top-k, the loss, and a training run."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("mlx.core")

from llamarch.errors import LlamarchError  # noqa: E402
from llamarch.mlx_convert import convert_gguf  # noqa: E402
from tiny_gguf import write_tiny_gguf  # noqa: E402

K = 5


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    """(student, teacher) MLX directories (float32) of two tiny models: one architecture and
    vocabulary, different weights."""
    root = tmp_path_factory.mktemp("soft-targets")
    dirs = []
    for name, seed in (("student", 0), ("teacher", 1)):
        write_tiny_gguf(root / f"{name}.gguf", "qwen2", seed=seed)
        dirs.append(convert_gguf(str(root / f"{name}.gguf"), root / name, dtype="float32"))
    return dirs[0], dirs[1]


def _examples(n: int = 6) -> list[dict]:
    return [
        {
            "messages": [
                {"role": "user", "content": f"say it {i}"},
                {"role": "assistant", "content": f"the answer is {'one ' * i}in the end"},
            ]
        }
        for i in range(n)
    ]


def _load(directory: Path):
    from llamarch.mlx_runtime import load_model

    return load_model(directory)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def test_soft_targets_are_the_teachers_top_k_at_the_trained_positions(pair, tmp_path):
    import mlx.core as mx

    from llamarch.finetune.data import tokenize_all, trained_span
    from llamarch.finetune.soft_targets import CACHE_FILE, teacher_soft_targets

    student_path, teacher_path = pair
    _, tokenizer = _load(student_path)
    teacher, _ = _load(teacher_path)
    items = tokenize_all(tokenizer, _examples(3), 64, mask_prompt=True).items
    (soft,) = teacher_soft_targets(str(teacher_path), tokenizer, [items], K, cache_dir=tmp_path / "cache")
    for item, (ids, probs) in zip(items, soft):
        start, end = trained_span(item)
        assert 0 < end - start < len(item.tokens) - 1  # the answer, not the prompt
        logprobs = _log_softmax(np.array(teacher(mx.array([item.tokens[:-1]]))[0, start:end], dtype=np.float64))
        expected = np.argsort(-logprobs, axis=-1, kind="stable")[:, :K]
        assert ids.shape == probs.shape == (end - start, K)
        assert np.array_equal(ids[:, 0], expected[:, 0])
        top = np.exp(np.take_along_axis(logprobs, ids, axis=-1))
        assert np.allclose(probs, top / top.sum(axis=-1, keepdims=True), atol=1e-5)
        assert np.all(np.diff(probs, axis=-1) <= 1e-7)  # most likely first
    assert (tmp_path / "cache" / CACHE_FILE).is_file()
    moved = teacher_path.with_name("moved")
    teacher_path.rename(moved)  # the stored targets need no teacher
    try:
        (again,) = teacher_soft_targets(str(teacher_path), tokenizer, [items], K, cache_dir=tmp_path / "cache")
    finally:
        moved.rename(teacher_path)
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(soft, again))


def test_a_teacher_pass_killed_partway_resumes_from_what_it_saved(pair, tmp_path, monkeypatch):
    from llamarch.finetune import soft_targets
    from llamarch.finetune.data import tokenize_all

    student_path, teacher_path = pair
    _, tokenizer = _load(student_path)
    items = tokenize_all(tokenizer, _examples(7), 64, mask_prompt=True).items
    monkeypatch.setattr(soft_targets, "SAVE_EVERY", 2)
    seen: list[int] = []

    def killed_after_five(done: int, total: int) -> None:
        seen.append(done)
        if done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        soft_targets.teacher_soft_targets(str(teacher_path), tokenizer, [items], K, tmp_path, killed_after_five)
    seen.clear()
    (resumed,) = soft_targets.teacher_soft_targets(
        str(teacher_path), tokenizer, [items], K, tmp_path, lambda done, total: seen.append(done)
    )
    assert seen == [5, 6, 7]  # the four saved answers were not asked again
    (whole,) = soft_targets.teacher_soft_targets(str(teacher_path), tokenizer, [items], K)
    assert len(resumed) == len(items)
    assert all(np.array_equal(a[0], b[0]) and np.allclose(a[1], b[1]) for a, b in zip(resumed, whole))


def test_distill_loss_mixes_the_answer_and_the_teachers_distribution(pair, tmp_path):
    """The loss over the projected answer positions equals the same mix computed from full logits."""

    from llamarch.finetune.data import tokenize_all, trained_span
    from llamarch.finetune.losses import distill_loss, masked_loss
    from llamarch.finetune.soft_targets import teacher_soft_targets
    from llamarch.finetune.train import batch_arrays

    student_path, teacher_path = pair
    model, tokenizer = _load(student_path)
    data = tokenize_all(tokenizer, _examples(4), 64, mask_prompt=True)
    (soft,) = teacher_soft_targets(str(teacher_path), tokenizer, [data.items], K)
    for item, pair_ in zip(data.items, soft):
        item.soft = pair_
    inputs, positions, targets, weights, soft_ids, soft_probs, n = batch_arrays(data, [0, 1, 2, 3], 64)
    assert soft_ids.shape == (positions.shape[0], K) and float(soft_probs[n:].sum().item()) == 0.0
    width = inputs.shape[1]
    for j, flat in enumerate(np.array(positions)[:n].tolist()):  # each position gets its own item's targets
        item = data.items[flat // width]
        start, _ = trained_span(item)
        assert np.array_equal(np.array(soft_ids[j]), item.soft[0][flat % width - start])
        assert np.allclose(np.array(soft_probs[j]), item.soft[1][flat % width - start])

    logprobs = _log_softmax(np.array(model(inputs), dtype=np.float64).reshape(-1, tokenizer.vocab_size))
    rows = logprobs[np.array(positions)[:n]]
    hard = -rows[np.arange(n), np.array(targets)[:n]].mean()
    soft_ce = -(np.array(soft_probs)[:n] * np.take_along_axis(rows, np.array(soft_ids)[:n], axis=-1)).sum(-1).mean()
    assert hard != pytest.approx(soft_ce, rel=1e-2)  # the two targets differ, so the mix is checked
    for weight in (0.0, 0.3, 1.0):
        got = distill_loss(weight)(model, inputs, positions, targets, weights, soft_ids, soft_probs).item()
        assert got == pytest.approx((1 - weight) * hard + weight * soft_ce, rel=1e-4)
    plain = masked_loss(model, inputs, positions, targets, weights).item()
    assert distill_loss(0.0)(model, inputs, positions, targets, weights, soft_ids, soft_probs).item() == pytest.approx(
        plain, rel=1e-5
    )


def test_training_with_a_teacher_moves_the_student_toward_it(pair, tmp_path):
    import mlx.core as mx

    from llamarch.finetune.data import tokenize_all, trained_span
    from llamarch.finetune.soft_targets import teacher_soft_targets
    from llamarch.finetune.train import train_lora
    from llamarch.mlx_runtime import load_model

    student_dir, teacher_path = pair
    model, tokenizer = load_model(student_dir)
    items = tokenize_all(tokenizer, _examples(), 64, mask_prompt=True).items
    (soft,) = teacher_soft_targets(str(teacher_path), tokenizer, [items], K)

    def cross_entropy_to_teacher(m) -> float:
        total = 0.0
        for item, (ids, probs) in zip(items, soft):
            start, end = trained_span(item)
            logprobs = _log_softmax(np.array(m(mx.array([item.tokens[:-1]]))[0, start:end], dtype=np.float64))
            total += -(probs * np.take_along_axis(logprobs, ids, axis=-1)).sum(-1).mean()
        return total / len(items)

    before = cross_entropy_to_teacher(model)
    events = []
    result = train_lora(
        str(student_dir),
        _examples(),
        tmp_path / "adapter",
        iters=12,
        batch_size=3,
        num_layers=-1,
        learning_rate=3e-3,
        save_every=0,
        teacher=str(teacher_path),
        distill_weight=1.0,
        distill_top_k=K,
        progress=events.append,
    )
    assert result.steps == 12
    assert [e["done"] for e in events if e["event"] == "teacher"][-1] == len(items)
    tuned, _ = load_model(student_dir, adapter_path=result.adapter_dir)
    after = cross_entropy_to_teacher(tuned)
    assert after < before - 0.05, (before, after)


def test_a_teacher_with_another_tokenizer_is_refused_in_one_line(pair):
    from llamarch.finetune.data import tokenize_all
    from llamarch.finetune.soft_targets import teacher_soft_targets

    _, tokenizer = _load(pair[0])
    items = tokenize_all(tokenizer, _examples(1), 64, mask_prompt=True).items
    other = SimpleNamespace(get_vocab=lambda: {"a": 0, "b": 1})
    with pytest.raises(LlamarchError, match="does not share the student's tokenizer"):
        teacher_soft_targets(str(pair[1]), other, [items], K)


def test_distill_settings_are_checked():
    from llamarch.finetune.train import LoraConfig

    with pytest.raises(LlamarchError, match="distill_weight"):
        LoraConfig(teacher="t", distill_weight=1.5)
    with pytest.raises(LlamarchError, match="distill_top_k"):
        LoraConfig(teacher="t", distill_top_k=0)


def test_cli_train_with_a_teacher(pair, tmp_path):
    import json

    from click.testing import CliRunner

    from llamarch.cli import cli
    from llamarch.finetune.soft_targets import CACHE_FILE
    from llamarch.jsonl import write_jsonl

    student, teacher = pair
    write_jsonl(tmp_path / "data" / "train.jsonl", _examples())
    args = [
        "train",
        "-m",
        str(student),
        "--data",
        str(tmp_path / "data"),
        "--out",
        str(tmp_path / "adapter"),
        "--iters",
        "2",
        "--batch-size",
        "2",
        "--layers",
        "1",
        "--teacher",
        str(teacher),
        "--distill-weight",
        "0.7",
        "--distill-top-k",
        "3",
        "--json",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["steps"] == 2
    assert (tmp_path / "adapter" / "checkpoint" / CACHE_FILE).is_file()
    config = json.loads((tmp_path / "adapter" / "llamarch_adapter.json").read_text())["config"]
    assert (config["teacher"], config["distill_weight"], config["distill_top_k"]) == (str(teacher), 0.7, 3)
    bad = CliRunner().invoke(cli, args[:-4] + ["--distill-weight", "2", "--overwrite"])
    assert bad.exit_code == 2 and "distill-weight" in bad.output
