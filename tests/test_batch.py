"""Batched generation on llama.cpp: real models, batched against sequential replies."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from llamarch.backends.base import GenerationOptions
from llamarch.backends.llamacpp_batch import common_prefix
from llamarch.backends.llamacpp_private import context_ptr
from llamarch.errors import ContextOverflowError
from llamarch.store import Store, result_key

# A logit margin this small between the top two tokens is a tie that summation order can
# flip (multi-row matrix kernels add in another order than one-row ones); larger gaps are not.
NEAR_TIE = 0.75

TOPICS = [
    "reverse a string",
    "check if a number is prime",
    "merge two sorted lists",
    "compute the median of a list",
    "parse a CSV line",
    "flatten a nested list",
]
LISTING = "".join(
    f"def helper_{i}(values):\n    total = 0\n    for v in values:\n        total += v * {i}\n    return total\n\n"
    for i in range(24)
)


def mixed_prompts() -> list:
    """Short asks, a system prompt, and one listing longer than a 512-token batch."""
    prompts: list = [[{"role": "user", "content": f"Write a Python function to {t}."}] for t in TOPICS[:4]]
    prompts.insert(
        1,
        [
            {"role": "system", "content": "Answer in one sentence."},
            {"role": "user", "content": "What is a Python generator?"},
        ],
    )
    prompts.append([{"role": "user", "content": f"Which helper returns the largest total?\n\n{LISTING}"}])
    return prompts


def token_ids(chunks) -> list[int]:
    return [t for c in chunks for t in c.token_ids]


def divergence_margin(llm, prompt, reference: list[int], other: list[int]) -> tuple[int, float] | None:
    """Where `other` first leaves `reference`, and the reference's top-2 logit gap there."""
    k = next((i for i, (a, b) in enumerate(zip(reference, other)) if a != b), None)
    if k is None:
        assert len(reference) == len(other), "same tokens but different lengths"
        return None
    backend = llm.backend
    tokens, _ = backend.prompt_tokens(prompt)
    native = backend._llm
    native.reset()
    native.eval(tokens + reference[:k])
    logits = np.ctypeslib.as_array(
        backend._llama_cpp.llama_get_logits_ith(context_ptr(native), -1), shape=(native.n_vocab(),)
    )
    top2 = np.sort(logits)[-2:]
    native.reset()
    return k, float(top2[1] - top2[0])


def same_or_near_tie(llm, prompt, reference: list[int], got: list[int], what: str = "reply") -> bool:
    """True when `got` equals `reference`; if not, assert it left it only at a near tie."""
    where = divergence_margin(llm, prompt, reference, got)
    if where is None:
        return True
    k, margin = where
    assert margin < NEAR_TIE, f"{what} left the sequential reply at token {k} where the margin was {margin:.3f}"
    return False


def compare_to_sequential(llm, prompts, parallel: int, **options) -> float:
    """Assert batched greedy replies equal sequential ones, or leave them only at a near tie.

    Returns the share of identical replies (reported by the caller).
    """
    sequential = [token_ids(llm.stream(p, temperature=0, **options)) for p in prompts]
    batched: dict[int, list] = {i: [] for i in range(len(prompts))}
    stats = {}
    for i, chunk in llm.stream_batch(prompts, parallel=parallel, temperature=0, **options):
        batched[i].append(chunk)
        if chunk.stats is not None:
            assert i not in stats, "two final chunks for one prompt"
            stats[i] = chunk.stats
    assert sorted(stats) == list(range(len(prompts)))
    assert llm.backend._batch_engine.last_run["moved"] > 0  # the tail was compacted (see _compact)
    identical = 0
    for i, prompt in enumerate(prompts):
        got = token_ids(batched[i])
        assert stats[i].completion_tokens == len(got)
        assert stats[i].prompt_tokens == len(llm.backend.prompt_tokens(prompt)[0])
        identical += same_or_near_tie(llm, prompt, sequential[i], got, f"prompt {i}")
    rate = identical / len(prompts)
    print(f"\n{llm.model_id}: {identical}/{len(prompts)} batched replies identical to sequential ({rate:.0%})")
    return rate


