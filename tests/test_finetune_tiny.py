"""Shape-level checks of conversion, training and export on tiny random GGUF models.

The tiny models are float32, so MLX and llama.cpp must agree to rounding: a wrong Q/K
permutation, a transposed LoRA matrix or a wrong alpha shows up as a large logit gap.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mlx.core")

from llamarch.mlx_convert import convert_gguf, permute_qk, unpermute_qk  # noqa: E402
from tiny_gguf import DIMS, write_tiny_gguf  # noqa: E402

REPLY = "the answer"


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def tiny(request, tmp_path_factory) -> tuple[str, Path, dict[str, np.ndarray]]:
    arch = request.param
    path = tmp_path_factory.mktemp(f"tiny-{arch}") / f"tiny-{arch}.gguf"
    return arch, path, write_tiny_gguf(path, arch)


def test_permutation_roundtrip():
    w = np.arange(8 * 3 * 5, dtype=np.float32).reshape(24, 5)
    assert np.array_equal(unpermute_qk(permute_qk(w, 3), 3), w)
    assert not np.array_equal(permute_qk(w, 3), w)


def test_conversion_restores_hf_weights_exactly(tiny, tmp_path):
    arch, path, hf = tiny
    out = convert_gguf(str(path), tmp_path / "mlx", dtype="float32")
    from safetensors.numpy import load_file

    got = load_file(str(out / "model.safetensors"))
    assert set(got) == set(hf)
    for name, value in hf.items():
        assert np.array_equal(got[name], value), name
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == arch
    assert config["num_key_value_heads"] == DIMS["n_head_kv"]
    assert config["tie_word_embeddings"] is False
    assert json.loads((out / "llamarch.json").read_text())["base"]["architecture"] == arch


def test_converted_tiny_model_matches_llamacpp(tiny, tmp_path):
    from llamarch import LLM
    from llamarch.finetune.parity import compare
    from llamarch.mlx_runtime import load_model

    arch, path, _ = tiny
    model, tokenizer = load_model(convert_gguf(str(path), tmp_path / "mlx", dtype="float32"))
    with LLM(str(path), n_ctx=256) as llm:
        report = compare(model, tokenizer, llm.backend, n_tokens=8)
    assert report.tokenizer_matches == report.tokenizer_total
    assert report.greedy_agreement == 1.0
    assert max(p.first_logit_max_abs_diff for p in report.prompts) < 0.05


def _teach(n: int = 8) -> list[dict]:
    return [
        {"messages": [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": REPLY}]}
        for i in range(n)
    ]


def test_adapter_export_matches_mlx_on_llamacpp(tiny, tmp_path):
    """A trained tiny adapter: GGUF names/shapes/alpha as llama.cpp expects, and the same logits."""
    import gguf

    from llamarch import LLM
    from llamarch.finetune import export_gguf_lora, train_lora
    from llamarch.finetune.parity import llamacpp_logits, mlx_logits
    from llamarch.mlx_runtime import load_model

    arch, path, _ = tiny
    result = train_lora(
        str(path),
        _teach(),
        tmp_path / "adapter",
        iters=4,
        batch_size=4,
        rank=4,
        alpha=16,
        learning_rate=5e-2,
        num_layers=-1,
        save_every=0,
    )
    assert result.steps == 4 and result.train_losses
    gguf_path = export_gguf_lora(result.adapter_dir)

    reader = gguf.GGUFReader(gguf_path)
    meta = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}
    assert meta["general.type"] == "adapter" and meta["adapter.type"] == "lora"
    assert meta["general.architecture"] == arch
    assert meta["adapter.lora.alpha"] == pytest.approx(16.0)
    assert meta["llamarch.base.n_layers"] == DIMS["n_layers"]
    shapes = {t.name: tuple(int(x) for x in t.shape) for t in reader.tensors}  # ggml order: ne0 first
    n_embd, kv = DIMS["n_embd"], DIMS["n_head_kv"] * DIMS["n_embd"] // DIMS["n_head"]
    assert shapes["blk.0.attn_q.weight.lora_a"] == (n_embd, 4)
    assert shapes["blk.0.attn_q.weight.lora_b"] == (4, n_embd)
    assert shapes["blk.1.attn_k.weight.lora_b"] == (4, kv)
    assert shapes["blk.1.ffn_down.weight.lora_a"] == (DIMS["n_ff"], 4)
    assert len(shapes) == 2 * 7 * DIMS["n_layers"]

    # The GGUF adapter's delta, in llama.cpp's layout, equals MLX's delta permuted like the base.
    from safetensors.numpy import load_file

    w = load_file(str(result.adapter_dir / "adapters.safetensors"))
    a, b = w["model.layers.0.self_attn.q_proj.lora_a"], w["model.layers.0.self_attn.q_proj.lora_b"]
    ga = next(t for t in reader.tensors if t.name == "blk.0.attn_q.weight.lora_a").data
    gb = next(t for t in reader.tensors if t.name == "blk.0.attn_q.weight.lora_b").data
    expected = (a @ b).T
    if arch == "llama":
        expected = permute_qk(expected, DIMS["n_head"])
    assert np.allclose(gb @ ga, expected, atol=1e-6)

    model, tokenizer = load_model(_mlx_dir(result), result.adapter_dir)
    ids = tokenizer.encode("<|im_start|>user\nquestion 1<|im_end|>\n<|im_start|>assistant\n", add_special_tokens=False)
    with LLM(str(path), n_ctx=256) as base, LLM(str(path), n_ctx=256, lora_path=str(gguf_path)) as tuned:
        plain, adapted = llamacpp_logits(base.backend, ids), llamacpp_logits(tuned.backend, ids)
    ours = mlx_logits(model, ids)
    assert np.abs(adapted - plain).max() > 0.5  # the adapter changes llama.cpp's output
    assert np.abs(adapted - ours).max() < 0.05  # and llama.cpp applies it as MLX does


def _mlx_dir(result) -> Path:
    return Path(json.loads((result.adapter_dir / "llamarch_adapter.json").read_text())["model_dir"])


def test_fused_export_matches_adapter(tiny, tmp_path):
    from llamarch import LLM
    from llamarch.finetune import export_fused_gguf, export_gguf_lora, train_lora
    from llamarch.finetune.parity import llamacpp_logits

    arch, path, _ = tiny
    result = train_lora(
        str(path),
        _teach(4),
        tmp_path / "adapter",
        iters=2,
        batch_size=4,
        rank=4,
        learning_rate=5e-2,
        num_layers=1,
        targets=("q", "k", "down"),
        save_every=0,
    )
    fused = export_fused_gguf(result.adapter_dir)
    lora = export_gguf_lora(result.adapter_dir)
    ids = [5, 6, 7, 8, 9]
    with LLM(str(fused), n_ctx=256) as f, LLM(str(path), n_ctx=256, lora_path=str(lora)) as a:
        # f16 storage of the fused weights: close, not identical
        assert np.abs(llamacpp_logits(f.backend, ids) - llamacpp_logits(a.backend, ids)).max() < 0.1


def test_averaged_adapters_are_the_mean_delta_on_mlx_and_llamacpp(tiny, tmp_path):
    """Two seeds' adapters averaged: a rank-2r adapter whose delta is their mean, applied alike by both engines."""
    from safetensors.numpy import load_file

    from llamarch import LLM
    from llamarch.finetune import export_gguf_lora, train_lora
    from llamarch.finetune.parity import llamacpp_logits, mlx_logits
    from llamarch.finetune.soup import average_adapters
    from llamarch.mlx_runtime import load_model

    arch, path, _ = tiny
    runs = [
        train_lora(
            str(path),
            _teach(),
            tmp_path / f"seed{seed}",
            iters=3,
            batch_size=2,
            rank=4,
            alpha=16,
            learning_rate=5e-2,
            num_layers=-1,
            seed=seed,
            save_every=0,
        )
        for seed in (0, 1)
    ]
    soup = average_adapters([r.adapter_dir for r in runs], tmp_path / "soup")

    module = "model.layers.1.mlp.down_proj"
    deltas = []
    for directory in [r.adapter_dir for r in runs] + [soup]:
        w = load_file(str(directory / "adapters.safetensors"))
        deltas.append(w[f"{module}.lora_a"] @ w[f"{module}.lora_b"])
    assert w[f"{module}.lora_a"].shape[1] == 8  # rank 4 + 4
    assert not np.allclose(deltas[0], deltas[1], atol=1e-4)  # the seeds did learn differently
    assert np.allclose(deltas[2], (deltas[0] + deltas[1]) / 2, atol=1e-6)

    ids = [5, 6, 7, 8, 9]
    twice = average_adapters([runs[0].adapter_dir, runs[0].adapter_dir], tmp_path / "twice")
    model, _ = load_model(_mlx_dir(runs[0]), soup)
    with (
        LLM(str(path), n_ctx=256) as base,
        LLM(str(path), n_ctx=256, lora_path=str(export_gguf_lora(soup))) as tuned,
        LLM(str(path), n_ctx=256, lora_path=str(export_gguf_lora(runs[0].adapter_dir))) as one,
        LLM(str(path), n_ctx=256, lora_path=str(export_gguf_lora(twice))) as same,
    ):
        plain, adapted = llamacpp_logits(base.backend, ids), llamacpp_logits(tuned.backend, ids)
        # an adapter averaged with itself is that adapter (rank 2r, same alpha / rank) on llama.cpp
        assert np.abs(llamacpp_logits(same.backend, ids) - llamacpp_logits(one.backend, ids)).max() < 1e-3
    change = np.abs(adapted - plain).max()
    assert change > 0.5
    assert np.abs(adapted - mlx_logits(model, ids)).max() < 0.02 * change  # both engines apply the soup alike


