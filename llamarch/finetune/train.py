"""LoRA training with MLX: mlx-lm's LoRA layers, llamarch's loop (checkpoints, resume, Ctrl-C).

The adapter directory is mlx-lm's format (adapter_config.json, adapters.safetensors), so
`mlx_lm.generate --adapter-path` and `mlx_lm.fuse` work on it too; `llamarch_adapter.json`
adds the base model's identity, and `checkpoint/` the optimizer state for `--resume`.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..errors import LlamarchError
from ..identity import ADAPTER_META, BaseIdentity, mlx_identity, read_adapter_meta, write_json_atomic
from ..mlx_convert import mlx_model_dir
from .data import Dataset, TokenizedSet, load_data, tokenize_all, trained_span
from .losses import distill_loss, masked_loss

ADAPTER_FILE = "adapters.safetensors"
CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.safetensors"

# Short names for the linear layers of a transformer block (Llama / Qwen2 layout).
TARGETS = {
    "q": "self_attn.q_proj",
    "k": "self_attn.k_proj",
    "v": "self_attn.v_proj",
    "o": "self_attn.o_proj",
    "gate": "mlp.gate_proj",
    "up": "mlp.up_proj",
    "down": "mlp.down_proj",
}
PAD_TO = 32


@dataclass
class LoraConfig:
    """Everything that decides a training run. `alpha` and `scale` are two views of one
    number (scale = alpha / rank, as in PEFT and llama.cpp); give at most one."""

    rank: int = 8
    alpha: float | None = None  # default: 2 * rank (scale 2.0)
    scale: float | None = None
    dropout: float = 0.0
    num_layers: int = 16  # LoRA on the last N blocks; -1: all
    targets: tuple[str, ...] = tuple(TARGETS)
    learning_rate: float = 1e-4
    iters: int | None = None  # default: 100 unless epochs is given
    epochs: float | None = None
    batch_size: int = 4
    max_seq_length: int = 2048
    mask_prompt: bool = True  # loss on the answer only
    seed: int = 0
    steps_per_report: int = 10
    steps_per_eval: int = 50
    val_batches: int = 25  # -1: the whole validation set
    save_every: int = 50
    teacher: str | None = None  # distill from this model's next-token probabilities (same tokenizer)
    distill_weight: float = 0.5  # with a teacher: the share of the loss that is the teacher's soft targets
    distill_top_k: int = 16  # with a teacher: its likeliest tokens kept per position

    def __post_init__(self) -> None:
        if self.alpha is not None and self.scale is not None and not math.isclose(self.alpha / self.rank, self.scale):
            raise LlamarchError(
                f"give alpha or scale, not both (alpha {self.alpha} / rank {self.rank} != scale {self.scale})"
            )
        if self.rank < 1 or self.batch_size < 1 or self.max_seq_length < 2:
            raise LlamarchError("rank, batch size and max sequence length must be positive")
        if not 0 <= self.distill_weight <= 1 or self.distill_top_k < 1:
            raise LlamarchError(
                f"distill_weight must be from 0 to 1 and distill_top_k at least 1 "
                f"(got {self.distill_weight} and {self.distill_top_k})"
            )
        self.targets = tuple(self.targets)
        unknown = [t for t in self.targets if t not in TARGETS and t not in TARGETS.values()]
        if unknown:
            raise LlamarchError(f"unknown LoRA target(s) {', '.join(unknown)}: choose from {', '.join(TARGETS)}")

    @property
    def lora_scale(self) -> float:
        if self.scale is not None:
            return float(self.scale)
        return float(self.alpha if self.alpha is not None else 2 * self.rank) / self.rank

    @property
    def keys(self) -> list[str]:
        return [TARGETS.get(t, t) for t in self.targets]

    def total_steps(self, n_batches: int) -> int:
        if self.iters is not None:
            return int(self.iters)
        if self.epochs is not None:
            return max(1, math.ceil(self.epochs * n_batches))
        return 100

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> LoraConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"unknown training option(s): {', '.join(unknown)}")
        return cls(**{k: v for k, v in kwargs.items() if v is not None})


@dataclass
class TrainResult:
    adapter_dir: Path
    steps: int  # optimizer steps done in total (resumed runs included)
    total_steps: int
    train_losses: list[tuple[int, float]] = field(default_factory=list)  # (step, mean loss since the last report)
    val_losses: list[tuple[int, float]] = field(default_factory=list)
    trained_tokens: int = 0
    seconds: float = 0.0
    truncated: int = 0
    dropped: int = 0
    base: BaseIdentity | None = None
    peak_memory_bytes: int = 0

    @property
    def tokens_per_second(self) -> float:
        return self.trained_tokens / self.seconds if self.seconds > 0 else 0.0

    @property
    def final_loss(self) -> float | None:
        return self.train_losses[-1][1] if self.train_losses else None


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training: a checkpoint was saved first."""

    def __init__(self, result: TrainResult):
        super().__init__(f"training interrupted at step {result.steps}/{result.total_steps}")
        self.result = result


