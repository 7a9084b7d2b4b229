"""LoRA training throughput: llamarch's MLX setup vs stock mlx-cpu vs torch + PEFT.

Same LoRA configuration everywhere: rank 8, alpha 16, all linear layers (q, k, v, o, gate,
up, down) of the last 8 blocks, batch 2 x 128 tokens, float32, AdamW-style optimizer,
loss on every token. Models have the real shapes (SmolLM2-135M, Qwen2.5-0.5B) and random
weights: throughput does not depend on the values.

Each engine runs in its own process (the BLAS choice is process-wide): a warm-up, then
several timed steps; the median step gives tokens/s. Prints one JSON object.

    flock /tmp/llamarch-heavy.lock python benchmarks/lora.py            # SmolLM2 + Qwen 0.5B
    python benchmarks/lora.py --models smollm2-135m --steps 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

SHAPES = {
    "smollm2-135m": {
        "model_type": "llama",
        "hidden_size": 576,
        "num_hidden_layers": 30,
        "intermediate_size": 1536,
        "num_attention_heads": 9,
        "num_key_value_heads": 3,
        "rms_norm_eps": 1e-5,
        "vocab_size": 49152,
        "rope_theta": 100000.0,
        "tie_word_embeddings": True,
        "max_position_embeddings": 8192,
    },
    "qwen2.5-coder-0.5b": {
        "model_type": "qwen2",
        "hidden_size": 896,
        "num_hidden_layers": 24,
        "intermediate_size": 4864,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-6,
        "vocab_size": 151936,
        "rope_theta": 1000000.0,
        "tie_word_embeddings": True,
        "max_position_embeddings": 32768,
    },
}
RANK, ALPHA, LAYERS, BATCH, SEQ = 8, 16.0, 8, 2, 128
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


# --- workers (each runs in its own process) -------------------------------------------------


def _mlx_worker(shape: dict, steps: int, warmup: int) -> dict:
    from llamarch.mlx_runtime import blas_path, import_mlx

    mx = import_mlx()
    import mlx.optimizers as optim
    from mlx_lm.models import llama, qwen2
    from mlx_lm.tuner.utils import linear_to_lora_layers

    from llamarch.finetune.train import build_step

    module = llama if shape["model_type"] == "llama" else qwen2
    model = module.Model(module.ModelArgs.from_dict(shape))
    model.set_dtype(mx.float32)
    mx.eval(model.parameters())
    model.freeze()
    keys = [f"self_attn.{t}" if t.endswith(("q_proj", "k_proj", "v_proj", "o_proj")) else f"mlp.{t}" for t in TARGETS]
    linear_to_lora_layers(model, LAYERS, {"rank": RANK, "scale": ALPHA / RANK, "dropout": 0.0, "keys": keys})
    optimizer = optim.AdamW(learning_rate=1e-4, weight_decay=0.0)
    step, state, _ = build_step(model, optimizer)
    tokens = mx.random.randint(0, shape["vocab_size"], (BATCH, SEQ + 1))
    # Loss on every token, as in the torch baseline: all positions go through the output layer.
    batch = (tokens[:, :-1], mx.arange(BATCH * SEQ), tokens[:, 1:].reshape(-1), mx.ones((BATCH * SEQ,)))
    times = []
    for i in range(warmup + steps):
        tic = time.perf_counter()
        loss = step(*batch)
        mx.eval(state, loss)
        if i >= warmup:
            times.append(time.perf_counter() - tic)
    return {
        "blas": str(blas_path()) if blas_path() else "bundled",
        "step_s": times,
        "peak_memory_mb": mx.get_peak_memory() / 2**20,
    }


def _torch_worker(shape: dict, steps: int, warmup: int) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    from llamarch.hardware import physical_cores

    torch.set_num_threads(physical_cores())
    torch.manual_seed(0)
    config = AutoConfig.for_model(**shape)
    model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.float32)
    n = shape["num_hidden_layers"]
    lora = LoraConfig(
        r=RANK,
        lora_alpha=ALPHA,
        lora_dropout=0.0,
        target_modules=TARGETS,
        layers_to_transform=list(range(n - LAYERS, n)),
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.0)
    tokens = torch.randint(0, shape["vocab_size"], (BATCH, SEQ + 1))
    times = []
    for i in range(warmup + steps):
        tic = time.perf_counter()
        out = model(input_ids=tokens[:, :-1])
        loss = torch.nn.functional.cross_entropy(
            out.logits.reshape(-1, out.logits.shape[-1]), tokens[:, 1:].reshape(-1)
        )
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i >= warmup:
            times.append(time.perf_counter() - tic)
    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "step_s": times}


WORKERS = {"llamarch": _mlx_worker, "mlx_stock": _mlx_worker, "torch_peft": _torch_worker}


def _worker_main(engine: str, model: str, steps: int, warmup: int) -> None:
    result = WORKERS[engine](SHAPES[model], steps, warmup)
    result["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


# --- driver ------------------------------------------------------------------------------------


def run_engine(engine: str, model: str, steps: int, warmup: int) -> dict:
    env = dict(os.environ)
    if engine == "mlx_stock":
        env["LLAMARCH_BLAS"] = "off"  # mlx-cpu's bundled BLAS, as installed
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        engine,
        "--models",
        model,
        "--steps",
        str(steps),
        "--warmup",
        str(warmup),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    median = statistics.median(result["step_s"])
    result["median_step_s"] = round(median, 3)
    result["tokens_per_s"] = round(BATCH * SEQ / median, 1)
    result["step_s"] = [round(t, 3) for t in result["step_s"]]
    return result


def torch_available() -> bool:
    try:
        import peft  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="smollm2-135m,qwen2.5-coder-0.5b")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per engine (after the warm-up)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--stock-steps", type=int, default=2, help="timed steps for stock mlx-cpu (slow)")
    parser.add_argument("--stock-models", default="smollm2-135m", help="models to run stock mlx-cpu on ('' for none)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker_main(args.worker, args.models, args.steps, args.warmup)
        return
    report: dict = {
        "config": {
            "rank": RANK,
            "alpha": ALPHA,
            "layers": LAYERS,
            "targets": TARGETS,
            "batch": BATCH,
            "seq": SEQ,
            "dtype": "float32",
        }
    }
    have_torch = torch_available()
    for model in args.models.split(","):
        row: dict = {"llamarch": run_engine("llamarch", model, args.steps, args.warmup)}
        if model in args.stock_models.split(","):
            row["mlx_stock"] = run_engine("mlx_stock", model, args.stock_steps, 1)
        row["torch_peft"] = (
            run_engine("torch_peft", model, args.steps, args.warmup)
            if have_torch
            else {"skipped": "torch/peft not installed"}
        )
        ours = row["llamarch"].get("tokens_per_s")
        for name, key in (("mlx_stock", "speedup_vs_stock"), ("torch_peft", "ratio_vs_torch")):
            theirs = row.get(name, {}).get("tokens_per_s")
            if ours and theirs:
                row[key] = round(ours / theirs, 2)
        report[model] = row
        print(json.dumps({model: row}), file=sys.stderr)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
