"""Tiny random GGUF models (llama / qwen2 layout) that both llama.cpp and the converter load.

Shape-level checks run on these in milliseconds: weights are float32, so llama.cpp and MLX
must agree to rounding, which a wrong permutation or a transposed adapter would break.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from llamarch.mlx_convert import permute_qk
from llamarch.mlx_runtime import bytes_to_unicode

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
DIMS = {"n_embd": 64, "n_ff": 128, "n_head": 4, "n_head_kv": 2, "n_layers": 2}


def tiny_vocab() -> tuple[list[str], list[int], list[str]]:
    """256 byte tokens, a few merges, and the chat control tokens."""
    chars = [bytes_to_unicode()[b] for b in range(256)]
    merges = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r"]
    merged = ["Ġt", "he", "Ġthe", "in", "Ġa", "er"]
    tokens = chars + merged + ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    types = [1] * (len(chars) + len(merged)) + [3, 3, 3]
    return tokens, types, merges


def write_tiny_gguf(path: Path, arch: str = "llama", seed: int = 0) -> dict[str, np.ndarray]:
    """Write a tiny random model; return its weights in the Hugging Face layout."""
    import gguf

    rng = np.random.default_rng(seed)
    d = DIMS
    tokens, types, merges = tiny_vocab()
    n_vocab, hd = len(tokens), d["n_embd"] // d["n_head"]
    w = gguf.GGUFWriter(str(path), arch)
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(f"tiny-{arch}")
    w.add_block_count(d["n_layers"])
    w.add_context_length(256)
    w.add_embedding_length(d["n_embd"])
    w.add_feed_forward_length(d["n_ff"])
    w.add_head_count(d["n_head"])
    w.add_head_count_kv(d["n_head_kv"])
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(hd)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(n_vocab - 3)
    w.add_eos_token_id(n_vocab - 1)
    w.add_add_bos_token(False)
    w.add_chat_template(CHATML)

    def rand(*shape: int, scale: float = 0.2) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    hf: dict[str, np.ndarray] = {"model.embed_tokens.weight": rand(n_vocab, d["n_embd"], scale=1.0)}
    hf["model.norm.weight"] = 1 + rand(d["n_embd"], scale=0.05)
    hf["lm_head.weight"] = rand(n_vocab, d["n_embd"])
    kv = d["n_head_kv"] * hd
    for i in range(d["n_layers"]):
        p = f"model.layers.{i}."
        hf[p + "input_layernorm.weight"] = 1 + rand(d["n_embd"], scale=0.05)
        hf[p + "post_attention_layernorm.weight"] = 1 + rand(d["n_embd"], scale=0.05)
        hf[p + "self_attn.q_proj.weight"] = rand(d["n_embd"], d["n_embd"])
        hf[p + "self_attn.k_proj.weight"] = rand(kv, d["n_embd"])
        hf[p + "self_attn.v_proj.weight"] = rand(kv, d["n_embd"])
        hf[p + "self_attn.o_proj.weight"] = rand(d["n_embd"], d["n_embd"])
        hf[p + "mlp.gate_proj.weight"] = rand(d["n_ff"], d["n_embd"])
        hf[p + "mlp.up_proj.weight"] = rand(d["n_ff"], d["n_embd"])
        hf[p + "mlp.down_proj.weight"] = rand(d["n_embd"], d["n_ff"])
        if arch == "qwen2":
            for name, n in (("q", d["n_embd"]), ("k", kv), ("v", kv)):
                hf[p + f"self_attn.{name}_proj.bias"] = rand(n, scale=0.1)
    from llamarch.mlx_convert import gguf_name

    for name, value in hf.items():
        stored = value
        if arch == "llama" and ".q_proj." in name:
            stored = permute_qk(value, d["n_head"])
        elif arch == "llama" and ".k_proj." in name:
            stored = permute_qk(value, d["n_head_kv"])
        w.add_tensor(gguf_name(name), np.ascontiguousarray(stored))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return hf
