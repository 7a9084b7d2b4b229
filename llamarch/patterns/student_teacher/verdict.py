"""A teacher's structured verdict: the JSON schema that constrains it, and a lenient parser.

Backends that can constrain decoding (llama.cpp grammars, `response_format` on OpenAI-style
servers) receive `VERDICT_SCHEMA`, so their output always parses. The parser still accepts
the usual ways an unconstrained model wraps JSON (code fences, prose around it, raw newlines
inside strings, "8/10" as a score), and never makes up a score it did not find.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any

MIN_SCORE, MAX_SCORE = 1, 10

# A JSON string body whose control characters are escaped. llama-cpp-python's plain
# `"type": "string"` rule lets raw newlines through, and small models then lose track of
# where the string ends (they write code with real newlines and never close the quote).
_JSON_STRING_BODY = r'^([^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*$'

# Property order is output order: reasons first, then the score they justify, then the fix.
VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "critique": {"type": "string", "pattern": _JSON_STRING_BODY},
        "score": {"type": "integer", "enum": list(range(MIN_SCORE, MAX_SCORE + 1))},
        "improved_answer": {"type": "string", "pattern": _JSON_STRING_BODY},
    },
    "required": ["critique", "score", "improved_answer"],
    "additionalProperties": False,
}

# A verdict without the improved answer: for comparisons, where only the score matters.
SCORE_SCHEMA: dict[str, Any] = {
    **VERDICT_SCHEMA,
    "properties": {k: v for k, v in VERDICT_SCHEMA["properties"].items() if k != "improved_answer"},
    "required": ["critique", "score"],
}


@dataclass(frozen=True)
class Verdict:
    """The teacher's judgement of one answer.

    `score` is an integer from 1 to 10, or None when the teacher's text held no readable
    verdict; then `valid` is False and `error` says what was wrong.
    """

    score: int | None
    critique: str
    improved_answer: str
    raw: str
    valid: bool = True
    error: str | None = None
    attempts: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in fields})


def parse_verdict(text: str) -> Verdict:
    """Read a verdict from a teacher's reply; `valid=False` (score None) when there is none."""
    obj = _find_json_object(text)
    if obj is None:
        return _invalid(text, "no JSON object in the teacher's reply")
    score = _coerce_score(obj.get("score"))
    if score is None:
        return _invalid(text, f"no score from {MIN_SCORE} to {MAX_SCORE} in the teacher's reply")
    return Verdict(
        score=score,
        critique=_text(obj.get("critique")),
        improved_answer=_text(obj.get("improved_answer")),
        raw=text,
    )


def _invalid(text: str, error: str) -> Verdict:
    return Verdict(score=None, critique="", improved_answer="", raw=text, valid=False, error=error)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def _find_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in `text` that has a "score" key (strict=False: raw newlines pass)."""
    candidates = [text.strip(), *(m.group(1) for m in _FENCE.finditer(text))]
    decoder = json.JSONDecoder(strict=False)
    for candidate in candidates:
        for start in (i for i, ch in enumerate(candidate) if ch == "{"):
            try:
                obj, _ = decoder.raw_decode(candidate, start)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict) and "score" in obj:
                return obj
    return None


_SCORE_TEXT = re.compile(r"^\s*(\d+(?:\.0+)?)\s*(?:/\s*10)?\s*$")


def _coerce_score(value: Any) -> int | None:
    """8, 8.0, "8" and "8/10" are a score of 8; anything else, or out of range, is none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        match = _SCORE_TEXT.match(value)
        value = int(float(match.group(1))) if match else None
    if isinstance(value, int) and MIN_SCORE <= value <= MAX_SCORE:
        return value
    return None
