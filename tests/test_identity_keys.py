"""One model identity keys every stored result, and results stored under the older keys are still found.

The old key forms are written out here as the code before this identity built them: distill
keyed a model by its spec (a file by its name and size, an adapter by `lora_sha256`), and
`distill --check python` keyed its adapter by every field of the HumanEval identity. No
model is loaded: the runs below find everything stored, which is what they check.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from llamarch.catalog import get_entry
from llamarch.identity import identify
from llamarch.patterns.student_teacher.distill import (
    STORE_FILE,
    TIMINGS_FILE,
    DistillConfig,
    Distiller,
    Progress,
    answer_key,
    run_adapter,
    verdict_key,
)
from llamarch.patterns.student_teacher.training import TRAIN_FILE, VALID_FILE
from llamarch.store import Key, Store, result_key

PROMPTS = [f"Write a Python function number {n}." for n in range(5)]


def old_result_key(*parts):
    """`result_key` as it was: the sha256 of the parts' JSON."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def test_result_key_of_plain_parts_is_unchanged():
    parts = ("answer", {"backend": "llamacpp", "model": "m"}, [{"role": "user", "content": "é"}], None, {"t": 0.0})
    key = result_key(*parts)
    assert key == old_result_key(*parts) and key.aliases == ()


def test_store_finds_an_alias_copies_it_once_and_keeps_the_old_row(tmp_path):
    with Store(tmp_path / "s.db") as store:
        store.put_result("answer", "old", {"text": "stored long ago"})
        key = Key("new", ["older", "old"])
        assert store.get_result("answer", key) == {"text": "stored long ago"}
        rows = dict(store.db.execute("SELECT key, created FROM results WHERE kind='answer'").fetchall())
        assert rows.keys() == {"old", "new"} and rows["new"] == rows["old"]  # copied, with its time
        store.db.execute("DELETE FROM results WHERE key='old'")
        assert store.get_result("answer", key) == {"text": "stored long ago"}  # now found under the new key
        assert store.get_result("answer", Key("other", ["missing"])) is None


def test_identity_is_the_weights_sha256_for_an_id_and_a_path(smollm_path):
    by_id, by_path = identify("smollm2-135m"), identify(smollm_path)
    assert by_id.sha256 == by_path.sha256 == get_entry("smollm2-135m").sha256
    assert by_id.key() == by_path.key() == [by_id.sha256, None]  # a renamed or moved copy keys the same
    assert result_key("answer", by_id, "q") == result_key("answer", by_path, "q")
    assert old_result_key("he-judge", "smollm2-135m", "q") in result_key("he-judge", by_id, "q").aliases  # a bare spec


def distill_config(tmp_path: Path, smollm_path: Path, adapter: Path) -> DistillConfig:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    return DistillConfig(
        out=tmp_path / "run", student=str(smollm_path), teacher="smollm2-135m", prompts=prompts, adapter=adapter
    )


def store_in_old_keys(cfg: DistillConfig, smollm_path: Path, adapter: Path) -> None:
    """What the code before the shared identity stored for this run, under its keys. Scores:
    the training answers 4, 5, 6, 7; the held-out answer 2, and 9 with the adapter."""
    student = {"backend": "llamacpp", "model": smollm_path.name, "bytes": smollm_path.stat().st_size}
    tuned = {**student, "lora_sha256": hashlib.sha256(adapter.read_bytes()).hexdigest()}
    teacher = {"backend": "llamacpp", "model": "smollm2-135m"}
    distiller = Distiller(cfg)
    train, held = distiller.load_prompts()
    phases = [("train", train, student, True, 4), ("held", held, student, False, 2), ("tuned", held, tuned, False, 9)]
    with Store(cfg.out / STORE_FILE) as store:
        for phase, items, identity, improve, score in phases:
            for n, item in enumerate(items):
                text = f"{phase} answer {n}"
                key = answer_key(identity, item, cfg.system, cfg.student_options())
                store.put_result("answer", key, {"text": text, "stats": {"total_s": 1.0}})
                verdict = {"score": score + n, "critique": "", "improved_answer": "better", "raw": "", "seconds": 1.0}
                key = verdict_key(teacher, distiller.rubric, item.question, text, cfg.teacher_options(), improve)
                store.put_result("verdict", key, verdict)


def not_computed(*args):
    raise AssertionError("a model was opened or trained: a stored result was not found")


def test_distill_rerun_finds_answers_and_verdicts_stored_under_file_name_and_size(tmp_path, smollm_path, monkeypatch):
    monkeypatch.setattr(Distiller, "_open_student", not_computed)
    monkeypatch.setattr(Distiller, "_open_teacher", not_computed)
    adapter = tmp_path / "adapter.gguf"
    adapter.write_bytes(b"an adapter's bytes")  # only hashed: nothing is generated with it
    cfg = distill_config(tmp_path, smollm_path, adapter)
    store_in_old_keys(cfg, smollm_path, adapter)
    report = Distiller(cfg).run()
    timings = json.loads((cfg.out / TIMINGS_FILE).read_text())
    assert [t["computed"] for t in timings.values() if "computed" in t] == [0] * 6
    assert report["verdicts"]["count"] == 4 and report["verdicts"]["mean_score"] == 5.5
    assert [(it["before"], it["after"]) for it in report["evaluation"]["items"]] == [(2, 9)]
    assert Distiller(cfg).run() == report  # the second rerun finds them under the new keys
    with sqlite3.connect(cfg.out / STORE_FILE) as db:
        assert db.execute("SELECT count(*) FROM results").fetchone()[0] == 2 * 2 * (4 + 1 + 1)  # old + copied


def test_checked_python_adapter_stored_under_the_old_identity_fields_is_reused(tmp_path, smollm_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / TRAIN_FILE).write_text('{"messages": []}\n')
    (out / VALID_FILE).write_text('{"messages": []}\n')
    trained = out / "adapter" / "adapter.gguf"
    trained.parent.mkdir()
    trained.write_bytes(b"trained before")
    identity = identify("smollm2-135m")
    old_fields = {
        "model": "smollm2-135m",
        "backend": "llamacpp",
        "sha256": identity.sha256,
        "path": str(smollm_path),
        "adapter": None,
        "adapter_sha256": None,
    }
    settings = {"iters": 2}
    digest = [hashlib.sha256((out / f).read_bytes()).hexdigest() for f in (TRAIN_FILE, VALID_FILE)]
    stored = {"path": "adapter/adapter.gguf", "sha256": hashlib.sha256(b"trained before").hexdigest()}
    with Store(out / STORE_FILE) as store:
        store.put_result("adapter", old_result_key("adapter", old_fields, *digest, settings), stored)
        found = run_adapter(
            store,
            out,
            None,
            True,
            [{}],
            "smollm2-135m",
            identity,
            settings,
            Progress(),
            not_computed,  # training frees the memory first
            {},
            "",
        )
    assert found == trained  # not trained again