def test_adapters_of_different_bases_are_not_averaged(tmp_path):
    from llamarch.errors import LlamarchError
    from llamarch.finetune import train_lora
    from llamarch.finetune.soup import average_adapters

    a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    write_tiny_gguf(a, "llama", seed=0)
    write_tiny_gguf(b, "llama", seed=1)
    runs = [
        train_lora(str(m), _teach(2), tmp_path / m.stem, iters=1, batch_size=2, num_layers=1, save_every=0)
        for m in (a, b)
    ]
    with pytest.raises(LlamarchError, match="cannot average .* base models differ"):
        average_adapters([r.adapter_dir for r in runs], tmp_path / "soup")
    assert not (tmp_path / "soup").exists()


def test_adapter_for_another_base_is_refused(tmp_path):
    from llamarch import LLM
    from llamarch.finetune import AdapterMismatchError, export_gguf_lora, train_lora

    a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    write_tiny_gguf(a, "llama", seed=0)
    write_tiny_gguf(b, "llama", seed=1)  # same shapes, other weights
    result = train_lora(str(a), _teach(2), tmp_path / "adapter", iters=1, batch_size=2, num_layers=1, save_every=0)
    lora = export_gguf_lora(result.adapter_dir)
    with pytest.raises(AdapterMismatchError, match="made for 'a.gguf'.*weights differ"):
        LLM(str(b), lora_path=str(lora))
    q = tmp_path / "q.gguf"
    write_tiny_gguf(q, "qwen2")
    with pytest.raises(AdapterMismatchError, match="architecture 'llama'"):
        LLM(str(q), lora_path=str(lora))
    with LLM(str(a), lora_path=str(lora), n_ctx=128) as ok:  # its own base loads
        assert ok.backend.lora_path is not None
    # The MLX side checks the adapter directory's record the same way.
    other_mlx = convert_gguf(str(b), tmp_path / "b-mlx")
    with pytest.raises(AdapterMismatchError, match="weights differ"):
        LLM(str(other_mlx), backend="mlx", lora_path=str(result.adapter_dir))
    with pytest.raises(Exception, match="MLX adapter directory.*llamarch export"):
        LLM(str(a), lora_path=str(result.adapter_dir))