def test_batched_equals_sequential_smollm(smollm):
    rate = compare_to_sequential(smollm, mixed_prompts(), parallel=4, max_tokens=48)
    assert rate >= 0.5


def test_batched_equals_sequential_qwen05(qwen05):
    rate = compare_to_sequential(qwen05, mixed_prompts(), parallel=4, max_tokens=40)
    assert rate >= 0.5


def test_a_prefix_every_prompt_shares_is_read_once(smollm):
    system = {"role": "system", "content": "You review Python code for a careful team. " * 10}
    prompts = [[system, {"role": "user", "content": f"Write a Python function to {t}."}] for t in TOPICS[:4]]
    sequential = [token_ids(smollm.stream(p, temperature=0, max_tokens=24)) for p in prompts]
    tokens = [smollm.backend.prompt_tokens(p)[0] for p in prompts]
    shared = min(common_prefix(tokens[0], t) for t in tokens[1:])
    assert shared >= 100
    if smollm.backend._batch_engine is not None:
        smollm.backend._batch_engine.clear()  # no slot holds the prefix yet
    batched: dict[int, list] = {i: [] for i in range(len(prompts))}
    stats = {}
    for i, chunk in smollm.stream_batch(prompts, parallel=4, temperature=0, max_tokens=24):
        batched[i].append(chunk)
        if chunk.stats is not None:
            stats[i] = chunk.stats
    run = smollm.backend._batch_engine.last_run
    generated = sum(s.completion_tokens for s in stats.values())
    # Read once, then copied: the batch decoded fewer tokens than the prompts hold.
    assert run["decoded_tokens"] <= shared + sum(len(t) - shared for t in tokens) + generated
    assert run["decoded_tokens"] < sum(len(t) for t in tokens)
    assert all(stats[i].cached_tokens >= shared for i in stats)
    for i, prompt in enumerate(prompts):
        same_or_near_tie(smollm, prompt, sequential[i], token_ids(batched[i]), f"prompt {i}")


def test_stop_string_frees_its_slot_early(smollm):
    prompts = [[{"role": "user", "content": f"Write a Python function to {t}."}] for t in TOPICS[:4]]
    replies = [smollm.respond(p, temperature=0, max_tokens=40).text for p in prompts]
    # A stop string that ends reply 0 early and appears in no other reply.
    words = [w for w in replies[0].split()[2:12] if len(w) > 3]
    stop = next(w for w in words if all(w not in r for r in replies[1:]))
    order = []
    final = {}
    for i, chunk in smollm.stream_batch(prompts, parallel=2, temperature=0, max_tokens=40, stop=[stop]):
        order.append((i, chunk.done))
        if chunk.done:
            final[i] = chunk.stats
    assert final[0].finish_reason == "stop" and final[0].completion_tokens < 40
    assert final[1].finish_reason == "length"
    # Prompt 2 took the freed slot and produced text while prompt 1 was still generating.
    assert order.index((2, False)) < order.index((1, True))
    assert (
        smollm.generate_batch(prompts[:1], parallel=2, temperature=0, max_tokens=40, stop=[stop])[0].text
        == replies[0][: replies[0].index(stop)]
    )


VERDICT = {
    "type": "object",
    "properties": {
        "verdict": {"type": "string", "enum": ["correct", "incorrect"]},
        "score": {"type": "integer", "minimum": 0, "maximum": 10},
    },
    "required": ["verdict", "score"],
}


