"""A chat session: one loaded model, the turn loop, context trimming, and saving each turn.

The model is loaded once and sees the same conversation re-rendered every turn; the
engine reuses its KV cache for the longest common token prefix, so a turn evaluates only
the new messages. Trimming drops the oldest turns (never the system prompt), and drops
enough at once that it happens seldom: each trim changes the prefix and costs one full
prompt evaluation.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..backends import ChatPrefill, GenerationOptions, Message, PromptTokens, Stats
from ..errors import LlamarchError
from .conversations import ConversationInfo, Conversations, StoredMessage

Notice = Callable[[str], None]


class ChatContextError(LlamarchError):
    def __init__(self, tokens: int, budget: int, n_ctx: int):
        super().__init__(
            f"this message and the system prompt are {tokens} tokens, more than the {budget} of the "
            f"{n_ctx}-token context window left after room for the reply: shorten it, lower "
            "--max-tokens or raise --n-ctx"
        )


@dataclass(frozen=True)
class Turn:
    """One exchange: the user's message and the model's (possibly cancelled) reply."""

    user: str
    reply: str
    stats: Stats
    cancelled: bool


def count_prompt_tokens(llm: Any, messages: list[Message]) -> int:
    """Tokens the engine will see for these messages (exact where the engine renders locally)."""
    if isinstance(llm.backend, PromptTokens):
        return len(llm.backend.prompt_tokens(messages)[0])
    try:  # remote engines: tokenize each message, plus an allowance for the template
        return sum(len(llm.tokenize(m["content"])) + 8 for m in messages) + 8
    except Exception:
        return sum(len(m["content"]) // 3 + 8 for m in messages) + 8


def tokens_at_most(messages: list[Message]) -> int:
    """An upper bound on the prompt's tokens, with no tokenizer: a token covers at least one
    byte; the allowances cover template tokens and a template's default system prompt."""
    return sum(len(m["content"].encode("utf-8")) + 16 for m in messages) + 64


def _stats_without_engine(t_call: float, t_first: float | None, n_chunks: int) -> Stats:
    """Stats for a reply the engine did not finish (interrupted): what the session measured."""
    now = time.perf_counter()
    first = t_first or now
    return Stats(0, n_chunks, 0.0, 0.0, first - t_call, now - t_call, "cancelled")


