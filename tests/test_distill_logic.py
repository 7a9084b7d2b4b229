"""Distillation logic without models: prompt files, splits, training rows, the store fill, reports."""

from __future__ import annotations

import json

import pytest

from llamarch.errors import LlamarchError
from llamarch.jsonl import BadLine
from llamarch.patterns.student_teacher import Verdict
from llamarch.patterns.student_teacher.distill import (
    DEMO_PROMPTS,
    compare,
    fill_from_store,
    format_report,
    training_rows,
)
from llamarch.patterns.student_teacher.prompts import PromptItem, read_prompts, split_held_out
from llamarch.patterns.student_teacher.synthesize import normalized, parse_prompts
from llamarch.patterns.student_teacher.training import normalize_examples, split_valid, training_data
from llamarch.store import Store

MIXED = [
    '{"prompt": "Reverse a list."}',
    "{not json",
    '{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Sort a dict."}, '
    '{"role": "assistant", "content": "ref"}]}',
    '["a list"]',
    "",
    '{"prompt": ""}',
    '{"messages": [{"role": "assistant", "content": "only me"}]}',
    '{"messages": [{"role": "wizard", "content": "x"}]}',
    '{"question": "wrong key"}',
    '{"prompt": "Read a CSV file."}',
]


def test_prompt_file_reports_each_bad_line_by_number(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(MIXED) + "\n")
    bad: list[BadLine] = []
    items = read_prompts(path, on_bad_line=bad.append)
    assert [it.question for it in items] == ["Reverse a list.", "Sort a dict.", "Read a CSV file."]
    assert [b.lineno for b in bad] == [2, 4, 6, 7, 8, 9]
    assert "not valid JSON" in bad[0].reason and "user message" in bad[3].reason
    # the trailing assistant message (a reference answer) is dropped, the system prompt kept
    assert [m["role"] for m in items[1].messages] == ["system", "user"]
    assert items[2].source == f"{path}:10"
    with pytest.raises(LlamarchError, match=r"p.jsonl:2: not valid JSON"):
        read_prompts(path)


def test_held_out_split_is_stable_and_never_empty():
    items = [PromptItem.from_text(f"task {i}") for i in range(10)]
    train, held = split_held_out(items, 0.2)
    assert len(held) == 2 and len(train) == 8 and not {t.question for t in train} & {h.question for h in held}
    assert split_held_out(list(reversed(items)), 0.2)[1] == list(reversed(held))  # by content, not position
    assert len(split_held_out(items[:2], 0.01)[1]) == 1
    assert split_held_out(items[:1], 0.5) == (items[:1], [])
    assert split_held_out(items, 0) == (items, [])


def test_valid_split_holds_out_a_tenth_but_at_least_one():
    rows = [{"messages": [{"role": "user", "content": str(i)}]} for i in range(30)]
    train, valid = split_valid(rows)
    assert (len(train), len(valid)) == (27, 3)
    assert split_valid(rows[:1]) == (rows[:1], rows[:1])


def v(score: int | None, improved: str = "better") -> Verdict:
    return Verdict(score, "c", improved, "raw", valid=score is not None)


def test_training_rows_take_teacher_answer_below_min_score():
    items = [PromptItem.from_text(q) for q in "abcde"]
    answers = [{"text": f"student {q}"} for q in "abcde"]
    verdicts = [v(9), v(8), v(7), v(None), v(2, improved=" ")]
    rows, counts = training_rows(items, answers, verdicts, min_score=8)
    assert [r["messages"][-1]["content"] for r in rows] == ["student a", "student b", "better"]
    assert rows[0]["messages"] == [{"role": "user", "content": "a"}, {"role": "assistant", "content": "student a"}]
    assert counts == {
        "rows": 3,
        "teacher_answers": 1,
        "student_answers": 2,
        "skipped_invalid_verdict": 1,
        "skipped_no_improvement": 1,
    }


