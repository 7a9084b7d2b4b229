"""The llama.cpp backend on real models through the real engine."""

import json
import threading

import pytest

from llamarch import LLM
from llamarch.errors import BackendError, ContextOverflowError, ModelFileError

GREEDY = dict(temperature=0, max_tokens=40)


def test_greedy_output_is_deterministic(smollm):
    prompt = "Once upon a time, in a small village,"
    first = smollm.respond(prompt, raw=True, **GREEDY).text
    smollm.respond("Something else entirely, to disturb the KV cache.", raw=True, **GREEDY)
    assert smollm.respond(prompt, raw=True, **GREEDY).text == first
    assert len(first) > 20


def test_seeded_sampling_is_reproducible(smollm):
    opts = dict(temperature=0.9, seed=1234, max_tokens=30)
    a = smollm.generate("Tell me a story about a cat.", **opts)
    b = smollm.generate("Tell me a story about a cat.", **opts)
    assert a == b


def test_streamed_text_equals_non_streamed(qwen05):
    messages = qwen05.messages_for("Explain what a Python list comprehension is, in two sentences.")
    whole = qwen05.respond(messages, **GREEDY)
    chunks = list(qwen05.stream(messages, **GREEDY))
    assert "".join(c.text for c in chunks) == whole.text
    assert sum(1 for c in chunks if c.text) > 5  # really streamed, token by token
    assert chunks[-1].stats is not None and all(c.stats is None for c in chunks[:-1])


def test_stop_strings_are_honoured(smollm):
    prompt = "Count: 1, 2, 3, 4,"
    full = smollm.respond(prompt, raw=True, temperature=0, max_tokens=30).text
    assert " 7" in full, full
    cut = smollm.respond(prompt, raw=True, temperature=0, max_tokens=30, stop=[" 7"])
    assert cut.text == full[: full.index(" 7")]
    assert cut.stats.finish_reason == "stop"


def test_stats_are_present_and_positive(qwen05):
    r = qwen05.respond(qwen05.messages_for("Say hello."), temperature=0, max_tokens=8)
    s = r.stats
    assert s.prompt_tokens > 5 and s.completion_tokens > 0
    assert s.prompt_tps > 0 and s.decode_tps > 0 and s.ttft_s > 0 and s.total_s >= s.ttft_s
    assert s.finish_reason in ("stop", "length")


def test_max_tokens_gives_length(smollm):
    r = smollm.respond("The history of Rome is", raw=True, temperature=0, max_tokens=7)
    assert r.stats.completion_tokens == 7 and r.stats.finish_reason == "length"


def test_qwen_answers_code_questions_with_code(qwen05):
    text = qwen05.generate(
        "Write a Python function is_even(n) that returns True when n is even.", **GREEDY | {"max_tokens": 120}
    )
    assert "def is_even" in text


def test_smollm_chat_template_gives_a_sane_answer(smollm):
    # (Without a system prompt the template's default one makes this 135M model ramble.) Tokyo,
    # not Paris: every greedy token up to "Tokyo" leads the next by over 2.5 logits, where the
    # French answer rests on a 0.09 tie that AVX2 and AVX-512 sums break differently.
    text = smollm.generate(
        "What is the capital of Japan?", system="You are a helpful assistant.", temperature=0, max_tokens=30
    )
    assert "Tokyo" in text


def test_flash_attention_serves_single_and_batched_replies(smollm_path):
    # The batch engine copies the single context's attention kernels, so both paths run the
    # flash kernels here and still answer (margins over 2.5 logits: see the test above).
    ask = dict(system="You are a helpful assistant.", temperature=0, max_tokens=30)
    with LLM(smollm_path, flash_attn=True) as llm:
        assert llm.backend._llm.context_params.flash_attn_type == 1  # LLAMA_FLASH_ATTN_TYPE_ENABLED
        assert "Tokyo" in llm.generate("What is the capital of Japan?", **ask)
        messages = [llm.messages_for("What is the capital of Japan?", ask["system"])] * 2
        replies = llm.generate_batch(messages, temperature=0, max_tokens=30)
    assert all("Tokyo" in r.text for r in replies)


def test_system_prompt_reaches_the_template(smollm):
    backend = smollm.backend
    rendered = backend.render_chat(smollm.messages_for("hi", system="You are a pirate."))
    assert "You are a pirate." in rendered and "<|im_start|>" in rendered


def test_context_overflow_names_both_numbers(smollm_path):
    with LLM(str(smollm_path), n_ctx=64) as llm:
        prompt = "word " * 200
        n = len(llm.tokenize(prompt))
        with pytest.raises(ContextOverflowError) as e:
            llm.generate(prompt, raw=True)
        assert str(n) in str(e.value) and "64" in str(e.value)