def test_answer_only_projection_equals_the_full_masked_loss(tiny, tmp_path):
    """The loss projects only answer positions onto the vocabulary; it must equal the plain
    masked mean over full logits."""
    import mlx.core as mx
    import mlx.nn as nn

    from llamarch.finetune.data import tokenize_all
    from llamarch.finetune.losses import masked_loss
    from llamarch.finetune.train import batch_arrays
    from llamarch.mlx_runtime import load_model

    _, path, _ = tiny
    model, tokenizer = load_model(convert_gguf(str(path), tmp_path / "mlx", dtype="float32"))
    data = tokenize_all(tokenizer, _teach(3) + [{"text": "the end of the story"}], 64, mask_prompt=True)
    inputs, positions, targets, weights, n = batch_arrays(data, [0, 1, 2, 3], 64)
    assert n == int(weights.sum().item()) and positions.shape[0] % 32 == 0
    ours = masked_loss(model, inputs, positions, targets, weights).item()

    logits = model(inputs)
    full_targets = mx.zeros(inputs.shape, mx.int32).reshape(-1)
    mask = mx.zeros(inputs.shape).reshape(-1)
    full_targets[positions[:n]] = targets[:n]
    mask[positions[:n]] = 1.0
    ce = nn.losses.cross_entropy(logits.reshape(-1, logits.shape[-1]), full_targets) * mask
    assert ours == pytest.approx((ce.sum() / mask.sum()).item(), rel=1e-5)


def test_fine_tune_api_trains_exports_and_runs_on_llamacpp(tmp_path):
    """`llamarch.finetune.fine_tune`: the one call StudentTeacher makes (train, export, run)."""
    from llamarch import LLM
    from llamarch.finetune import FineTuned, fine_tune

    path = tmp_path / "tiny.gguf"
    write_tiny_gguf(path, "qwen2")
    tuned = fine_tune(str(path), _teach(4), iters=2, batch_size=2, num_layers=1, save_every=0)
    assert isinstance(tuned, FineTuned) and tuned.result.steps == 2
    assert tuned.adapter_dir.parent.name == "adapters" and tuned.gguf_path.suffix == ".gguf"
    with LLM(str(path), lora_path=str(tuned.gguf_path), n_ctx=128) as llm:
        assert llm.backend.lora_path == tuned.gguf_path
        assert llm.respond("the", raw=True, temperature=0, max_tokens=2).stats.finish_reason in ("stop", "length")