def test_compare_counts_win_tie_loss():
    held = [PromptItem.from_text(q) for q in "abcd"]
    result = compare(held, [v(5), v(5), v(5), v(5)], [v(7), v(5), v(3), v(None)])
    assert (result["win"], result["tie"], result["loss"], result["unjudged"]) == (1, 1, 1, 1)
    assert result["before"]["mean_score"] == 5 and result["after"]["mean_score"] == 5
    assert compare(held, [v(5)] * 4, None)["after"] is None


def test_fill_from_store_computes_only_missing_and_stores_each_at_once(tmp_path):
    keys = ["k1", "k2", "k1", "k3"]
    calls: list[list[int]] = []
    with Store(tmp_path / "s.db") as store:
        store.put_result("answer", "k2", "stored")

        def compute(indices):
            calls.append(indices)
            for j, i in enumerate(indices):
                yield j, f"new {keys[i]}"
                assert store.get_result("answer", keys[i]) == f"new {keys[i]}" or j == len(indices) - 1

        done = []
        assert fill_from_store(store, "answer", keys, compute, done.append) == ["new k1", "stored", "new k1", "new k3"]
        assert calls == [[0, 3]] and sum(done) == 4
        assert fill_from_store(store, "answer", keys, compute, done.append) == ["new k1", "stored", "new k1", "new k3"]
        assert calls == [[0, 3]]


def test_examples_become_a_training_directory_and_bad_data_is_one_line(tmp_path):
    """What `Student.fine_tune` trains on: examples written as train/valid.jsonl, or a ready directory."""
    made = training_data([("Add 1 and 2.", "1 + 2"), ("Add 3 and 4.", "3 + 4")], tmp_path / "data")
    rows = [
        json.loads(line) for name in ("train.jsonl", "valid.jsonl") for line in (made / name).read_text().splitlines()
    ]
    assert made == tmp_path / "data" and {r["messages"][-1]["content"] for r in rows} == {"1 + 2", "3 + 4"}
    assert training_data(made, tmp_path / "unused") == made and not (tmp_path / "unused").exists()
    with pytest.raises(LlamarchError, match="has no train.jsonl"):
        training_data(tmp_path, tmp_path / "x")
    with pytest.raises(LlamarchError, match="no training examples given"):
        training_data([], tmp_path / "x")


def test_examples_normalize_to_chat_rows():
    rows = normalize_examples(
        [("q", "a"), {"prompt": "p", "completion": "c"}, {"messages": [{"role": "user", "content": "m"}]}]
    )
    assert [r["messages"][-1]["content"] for r in rows] == ["a", "c", "m"]
    with pytest.raises(LlamarchError, match="example 1"):
        normalize_examples([42])


def test_synthesized_prompts_parse_and_dedupe_keys():
    assert parse_prompts('{"prompts": ["Sort a list.", " ", "Parse JSON."]}') == ["Sort a list.", "Parse JSON."]
    assert parse_prompts("Tasks:\n1. Sort a list.\n- Parse JSON.\nno") == ["Sort a list.", "Parse JSON."]
    assert normalized("Sort a LIST!") == normalized("sort a list")


def test_demo_prompts_are_well_formed():
    items = read_prompts(DEMO_PROMPTS)
    assert len(items) >= 8 and len({it.question for it in items}) == len(items)


def test_report_table_mentions_before_after_and_wins():
    report = {
        "verdicts": {"count": 4, "valid": 4, "invalid": 0, "retried": 1, "mean_score": 6.5},
        "training_set": {
            "rows": 4,
            "teacher_answers": 2,
            "student_answers": 2,
            "skipped_invalid_verdict": 0,
            "skipped_no_improvement": 0,
            "train_rows": 3,
            "valid_rows": 1,
        },
        "evaluation": compare([PromptItem.from_text("a"), PromptItem.from_text("b")], [v(4), v(6)], [v(8), v(6)]),
    }
    table = format_report(report)
    assert "student + adapter" in table and "5.00" in table and "7.00" in table and "1 win / 1 tie / 0 loss" in table
    json.dumps(report)  # the report is plain JSON