def test_constrained_verdicts_in_a_batch_all_parse(smollm):
    answers = [
        "2 + 2 = 4",
        "The capital of France is Berlin",
        "Python lists are mutable",
        "def add(a, b): return a - b",
        "Water boils at 100 C at sea level",
        "A byte has 8 bits",
    ]
    prompts = [[{"role": "user", "content": f"Is this answer correct? Reply as JSON. Answer: {a}"}] for a in answers]
    options = {"temperature": 0, "max_tokens": 64, "json_schema": VERDICT}
    batched: dict[int, list] = {i: [] for i in range(len(prompts))}
    for i, chunk in smollm.stream_batch(prompts, parallel=3, **options):
        batched[i].append(chunk)
    for i, prompt in enumerate(prompts):
        verdict = json.loads("".join(c.text for c in batched[i]))
        assert verdict["verdict"] in ("correct", "incorrect") and isinstance(verdict["score"], int)
        assert batched[i][-1].stats.finish_reason == "stop"
        # As sequential decoding, or left only at a near tie (batched sums differ in their last bits on some CPUs).
        sequential = token_ids(smollm.stream(prompt, **options))
        same_or_near_tie(smollm, prompt, sequential, token_ids(batched[i]), f"verdict {i}")


def test_sampled_batch_is_reproducible_with_a_seed(smollm):
    prompts = [[{"role": "user", "content": f"Write a Python function to {t}."}] for t in TOPICS[:3]]
    a = smollm.generate_batch(prompts, parallel=3, temperature=0.9, seed=7, max_tokens=24)
    b = smollm.generate_batch(prompts, parallel=2, temperature=0.9, seed=7, max_tokens=24)
    assert [r.text for r in a] == [r.text for r in b]


def run_storing(llm, prompts, store: Store, options: GenerationOptions, on_done=None) -> dict[int, dict]:
    """What a resumable command does: skip stored items, store each one as it finishes."""
    keys = [result_key(p) for p in prompts]
    todo = [i for i, k in enumerate(keys) if store.get_result("test", k) is None]
    chunks: dict[int, list] = {i: [] for i in todo}
    for j, chunk in llm.stream_batch([prompts[i] for i in todo], parallel=2, options=options):
        i = todo[j]
        chunks[i].append(chunk)
        if chunk.done and chunk.stats.finish_reason != "cancelled":
            store.put_result("test", keys[i], {"text": "".join(c.text for c in chunks[i]), "ids": token_ids(chunks[i])})
            if on_done:
                on_done(i)
    return {i: store.get_result("test", k) for i, k in enumerate(keys)}


def test_cancel_keeps_finished_items_and_the_run_resumes(smollm, tmp_path):
    prompts = [[{"role": "user", "content": f"Write a Python function to {t}."}] for t in TOPICS]
    expected = [token_ids(smollm.stream(p, temperature=0, max_tokens=32)) for p in prompts]
    cancel = threading.Event()
    finished = []

    def on_done(i: int) -> None:
        finished.append(i)
        if len(finished) == 2:
            cancel.set()

    with Store(tmp_path / "store.db") as store:
        first = run_storing(
            smollm, prompts, store, GenerationOptions(temperature=0, max_tokens=32, cancel=cancel), on_done
        )
        assert 2 <= len(finished) < len(prompts)
        assert sorted(i for i, v in first.items() if v is not None) == sorted(finished)
        resumed_now = []
        resumed = run_storing(
            smollm, prompts, store, GenerationOptions(temperature=0, max_tokens=32), resumed_now.append
        )
    assert sorted(resumed_now) == sorted(set(range(len(prompts))) - set(finished))
    for i, prompt in enumerate(prompts):
        assert resumed[i] == (first[i] or resumed[i])  # stored items are never redone
        assert smollm.detokenize(resumed[i]["ids"]) == resumed[i]["text"]
        same_or_near_tie(smollm, prompt, expected[i], resumed[i]["ids"], f"item {i}")


class _InterruptAfter:
    """llama_cpp with a Ctrl-C that arrives during the n-th llama_decode (raised when it returns)."""

    def __init__(self, lc, n: int):
        self._lc, self.n = lc, n

    def __getattr__(self, name):
        return getattr(self._lc, name)

    def llama_decode(self, ctx, batch):
        rc = self._lc.llama_decode(ctx, batch)
        self.n -= 1
        if self.n == 0:
            raise KeyboardInterrupt
        return rc