ProgressCallback = Callable[[dict[str, Any]], None]
"""Called with events: {"event": "start"|"step"|"eval"|"save"|"done", "step": n, "total": N, ...}."""


# --- batches ------------------------------------------------------------------------------


def make_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (less padding)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def batch_for_step(batches: list[list[int]], step: int, seed: int) -> list[int]:
    """The batch of a 0-based step: one shuffled pass per epoch, the same on resume."""
    import numpy as np

    epoch, index = divmod(step, len(batches))
    order = np.random.default_rng(seed + epoch).permutation(len(batches))
    return batches[int(order[index])]


def batch_arrays(data: TokenizedSet, indices: Sequence[int], max_len: int) -> tuple[Any, Any, Any, Any, int]:
    """(inputs, positions, targets, weights, trained tokens) as MLX arrays.

    `inputs` is padded to a multiple of 32 tokens. Only the positions whose next token is
    trained on (the answers) go through the output layer: `positions` indexes them in the
    flattened batch, padded to a multiple of 32 with weight 0, so a compiled step sees
    few distinct shapes. With prompt masking this skips most of the vocabulary projection.
    """
    import numpy as np

    from ..mlx_runtime import import_mlx

    mx = import_mlx()
    items = [data.items[i] for i in indices]
    longest = max(len(t.tokens) for t in items)
    width = min(max_len, PAD_TO * math.ceil((longest - 1) / PAD_TO))
    tokens = np.zeros((len(items), width + 1), np.int32)
    mask = np.zeros((len(items), width), bool)
    for row, item in enumerate(items):
        seq = item.tokens[: width + 1]
        tokens[row, : len(seq)] = seq
        mask[row, max(item.offset, 1) - 1 : len(seq) - 1] = True
    flat = np.flatnonzero(mask.reshape(-1))
    n = len(flat)
    size = min(mask.size, PAD_TO * math.ceil(n / PAD_TO))
    positions = np.zeros(size, np.int32)
    positions[:n] = flat
    weights = np.zeros(size, np.float32)
    weights[:n] = 1.0
    targets = tokens[:, 1:].reshape(-1)[positions]
    arrays = [tokens[:, :-1], positions, targets, weights]
    if items[0].soft is not None:
        arrays += soft_target_arrays(items, width, size)
    return (*(mx.array(a) for a in arrays), n)


def soft_target_arrays(items: Sequence[Any], width: int, size: int) -> list[Any]:
    """The teacher's (ids, probs) at each trained position, in `batch_arrays`' order
    (row by row), padded to `size` positions with probability 0."""
    import numpy as np

    ids = [item.soft[0][: max(0, end - start)] for item in items for start, end in [trained_span(item, width)]]
    probs = [item.soft[1][: len(i)] for item, i in zip(items, ids)]
    k = ids[0].shape[1]
    n = sum(len(i) for i in ids)
    soft_ids, soft_probs = np.zeros((size, k), np.int32), np.zeros((size, k), np.float32)
    soft_ids[:n], soft_probs[:n] = np.concatenate(ids), np.concatenate(probs)
    return [soft_ids, soft_probs]