class ChatSession:
    """A conversation with one model; each completed turn is written to the store at once.

    `options` are generation options (temperature, max_tokens, seed, ...). `model_spec`
    is what reopens the model later (`--continue`): a catalog id, a path, an `openai:` spec.
    """

    def __init__(
        self,
        llm: Any,
        conversations: Conversations | None = None,
        *,
        system: str | None = None,
        options: dict[str, Any] | None = None,
        model_spec: str | None = None,
        notice: Notice | None = None,
    ):
        self.llm = llm
        self.conversations = conversations
        self.system = system or None
        self.options = {k: v for k, v in (options or {}).items() if v is not None}
        GenerationOptions.from_kwargs(**self.options)  # reject unknown options now
        self.model_spec = model_spec or llm.model_id
        self.notice: Notice = notice or (lambda text: None)
        self.cid: int | None = None
        self.history: list[StoredMessage] = []
        self.context_start = 0  # index in history of the first message the model still sees
        self.last_turn: Turn | None = None
        self._unsaved: list[list[StoredMessage]] = []

    # --- conversation ---------------------------------------------------------------------

    def resume(self, info: ConversationInfo, system: str | None = None) -> None:
        """Continue a stored conversation: the model sees all its messages (trimmed to fit)."""
        assert self.conversations is not None
        self.reset()
        self.cid = info.id
        self.history = self.conversations.messages(info.id)
        self.system = info.system
        if system is not None and system != info.system:
            self.set_system(system)
        if self.options != info.options:
            self.conversations.update(info.id, options=self.options)

    def load(self, ref: str) -> ConversationInfo:
        """Switch to a conversation by saved name or id."""
        if self.conversations is None:
            raise LlamarchError("this session has no store to load from")
        info = self.conversations.find(ref)
        self.resume(info)
        return info

    def reset(self) -> None:
        """Start a new conversation (same model, system prompt and options)."""
        self.cid = None
        self.history = []
        self.context_start = 0
        self.last_turn = None

    def set_system(self, text: str | None) -> None:
        self.system = text or None
        if self.cid is not None and self.conversations is not None:
            self.conversations.update(self.cid, system=self.system)

    def save(self, name: str) -> int:
        """Name the conversation for `/load NAME`; returns its id."""
        if self.conversations is None:
            raise LlamarchError("this session has no store to save to")
        self._ensure_conversation()
        assert self.cid is not None
        self.conversations.name(name, self.cid)
        return self.cid

    def context(self, start: int | None = None) -> list[Message]:
        """The messages the model sees: the system prompt, then the kept part of the history."""
        head: list[Message] = [{"role": "system", "content": self.system}] if self.system else []
        kept = self.history[self.context_start if start is None else start :]
        return head + [{"role": m.role, "content": m.content} for m in kept]

    # --- a turn -----------------------------------------------------------------------------

    def stream(self, text: str, cancel: threading.Event | None = None) -> Iterator[str]:
        """Send a user message; yield the reply's text as it arrives.

        When the reply ends (finished, cancelled through `cancel`, or interrupted), the turn
        is added to the history and written to the store; `last_turn` then describes it.
        """
        user: Message = {"role": "user", "content": text}
        self._fit(user)
        options = GenerationOptions.from_kwargs(**self.options, cancel=cancel)
        parts: list[str] = []
        stats: Stats | None = None
        sent = time.time()
        t_call, t_first = time.perf_counter(), None
        try:
            for chunk in self.llm.stream(self.context() + [user], options=options):
                if chunk.text:
                    t_first = t_first or time.perf_counter()
                    parts.append(chunk.text)
                    yield chunk.text
                stats = chunk.stats or stats
        except (KeyboardInterrupt, GeneratorExit):
            self._finish(text, sent, "".join(parts), _stats_without_engine(t_call, t_first, len(parts)), cancelled=True)
            raise
        except Exception:
            if parts:  # an engine that failed mid-reply: keep what arrived
                self._finish(
                    text, sent, "".join(parts), _stats_without_engine(t_call, t_first, len(parts)), cancelled=True
                )
            raise
        if stats is None:
            stats = _stats_without_engine(t_call, t_first, len(parts))
        self._finish(text, sent, "".join(parts), stats, cancelled=stats.finish_reason == "cancelled")
        self._prefill_next()

    def _prefill_next(self) -> None:
        """Let the engine evaluate the start of the next prompt while the user types."""
        if isinstance(self.llm.backend, ChatPrefill):
            try:
                self.llm.backend.prefill_chat(self.context())
            except LlamarchError:  # an optimisation only: the next turn evaluates it instead
                pass

    def send(self, text: str, cancel: threading.Event | None = None) -> Turn:
        """Send a user message and wait for the whole reply."""
        for _ in self.stream(text, cancel):
            pass
        assert self.last_turn is not None
        return self.last_turn

    def _finish(self, text: str, sent: float, reply: str, stats: Stats, cancelled: bool) -> None:
        model = self.llm.model_id
        turn = [
            StoredMessage("user", text, created=sent),
            StoredMessage(
                "assistant", reply, cancelled=cancelled, model=model, options=self.options, stats=stats.to_dict()
            ),
        ]
        self.history.extend(turn)
        self.last_turn = Turn(text, reply, stats, cancelled)
        self._save(turn)

    # --- context window ------------------------------------------------------------------

    def _reply_reserve(self) -> int:
        n_ctx = self.llm.n_ctx
        return min(self.options.get("max_tokens") or n_ctx // 4, n_ctx // 2)

    def _fit(self, user: Message) -> None:
        """Drop the oldest turns until the prompt leaves room for the reply."""
        n_ctx = self.llm.n_ctx
        budget = n_ctx - self._reply_reserve()

        def size(start: int) -> int:
            return count_prompt_tokens(self.llm, self.context(start) + [user])

        if tokens_at_most(self.context() + [user]) <= budget or size(self.context_start) <= budget:
            return
        # Turn boundaries (user messages) after the current start, then "drop everything".
        starts = [i for i in range(self.context_start + 1, len(self.history)) if self.history[i].role == "user"]
        starts.append(len(self.history))
        # Aim lower than the budget so the next turns fit without another trim.
        target = max(budget - n_ctx // 4, budget // 2)
        lo, hi = 0, len(starts) - 1  # the prompt shrinks as the start moves on: binary search
        while lo < hi:
            mid = (lo + hi) // 2
            if size(starts[mid]) <= target:
                hi = mid
            else:
                lo = mid + 1
        chosen = starts[lo]
        if size(chosen) > budget:
            raise ChatContextError(size(chosen), budget, n_ctx)
        dropped = chosen - self.context_start
        self.context_start = chosen
        self.notice(
            f"context window full ({n_ctx} tokens): the model no longer sees the {dropped} oldest "
            f"message{'s' if dropped != 1 else ''} (the store keeps them all)"
        )

    # --- persistence ----------------------------------------------------------------------

    def _ensure_conversation(self) -> None:
        if self.cid is None and self.conversations is not None:
            self.cid = self.conversations.create(self.model_spec, self.llm.backend_name, self.system, self.options)

    def _save(self, messages: list[StoredMessage]) -> None:
        """Write a finished turn now; if the store refuses, keep it and retry with the next one."""
        if self.conversations is None:
            return
        self._unsaved.append(messages)
        try:
            self.flush()
        except LlamarchError as e:
            self.notice(f"{e} (this turn is kept and will be saved with the next one)")

    def flush(self) -> None:
        """Write the turns not yet stored; raises the store's error if it still refuses."""
        if self.conversations is None or not self._unsaved:
            return
        self._ensure_conversation()
        assert self.cid is not None
        while self._unsaved:
            self.conversations.append(self.cid, self._unsaved[0])
            self._unsaved.pop(0)

    def close(self) -> None:
        """Store the turns not yet stored; if the store still refuses, write them to a JSON file."""
        try:
            self.flush()
        except LlamarchError as e:
            path = self._rescue()
            n = len(self._unsaved)
            raise LlamarchError(
                f"{n} turn{'s' if n != 1 else ''} could not be stored ({e}); they are in {path}"
            ) from None

    def _rescue(self) -> Path:
        from .. import paths

        target = (
            paths.ensure_dir(paths.user_dir() / "unsaved") / f"chat-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.json"
        )
        data = {
            "conversation_id": self.cid,
            "model": self.model_spec,
            "backend": self.llm.backend_name,
            "system": self.system,
            "options": self.options,
            "messages": [m.to_dict() for turn in self._unsaved for m in turn],
        }
        target.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
        return target

    @property
    def unsaved_turns(self) -> int:
        return len(self._unsaved)