def test_cancel_event_stops_the_reply(smollm):
    cancel = threading.Event()
    chunks = []
    for chunk in smollm.stream(
        "A very long essay about the sea:", raw=True, temperature=0, max_tokens=200, cancel=cancel
    ):
        chunks.append(chunk)
        if len(chunks) == 3:
            cancel.set()
    stats = chunks[-1].stats
    assert stats.finish_reason == "cancelled"
    assert stats.completion_tokens <= 5


def test_json_schema_constrains_the_output(qwen05):
    schema = {
        "type": "object",
        "properties": {"score": {"type": "integer", "minimum": 1, "maximum": 10}, "reason": {"type": "string"}},
        "required": ["score", "reason"],
    }
    text = qwen05.generate(
        "Rate the code `def f(x): return x*2` from 1 to 10 as JSON.", temperature=0, max_tokens=80, json_schema=schema
    )
    data = json.loads(text)
    assert isinstance(data["score"], int) and isinstance(data["reason"], str)


def test_tokenize_detokenize_roundtrip(qwen05):
    text = "def add(a, b):\n    return a + b  # ünïcode ✓"
    tokens = qwen05.tokenize(text)
    assert len(tokens) > 5 and qwen05.detokenize(tokens) == text


def test_second_turn_reuses_the_kv_cache(smollm):
    messages = smollm.messages_for("Name three colours.")
    first = smollm.respond(messages, temperature=0, max_tokens=20)
    follow = messages + [
        {"role": "assistant", "content": first.text},
        {"role": "user", "content": "And three animals?"},
    ]
    second = smollm.respond(follow, temperature=0, max_tokens=20)
    assert second.stats.cached_tokens >= first.stats.prompt_tokens
    assert second.stats.prompt_tokens > second.stats.cached_tokens


def test_lora_path_must_be_an_adapter(smollm_path):
    with pytest.raises(ModelFileError, match="not a GGUF LoRA adapter"):
        LLM(str(smollm_path), lora_path=str(smollm_path))


def test_closed_model_refuses_work(smollm_path):
    llm = LLM(str(smollm_path))
    llm.close()
    with pytest.raises(BackendError, match="closed"):
        llm.generate("hi")


class _Engine:
    """Stands in for llama_cpp's system-info call only (the refusal is pure logic)."""

    def __init__(self, info: str):
        self.info = info

    def llama_print_system_info(self) -> bytes:
        return self.info.encode()


def test_an_engine_with_amx_kernels_is_refused_in_one_line_on_an_amx_cpu(monkeypatch):
    from llamarch.backends import llamacpp

    amx_build = "CPU : AVX2 = 1 | AVX512_VNNI = 1 | AMX_INT8 = 1 | OPENMP = 1 |"
    assert llamacpp.amx_kernels_would_run(amx_build, frozenset({"avx2", "amx_tile", "amx_int8"}))
    assert not llamacpp.amx_kernels_would_run(amx_build, frozenset({"avx2", "avx512f"}))
    assert not llamacpp.amx_kernels_would_run(
        amx_build.replace("AMX_INT8 = 1", "AMX_INT8 = 0"), frozenset({"amx_int8"})
    )
    monkeypatch.delenv("LLAMARCH_ALLOW_AMX", raising=False)
    monkeypatch.setattr(llamacpp, "cpu_flags", lambda: frozenset({"amx_int8"}))
    with pytest.raises(
        BackendError, match=r"AMX kernels.*-mno-amx-int8.*llama-cpp-python==0\.\d.*LLAMARCH_ALLOW_AMX=1"
    ) as refused:
        llamacpp._refuse_amx_kernels(_Engine(amx_build))
    assert "\n" not in str(refused.value)
    llamacpp._refuse_amx_kernels(_Engine("CPU : AVX2 = 1 |"))
    monkeypatch.setenv("LLAMARCH_ALLOW_AMX", "1")
    llamacpp._refuse_amx_kernels(_Engine(amx_build))


def test_the_installed_engine_has_no_amx_kernels_on_x86():
    """The Makefile builds llama.cpp with -mno-amx-int8 on x86_64 (its AMX kernels segfault on
    this project's AMX Xeons), and the real engine passes llamarch's guard."""
    import platform

    from llamarch.backends.llamacpp import import_llama_cpp

    llama_cpp = import_llama_cpp()
    if platform.machine() in ("x86_64", "AMD64"):
        assert "AMX_INT8 = 1" not in llama_cpp.llama_print_system_info().decode()