def test_ctrl_c_during_a_batch_marks_unfinished_and_keeps_finished(smollm):
    prompts = [[{"role": "user", "content": "Say hi."}]] + [
        [{"role": "user", "content": f"Write a Python function to {t}."}] for t in TOPICS[:3]
    ]
    expected = list(smollm.stream(prompts[0], temperature=0, max_tokens=48))
    assert expected[-1].stats.finish_reason == "stop" and expected[-1].stats.completion_tokens < 30
    expected_ids = token_ids(expected)
    smollm.generate_batch(prompts[:1], parallel=2, max_tokens=1)  # the engine exists
    engine = smollm.backend._batch_engine
    real = engine._lc
    engine._lc = _InterruptAfter(real, 32)
    final = {}
    ids: list[int] = []
    try:
        with pytest.raises(KeyboardInterrupt):
            for i, chunk in smollm.stream_batch(prompts, parallel=2, temperature=0, max_tokens=48):
                ids += chunk.token_ids if i == 0 else ()
                if chunk.done:
                    final[i] = chunk.stats
    finally:
        engine._lc = real
    assert final[0].finish_reason == "stop"
    same_or_near_tie(smollm, prompts[0], expected_ids, ids)
    assert sorted(final) == [0, 1, 2, 3]
    assert all(final[i].finish_reason == "cancelled" for i in (1, 2, 3))
    # The engine is usable afterwards and its caches were forgotten, not left inconsistent.
    again = token_ids(c for _, c in smollm.stream_batch(prompts[:1], parallel=2, temperature=0, max_tokens=48))
    same_or_near_tie(smollm, prompts[0], expected_ids, again)


def test_prompt_too_long_names_the_prompt(smollm):
    with pytest.raises(ContextOverflowError, match="prompt 1:"):
        list(smollm.stream_batch(["hi", "word " * 3000], raw=True, max_tokens=8))


def test_plan_is_reported_and_fits(smollm):
    planned = smollm.plan_batch(["1, 2, 3,", "a, b, c,"], parallel=8, raw=True, max_tokens=4)
    smollm.generate_batch(["1, 2, 3,", "a, b, c,"], parallel=8, raw=True, temperature=0, max_tokens=4)
    plan = smollm.backend.last_plan
    assert (planned.n_parallel, planned.n_ctx_seq, planned.kv_bytes) == (plan.n_parallel, plan.n_ctx_seq, plan.kv_bytes)
    assert plan.n_parallel == 2  # never more sequences than prompts
    assert plan.kv_bytes == smollm.backend.shape.kv_bytes_per_token() * 2 * plan.n_ctx_seq
    assert "KV cache" in plan.summary()


def test_a_batch_left_midway_leaves_the_engine_consistent(smollm):
    prompts = [[{"role": "user", "content": f"Write a Python function to {t}."}] for t in TOPICS[:3]]
    reference = [token_ids(smollm.stream(p, temperature=0, max_tokens=24)) for p in prompts]
    stream = smollm.stream_batch(prompts, parallel=3, temperature=0, max_tokens=24)
    for n, (_i, _chunk) in enumerate(stream):
        if n == 7:
            break
    stream.close()
    again: dict[int, list] = {i: [] for i in range(3)}
    for i, chunk in smollm.stream_batch(prompts, parallel=3, temperature=0, max_tokens=24):
        again[i].append(chunk)
    for i, prompt in enumerate(prompts):
        same_or_near_tie(smollm, prompt, reference[i], token_ids(again[i]), f"prompt {i}")


def test_empty_prompt_is_refused(smollm):
    from llamarch.errors import LlamarchError

    with pytest.raises(LlamarchError, match="prompt 0 is empty"):
        list(smollm.stream_batch([""], raw=True, max_tokens=4))