def build_step(
    model: Any,
    optimizer: Any,
    loss: Callable[..., Any] = masked_loss,
) -> tuple[Callable[..., Any], list[Any], Callable[..., Any]]:
    """A compiled training step `step(*batch) -> loss` (the batch as `batch_arrays` gives it), the
    state to evaluate after each step, and the loss function (for validation)."""
    from functools import partial

    import mlx.core as mx
    import mlx.nn as nn

    value_and_grad = nn.value_and_grad(model, loss)
    state = [model.state, optimizer.state, mx.random.state]

    @partial(mx.compile, inputs=state, outputs=state)
    def step(*batch: Any) -> Any:
        loss, grads = value_and_grad(model, *batch)
        optimizer.update(model, grads)
        return loss

    return step, state, loss


# --- the run ------------------------------------------------------------------------------


def model_spec(model: Any) -> str:
    """A model spec from an id, a path, or an `LLM` / backend object (its file or directory)."""
    backend = getattr(model, "backend", model)
    for attr in ("model_path", "model_dir"):
        if isinstance(getattr(backend, attr, None), Path):
            return str(getattr(backend, attr))
    return os.fspath(model)


def has_checkpoint(out_dir: str | os.PathLike[str]) -> bool:
    """Whether `out_dir` holds a training checkpoint that `resume=True` can continue."""
    return (Path(out_dir) / CHECKPOINT_DIR / STATE_FILE).is_file()


def _prepare_out_dir(out: Path, resume: bool, overwrite: bool) -> dict[str, Any] | None:
    """The saved state to resume from (None: a fresh run); refuses to clobber a run."""
    state_file = out / CHECKPOINT_DIR / STATE_FILE
    if resume:
        if not state_file.is_file():
            raise LlamarchError(f"nothing to resume in {out}: no checkpoint there (train without --resume first)")
        import json

        return json.loads(state_file.read_text())
    if (out / ADAPTER_META).exists() or state_file.exists():
        if not overwrite:
            raise LlamarchError(
                f"{out} already holds an adapter: pass --resume to continue it, --overwrite to replace it, "
                "or another --out"
            )
        shutil.rmtree(out)
    return None


def train_lora(
    model: Any,
    data: str | os.PathLike[str] | Sequence[dict[str, Any]],
    out_dir: str | os.PathLike[str],
    *,
    config: LoraConfig | None = None,
    valid: str | os.PathLike[str] | Sequence[dict[str, Any]] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    **options: Any,
) -> TrainResult:
    """Train a LoRA adapter for `model` (catalog id, GGUF path, MLX directory or LLM) on `data`.

    `data` is a directory with train.jsonl (and valid.jsonl), a .jsonl file, or a list of
    examples ({"messages": [...]}, {"prompt", "completion"} or {"text"}). Options override
    `config` fields (rank=16, iters=200, ...). Ctrl-C saves a checkpoint and raises
    TrainingInterrupted; `resume=True` continues from the last checkpoint.
    """
    config = (
        replace(config, **options) if config is not None and options else (config or LoraConfig.from_kwargs(**options))
    )
    out = Path(out_dir).expanduser()
    saved = _prepare_out_dir(out, resume, overwrite)
    if saved is not None:
        stored = LoraConfig(**{**saved["config"], "targets": tuple(saved["config"]["targets"])})
        config = replace(
            stored,
            iters=config.iters if config.iters is not None else stored.iters,
            epochs=config.epochs if config.epochs is not None else stored.epochs,
        )
    dataset = load_data(data, valid)
    spec = saved["model"] if saved is not None else model_spec(model)
    return _Run(spec, dataset, out, config, saved, progress).run()


