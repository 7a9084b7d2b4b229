"""Planning a batch: KV cache size from GGUF headers, N lowered when it would not fit."""

from __future__ import annotations

from llamarch.backends.kvplan import ModelShape, auto_parallel, pad_ctx, plan_parallel
from llamarch.gguf_file import read_header


def test_kv_bytes_per_token_from_real_headers(smollm_path, qwen05_path):
    # Published shapes: Qwen2.5-0.5B 24 layers x 2 KV heads x 64; SmolLM2-135M 30 x 3 x 64; f16 cache.
    qwen = ModelShape.from_metadata(read_header(qwen05_path).metadata)
    assert (qwen.n_layer, qwen.n_head_kv[0], qwen.key_length) == (24, 2, 64)
    assert qwen.kv_bytes_per_token() == 24 * 2 * (64 + 64) * 2
    smol = ModelShape.from_metadata(read_header(smollm_path).metadata)
    assert smol.kv_bytes_per_token() == 30 * 3 * (64 + 64) * 2


def test_engine_context_is_the_planned_size(smollm_path):
    """A new model's batch context has exactly the planned sequences and cells per sequence."""
    from llamarch import LLM

    with LLM("smollm2-135m", n_ctx=1024) as llm:
        llm.generate_batch(["1, 2, 3,", "a, b, c,", "x"], parallel=3, raw=True, temperature=0, max_tokens=4)
        engine, plan = llm.backend._batch_engine, llm.backend.last_plan
        assert (engine.n_parallel, engine.n_ctx_seq) == (plan.n_parallel, plan.n_ctx_seq) == (3, 256)
        assert llm.backend._llama_cpp.llama_n_ctx(engine.ctx) == 3 * 256


SHAPE = ModelShape(
    n_layer=24, n_head=14, n_head_kv=(2,) * 24, key_length=64, value_length=64, n_embd=896, n_vocab=151936
)


def test_plan_keeps_n_when_it_fits():
    notices = []
    plan = plan_parallel(SHAPE, 1000, 8, available=8 << 30, notify=notices.append)
    assert plan.n_parallel == 8 and plan.n_ctx_seq == 1024 and not notices
    assert plan.kv_bytes == 8 * 1024 * 12288


def test_plan_lowers_n_with_one_line_notice():
    notices = []
    plan = plan_parallel(SHAPE, 32768, 16, available=3 << 30, notify=notices.append)
    assert 1 <= plan.n_parallel < 16
    assert plan.total_bytes <= 3 << 30
    assert len(notices) == 1 and "\n" not in notices[0]
    assert "16" in notices[0] and str(plan.n_parallel) in notices[0]
    assert plan.notice == notices[0]


def test_plan_never_exceeds_prompts_or_goes_below_one():
    assert plan_parallel(SHAPE, 512, 16, n_prompts=3, available=8 << 30).n_parallel == 3
    tiny = plan_parallel(SHAPE, 512, 4, available=1, notify=lambda line: None)
    assert tiny.n_parallel == 1 and "may fail" in tiny.notice


def test_auto_parallel_and_padding():
    assert auto_parallel(cores=2) == 16
    assert auto_parallel(cores=1) == 4
    assert auto_parallel(gpu=True) == 16
    assert pad_ctx(1) == 256 and pad_ctx(257) == 512
    default = plan_parallel(SHAPE, 512, None, n_prompts=100, available=8 << 30)
    assert default.n_parallel == auto_parallel() and default.requested is None