def test_batches_apply_the_lora_adapter(smollm, smollm_path, tmp_path):
    from llamarch import LLM
    from llamarch.gguf_file import read_header
    from lora_file import write_lora

    meta = read_header(smollm_path).metadata
    n_embd, n_layer = meta["llama.embedding_length"], meta["llama.block_count"]
    adapter = write_lora(
        tmp_path / "adapter.gguf",
        "llama",
        {f"blk.{i}.attn_q.weight": (n_embd, n_embd) for i in range(n_layer)},
        scale=0.15,  # strong enough to change replies beyond a near tie
    )
    prompts = [[{"role": "user", "content": f"Write a Python function to {t}."}] for t in TOPICS[:3]]
    base = [token_ids(smollm.stream(p, temperature=0, max_tokens=24)) for p in prompts]
    with LLM("smollm2-135m", n_ctx=1024, lora_path=str(adapter)) as tuned:
        sequential = [token_ids(tuned.stream(p, temperature=0, max_tokens=24)) for p in prompts]
        assert sequential != base  # the adapter changes the replies
        batched: dict[int, list] = {i: [] for i in range(len(prompts))}
        for i, chunk in tuned.stream_batch(prompts, parallel=3, temperature=0, max_tokens=24):
            batched[i].append(chunk)
        checked = 0
        for i, prompt in enumerate(prompts):
            got = token_ids(batched[i])
            same_or_near_tie(tuned, prompt, sequential[i], got, f"prompt {i}")
            where = divergence_margin(tuned, prompt, sequential[i], base[i])
            if where is not None and where[1] >= NEAR_TIE:  # the adapter changes this reply beyond a near tie
                assert got != base[i], f"prompt {i}: the batch ran without the adapter"
                checked += 1
        assert checked, "the adapter changed no reply beyond a near tie: the test shows nothing"


def test_samples_of_one_prompt_differ_and_a_seed_reproduces_them(smollm):
    """K samples of one prompt in one batch: each sequence has its own seed (not K copies)."""
    prompt = [{"role": "user", "content": "Name a colour and a fruit."}]
    options = {"temperature": 0.9, "max_tokens": 12, "seed": 7}
    first = [r.text for r in smollm.generate_batch([prompt] * 8, parallel=8, **options)]
    assert len(set(first)) > 1, f"eight samples all equal: {first[0]!r}"
    again = [r.text for r in smollm.generate_batch([prompt] * 8, parallel=8, **options)]
    assert again == first
    alone = smollm.generate_batch([prompt], parallel=1, **options)[0].text  # sequence 0 keeps the call's seed
    assert alone == first[0]


def test_per_prompt_seeds_are_each_prompts_own(smollm):
    """`seeds` gives each prompt of a batch its own sampler seed: one seed twice samples one
    reply twice (derived seeds would differ), two seeds two replies, reproducibly.

    (Not compared across batch sizes: on some CPUs batched sums differ in their last bits,
    which a sample at temperature 0.9 can turn into another token.)"""
    colour = [{"role": "user", "content": "Name a colour and a fruit."}]
    options = {"temperature": 0.9, "max_tokens": 12, "parallel": 2}
    same = [r.text for r in smollm.generate_batch([colour] * 2, seeds=[5, 5], **options)]
    assert same[0] == same[1]
    two = [r.text for r in smollm.generate_batch([colour] * 2, seeds=[5, 6], **options)]
    assert two[0] != two[1]
    assert [r.text for r in smollm.generate_batch([colour] * 2, seeds=[5, 6], **options)] == two
    with pytest.raises(ValueError, match="2 seeds for 6 prompts"):
        smollm.generate_batch([colour] * 6, seeds=[1, 2], temperature=0.9, max_tokens=12)


def test_k_sample_replies_of_several_questions_share_one_batch_with_each_questions_own_seeds(smollm, tmp_path):
    """`generate_replies` sends every question's samples in one batch, each with the seeds the
    question gets alone, and stores each question's own replies."""
    from llamarch.backends.base import sequence_seed
    from llamarch.evals.sql import SQLSettings, generate_replies, question_seed

    class Recording:
        """The real model, with what each batch was given and what it answered."""

        def __init__(self):
            self.seeds, self.texts = [], {}

        def stream_batch(self, prompts, parallel=None, **options):
            self.seeds.append(options["seeds"])
            for i, chunk in smollm.stream_batch(prompts, parallel=parallel, **options):
                self.texts[i] = self.texts.get(i, "") + chunk.text
                yield i, chunk

    settings = SQLSettings(samples=3, temperature=0.9, max_tokens=12)
    questions = [[{"role": "user", "content": f"Name a {thing}."}] for thing in ("colour", "city", "river")]
    llm = Recording()
    with Store(tmp_path / "store.db") as store:
        got, _ = generate_replies(llm, questions, settings, store=store, model_key="smollm")
        again, _ = generate_replies(llm, questions, settings, store=store, model_key="smollm")
    assert len(llm.seeds) == 1  # one batch; the second call read the store
    own = [sequence_seed(question_seed(settings.seed, repr(q)), j) for q in questions for j in range(3)]
    assert llm.seeds[0] == own
    assert [r["replies"] for r in got] == [[llm.texts[3 * q + j] for j in range(3)] for q in range(3)]
    assert again == got
    assert len({text for r in got for text in r["replies"]}) > 3  # samples, not copies