class _Run:
    """One training run; split up so each part reads on its own."""

    def __init__(
        self,
        spec: str,
        dataset: Dataset,
        out: Path,
        config: LoraConfig,
        saved: dict[str, Any] | None,
        progress: ProgressCallback | None,
    ):
        self.spec, self.dataset, self.out, self.config, self.saved = spec, dataset, out, config, saved
        self.emit = progress or (lambda event: None)

    def setup(self) -> None:
        import json

        from ..mlx_runtime import import_mlx, load_model

        self.mx = mx = import_mlx()
        import mlx.optimizers as optim
        from mlx_lm.tuner.utils import linear_to_lora_layers

        directory = mlx_model_dir(self.spec)
        self.model_dir = directory
        model_config = json.loads((directory / "config.json").read_text())
        self.identity = mlx_identity(directory, model_config)
        self.model, self.tokenizer = load_model(directory)
        c = self.config
        n_blocks = len(self.model.layers)
        self.num_layers = n_blocks if c.num_layers < 0 else min(c.num_layers, n_blocks)
        mx.random.seed(c.seed)
        self.model.freeze()
        lora = {"rank": c.rank, "scale": c.lora_scale, "dropout": c.dropout, "keys": c.keys}
        linear_to_lora_layers(self.model, self.num_layers, lora)
        self.adapter_config = {
            "fine_tune_type": "lora",
            "model": str(directory),
            "num_layers": self.num_layers,
            "lora_parameters": lora,
            "learning_rate": c.learning_rate,
            "batch_size": c.batch_size,
            "max_seq_length": c.max_seq_length,
            "mask_prompt": c.mask_prompt,
            "seed": c.seed,
        }
        self.train_set = tokenize_all(self.tokenizer, self.dataset.train, c.max_seq_length, c.mask_prompt)
        self.valid_set = tokenize_all(self.tokenizer, self.dataset.valid, c.max_seq_length, c.mask_prompt)
        if not self.train_set.items:
            raise LlamarchError(
                f"{self.dataset.source}: no example has answer tokens left within max_seq_length={c.max_seq_length}"
            )
        self.batches = make_batches([len(t.tokens) for t in self.train_set.items], c.batch_size)
        self.total = c.total_steps(len(self.batches))
        self.optimizer = optim.Adam(learning_rate=c.learning_rate)
        self.optimizer.init(self.model.trainable_parameters())
        self.result = TrainResult(
            self.out,
            0,
            self.total,
            truncated=self.train_set.truncated,
            dropped=self.train_set.dropped,
            base=self.identity,
        )
        if c.teacher:
            self._attach_soft_targets()
        if self.saved is not None:
            self._restore()
        self._step = self._compiled_step()

    def _compiled_step(self) -> Callable[..., Any]:
        loss = distill_loss(self.config.distill_weight) if self.config.teacher else masked_loss
        step, self._state, self.loss_fn = build_step(self.model, self.optimizer, loss)
        return step

    def _attach_soft_targets(self) -> None:
        """Give every training and validation item the teacher's soft targets (computed once, stored)."""
        from .soft_targets import teacher_soft_targets

        c = self.config
        sets = (self.train_set.items, self.valid_set.items)
        n = sum(map(len, sets))
        self.emit({"event": "teacher", "done": 0, "total": n, "teacher": c.teacher})
        targets = teacher_soft_targets(
            c.teacher,
            self.tokenizer,
            sets,
            c.distill_top_k,
            self.out / CHECKPOINT_DIR,
            lambda done, total: self.emit({"event": "teacher", "done": done, "total": total, "teacher": c.teacher}),
        )
        for items, soft in zip(sets, targets):
            for item, pair in zip(items, soft):
                item.soft = pair

    # --- checkpoints --------------------------------------------------------------------

    def _save(self, final: bool = False) -> None:
        from mlx.utils import tree_flatten

        mx, out = self.mx, self.out
        ckpt = out / CHECKPOINT_DIR
        ckpt.mkdir(parents=True, exist_ok=True)
        adapters = dict(tree_flatten(self.model.trainable_parameters()))
        tmp = out / f".{ADAPTER_FILE}.tmp.safetensors"
        mx.save_safetensors(str(tmp), adapters)
        os.replace(tmp, out / ADAPTER_FILE)
        tmp = ckpt / f".{OPTIMIZER_FILE}.tmp.safetensors"
        mx.save_safetensors(str(tmp), dict(tree_flatten(self.optimizer.state)))
        os.replace(tmp, ckpt / OPTIMIZER_FILE)
        r = self.result
        write_json_atomic(out / "adapter_config.json", self.adapter_config)
        write_json_atomic(
            out / ADAPTER_META,
            {
                "base": self.identity.to_dict(),
                "model_dir": str(self.model_dir),
                "config": _config_dict(self.config),
                "steps": r.steps,
                "final_loss": r.final_loss,
                "finished": final,
            },
        )
        write_json_atomic(
            ckpt / STATE_FILE,
            {
                "model": self.spec,
                "config": _config_dict(self.config),
                "step": r.steps,
                "train_losses": r.train_losses,
                "val_losses": r.val_losses,
                "trained_tokens": r.trained_tokens,
                "seconds": r.seconds,
            },
        )

    def _restore(self) -> None:
        from mlx.utils import tree_map_with_path

        mx, saved = self.mx, self.saved
        weights = mx.load(str(self.out / ADAPTER_FILE))
        self.model.load_weights(list(weights.items()), strict=False)
        opt = mx.load(str(self.out / CHECKPOINT_DIR / OPTIMIZER_FILE))
        self.optimizer.state = tree_map_with_path(lambda path, v: opt.get(path, v), self.optimizer.state)
        r = self.result
        r.steps = int(saved["step"])
        r.train_losses = [tuple(x) for x in saved["train_losses"]]
        r.val_losses = [tuple(x) for x in saved["val_losses"]]
        r.trained_tokens = int(saved["trained_tokens"])
        r.seconds = float(saved["seconds"])

    # --- the loop -------------------------------------------------------------------------

    def evaluate(self) -> float | None:
        if not self.valid_set.items:
            return None
        c, mx = self.config, self.mx
        batches = make_batches([len(t.tokens) for t in self.valid_set.items], c.batch_size)
        if c.val_batches >= 0:
            batches = batches[: c.val_batches]
        total, count = 0.0, 0
        for indices in batches:
            *batch, n = batch_arrays(self.valid_set, indices, c.max_seq_length)
            loss = self.loss_fn(self.model, *batch)
            mx.eval(loss)
            total += loss.item() * n
            count += n
        return total / max(count, 1)

    def run(self) -> TrainResult:
        self.setup()
        c, mx, r = self.config, self.mx, self.result
        self.emit(
            {
                "event": "start",
                "step": r.steps,
                "total": self.total,
                "examples": len(self.train_set.items),
                "truncated": r.truncated,
                "dropped": r.dropped,
                "adapter_dir": str(self.out),
            }
        )
        self.model.train()
        window_loss, window_steps, window_tokens, window_time = 0.0, 0, 0, 0.0
        try:
            while r.steps < self.total:
                if self.valid_set.items and (r.steps % c.steps_per_eval == 0):
                    self._eval_event()
                indices = batch_for_step(self.batches, r.steps, c.seed)
                *batch, n = batch_arrays(self.train_set, indices, c.max_seq_length)
                tic = time.perf_counter()
                loss = self._step(*batch)
                mx.eval(self._state, loss)
                elapsed = time.perf_counter() - tic
                r.steps += 1
                r.seconds += elapsed
                r.trained_tokens += n
                window_loss += loss.item()
                window_steps += 1
                window_tokens += n
                window_time += elapsed
                report = r.steps % c.steps_per_report == 0 or r.steps == self.total
                if report:
                    r.train_losses.append((r.steps, window_loss / window_steps))
                self.emit(
                    {
                        "event": "step",
                        "step": r.steps,
                        "total": self.total,
                        "loss": loss.item(),
                        "tokens_per_second": window_tokens / window_time if window_time else 0.0,
                        "reported": report,
                    }
                )
                if report:
                    window_loss, window_steps, window_tokens, window_time = 0.0, 0, 0, 0.0
                if c.save_every > 0 and r.steps % c.save_every == 0 and r.steps < self.total:
                    self._save()
                    self.emit({"event": "save", "step": r.steps, "total": self.total})
            if self.valid_set.items:
                self._eval_event()
        except KeyboardInterrupt:
            self._save()
            raise TrainingInterrupted(r) from None
        r.peak_memory_bytes = int(mx.get_peak_memory())
        self._save(final=True)
        self.emit({"event": "done", "step": r.steps, "total": self.total, "adapter_dir": str(self.out)})
        return r

    def _eval_event(self) -> None:
        self.model.eval()
        val = self.evaluate()
        self.model.train()
        if val is not None:
            self.result.val_losses.append((self.result.steps, val))
            self.emit({"event": "eval", "step": self.result.steps, "total": self.total, "val_loss": val})


def _config_dict(config: LoraConfig) -> dict[str, Any]:
    data = asdict(config)
    data["targets"] = list(config.targets)
    return data


def adapter_info(adapter_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """What llamarch recorded about an adapter directory (base, config, steps)."""
    return read_adapter_meta(adapter_dir)