def test_dropped_requests_stop_where_they_are_and_free_their_slots(smollm):
    """`drop`: a running reply ends at once ("dropped"), a queued one never starts, the
    others are untouched, and the engine serves the next batch as before."""
    prompts = [[{"role": "user", "content": f"Write a Python function to {t}."}] for t in TOPICS[:4]]
    alone = smollm.generate_batch(prompts, parallel=2, temperature=0, max_tokens=40)
    gone = {3}
    final, texts = {}, {}
    for i, chunk in smollm.stream_batch(prompts, parallel=2, temperature=0, max_tokens=40, drop=gone.__contains__):
        texts[i] = texts.get(i, "") + chunk.text
        if i == 0 and len(texts[0]) > 10:
            gone.add(0)
        if chunk.done:
            final[i] = chunk.stats
    assert final[0].finish_reason == "dropped" and 0 < final[0].completion_tokens < 40
    assert alone[0].text.startswith(texts[0])
    assert final[3].finish_reason == "dropped" and final[3].completion_tokens == 0 and texts[3] == ""
    for i in (1, 2):
        assert final[i].finish_reason == alone[i].stats.finish_reason and texts[i] == alone[i].text
    assert smollm.generate_batch(prompts[:1], parallel=2, temperature=0, max_tokens=40)[0].text == alone[0].text
    # Every request dropped while running or queued: nothing is left to decode, and the batch ends.
    stop = []
    reasons = {}
    for i, chunk in smollm.stream_batch(prompts, parallel=2, temperature=0, max_tokens=40, drop=lambda i: bool(stop)):
        stop.append(i)
        if chunk.done:
            reasons[i] = chunk.stats.finish_reason
    assert reasons == dict.fromkeys(range(4), "dropped")


def test_k_samples_stop_once_the_vote_is_decided(smollm, tmp_path):
    """`settle_votes`: a question whose samples all agree stops once 5 of its 8 are in; one
    that is exempt runs all 8; what is stored says how many were dropped, and a rerun reads it."""
    from llamarch.evals.checkers import UNKNOWN, Check
    from llamarch.evals.sql import SQLSettings, generate_replies

    settings = SQLSettings(samples=8, temperature=0.9, max_tokens=24, settle_votes=4)
    questions = [[{"role": "user", "content": f"Name a {thing}."}] for thing in ("colour", "city")]
    checked = []

    def check(i, reply):  # every sample "returns the same rows": the vote is decided at the 5th
        checked.append(i)
        return Check(UNKNOWN, "1 row", "same", reply)

    with Store(tmp_path / "store.db") as store:
        # Two at a time: when the 5th sample of question 0 is in, at least its last two are queued.
        got, _ = generate_replies(
            smollm, questions, settings, store=store, model_key="smollm", parallel=2, check=check, exempt={1}
        )
        assert len(got[1]["replies"]) == 8 and "dropped" not in got[1]
        assert 5 <= len(got[0]["replies"]) <= 6 and got[0]["dropped"] == 8 - len(got[0]["replies"])
        assert all(got[0]["replies"])
        n_checked = len(checked)
        again, _ = generate_replies(smollm, questions, settings, store=store, model_key="smollm", check=check)
    assert again == got and len(checked) == n_checked
