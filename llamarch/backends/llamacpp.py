"""GGUF models through llama.cpp (llama-cpp-python): CPU, Metal or CUDA."""

from __future__ import annotations

import collections
import json
import os
import random
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import BackendError, ContextOverflowError, MissingExtraError, ModelFileError
from ..gguf_file import validate
from ..hardware import cpu_flags, physical_cores
from .base import Chunk, GenerationOptions, Message, Prompt, Stats
from .llamacpp_private import input_ids, kv_cache_seq_rm, token_text, vocab_ptr
from .textstream import StopMatcher, Utf8Stream

DEFAULT_N_CTX = 4096
# Used for chat on models without a chat template (base models).
TRANSCRIPT_STOPS = ("\nUser:", "\nuser:")
# Marks where a partial assistant message ends inside a rendered chat template.
PREFILL_MARK = "\u2063llamarch-prefill\u2063"


# The last error lines llama.cpp logged, to explain a failed load in one line.
_recent_errors: collections.deque[str] = collections.deque(maxlen=8)
_log_callback: Any = None  # kept alive: llama.cpp holds a raw pointer to it


def import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError:
        raise MissingExtraError("the llama.cpp engine (llama-cpp-python)", "llamacpp") from None
    _route_native_log(llama_cpp)
    _refuse_amx_kernels(llama_cpp)
    return llama_cpp


AMX_REBUILD = (
    'CMAKE_ARGS="-DCMAKE_C_FLAGS=-mno-amx-int8 -DCMAKE_CXX_FLAGS=-mno-amx-int8" '
    "pip install --force-reinstall --no-cache-dir --no-deps llama-cpp-python=={version}"
)


def amx_kernels_would_run(system_info: str, flags: frozenset[str]) -> bool:
    """Whether llama.cpp was built with its AMX matrix kernels and this CPU would run them."""
    return "AMX_INT8 = 1" in system_info and "amx_int8" in flags


def _refuse_amx_kernels(llama_cpp: Any) -> None:
    """One line instead of a segfault: llama.cpp's AMX kernels crash on the first reply on
    some AMX Xeons (llama.cpp issue 20824). `make` builds without them; LLAMARCH_ALLOW_AMX=1
    runs a build that has them anyway."""
    if os.environ.get("LLAMARCH_ALLOW_AMX"):
        return
    info = llama_cpp.llama_print_system_info().decode("utf-8", errors="replace")
    if amx_kernels_would_run(info, cpu_flags()):
        from importlib.metadata import version

        rebuild = AMX_REBUILD.format(version=version("llama_cpp_python"))
        raise BackendError(
            "llama-cpp-python was built with llama.cpp's AMX kernels, which can crash on this CPU "
            f"(llama.cpp issue 20824): rebuild it without them with `{rebuild}`, "
            "or set LLAMARCH_ALLOW_AMX=1 to try it as is"
        )


def _route_native_log(llama_cpp: Any) -> None:
    """Send llama.cpp's own log to Python logging instead of the terminal.

    llama.cpp writes informational lines at error level (e.g. about SWA caches); they are
    shown only with LLAMARCH_DEBUG=1, and kept to explain load failures.
    """
    global _log_callback
    if _log_callback is not None:
        return
    import ctypes

    echo = bool(os.environ.get("LLAMARCH_DEBUG"))

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, user_data: Any) -> None:
        line = text.decode("utf-8", errors="replace").rstrip()
        if level == 3 and line:
            _recent_errors.append(line)
        if echo:
            print(line, file=sys.stderr)

    _log_callback = callback
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))


def _load_failure_reason(e: Exception) -> str:
    native = [ln for ln in _recent_errors if "error" in ln.lower() or "failed" in ln.lower()]
    return native[-1] if native else str(e).splitlines()[0]


def render_transcript(messages: Sequence[Message]) -> str:
    """A plain-text chat transcript, for models that have no chat template."""
    lines = []
    for m in messages:
        if m["role"] == "system":
            lines.append(m["content"].strip() + "\n")
        else:
            lines.append(f"{m['role'].capitalize()}: {m['content'].strip()}")
    return "\n".join(lines) + "\nAssistant:"


class LlamaCppBackend:
    """One GGUF model loaded in llama.cpp. Close it (or use `with`) to free native memory."""

    name = "llamacpp"
    continues_assistant_message = True  # see render_chat

    def __init__(
        self,
        model_path: str | Path,
        *,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        n_gpu_layers: int | None = None,
        n_batch: int = 512,
        lora_path: str | Path | None = None,
        check_lora_base: bool = True,
        chat_template: str | None = None,
        use_chat_template: bool = True,
        seed: int | None = None,
        verbose: bool = False,
        draft_model: Any = None,
        prompt_lookup: bool = False,
        n_draft: int | None = None,
        flash_attn: bool = False,
    ):
        llama_cpp = import_llama_cpp()
        self.model_path = Path(model_path)
        self.model_name = self.model_path.name
        header = validate(self.model_path)
        if lora_path is not None:
            if (Path(lora_path) / "adapter_config.json").is_file():
                raise ModelFileError(
                    f"{lora_path} is an MLX adapter directory: export it for llama.cpp with "
                    f"`llamarch export {lora_path} --to gguf-lora`, or run it with --backend mlx"
                )
            lora = validate(lora_path)
            if lora.metadata.get("general.type") != "adapter":
                raise ModelFileError(f"{lora_path} is not a GGUF LoRA adapter (general.type != adapter)")
            if check_lora_base:
                from ..identity import check_gguf_adapter

                check_gguf_adapter(lora_path, self.model_path)
        trained = header.context_length or DEFAULT_N_CTX
        self.n_ctx_train = int(trained)
        n_ctx = int(n_ctx or min(DEFAULT_N_CTX, self.n_ctx_train))
        if n_gpu_layers is None:
            n_gpu_layers = -1 if llama_cpp.llama_supports_gpu_offload() else 0
        self.n_gpu_layers = n_gpu_layers
        threads = n_threads or physical_cores()
        _recent_errors.clear()
        try:
            self._llm = llama_cpp.Llama(
                model_path=str(self.model_path),
                n_ctx=n_ctx,
                n_batch=min(n_batch, n_ctx),
                n_threads=threads,
                n_threads_batch=threads,
                n_gpu_layers=n_gpu_layers,
                lora_path=str(lora_path) if lora_path else None,
                seed=seed if seed is not None else llama_cpp.LLAMA_DEFAULT_SEED,
                flash_attn=flash_attn,
                verbose=verbose,
            )
        except (ValueError, RuntimeError) as e:
            what = f"{self.model_path} with adapter {lora_path}" if lora_path else str(self.model_path)
            raise BackendError(f"llama.cpp could not load {what}: {_load_failure_reason(e)}") from None
        self._llama_cpp = llama_cpp
        self.lora_path = Path(lora_path) if lora_path else None
        self.metadata = header.metadata
        self.architecture = header.architecture
        # llama.cpp may pad a small context; llama-cpp-python's token buffer keeps the asked size.
        self.n_ctx = min(n_ctx, self._llm.n_ctx())
        self.n_threads = threads
        self._formatter = self._make_formatter(chat_template, use_chat_template)
        self._grammars: dict[str, Any] = {}
        self._pieces: dict[int, bytes] = {}
        self._batch_engine: Any = None
        self._speculative = None
        if draft_model is not None or prompt_lookup:
            from .speculative import Speculative

            try:
                self._speculative = Speculative(self, draft_model, prompt_lookup, n_draft, n_gpu_layers=n_gpu_layers)
            except BaseException:
                self.close()
                raise

    @classmethod
    def open(cls, model: str | Path | None, **options: Any) -> LlamaCppBackend:
        """Load a catalog id or a GGUF path (catalog settings apply to catalog models)."""
        from ..catalog import resolve

        resolved = resolve(model)
        entry = resolved.entry
        if entry is not None:
            options.setdefault("chat_template", entry.chat_template)
            options.setdefault("use_chat_template", entry.chat_format != "none")
        backend = cls(resolved.path, **options)
        backend.model_name = resolved.display_name
        return backend

    # --- prompt preparation -------------------------------------------------------

    def _make_formatter(self, override: str | None, use_template: bool) -> Any:
        template = override or (self.metadata.get("tokenizer.chat_template") if use_template else None)
        if not template:
            return None
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        eos, bos = self._llm.token_eos(), self._llm.token_bos()
        return Jinja2ChatFormatter(
            template=template,
            eos_token=token_text(self._llm, eos) if eos != -1 else "",
            bos_token=token_text(self._llm, bos) if bos != -1 else "",
        )

    @property
    def has_chat_template(self) -> bool:
        return self._formatter is not None

    def render_chat(self, messages: Sequence[Message]) -> str:
        """The prompt text the model sees for these messages.

        A last message from the assistant is continued, not answered ("prefill"): the
        reply picks up where its text ends, e.g. right after an opening code fence.
        """
        messages = list(messages)
        prefill = messages[-1]["content"] if messages and messages[-1]["role"] == "assistant" else None
        if self._formatter is None:
            return (
                render_transcript(messages[:-1]) + " " + prefill if prefill is not None else render_transcript(messages)
            )
        try:
            if prefill is None:
                return self._formatter(messages=messages).prompt
            # Render the partial reply as a whole turn and cut it where its text ends.
            text = self._formatter(
                messages=[*messages[:-1], {"role": "assistant", "content": prefill + PREFILL_MARK}]
            ).prompt
        except Exception as e:  # jinja errors: a template that rejects the conversation
            raise BackendError(f"the chat template of {self.model_path.name} rejected the messages: {e}") from None
        if PREFILL_MARK not in text:
            raise BackendError(f"the chat template of {self.model_path.name} cannot continue an assistant message")
        return text[: text.index(PREFILL_MARK)]

    def prompt_tokens(self, prompt: Prompt) -> tuple[list[int], list[str]]:
        """Token ids for a prompt, and extra stop strings its format needs."""
        if isinstance(prompt, str):
            return self._llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=False), []
        text = self.render_chat(prompt)
        stops = [] if self._formatter is not None else list(TRANSCRIPT_STOPS)
        # Chat templates write their own BOS where the model wants one.
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True), stops

    def prefill_chat(self, messages: Sequence[Message]) -> int:
        """Evaluate now what the prompt for `messages` plus a next user message starts with.

        Chat calls it once a reply is done, while the user reads and types: the template's
        tokens that close the reply and open the next user turn are then already in the KV
        cache, and the next reply starts sooner. Returns the number of tokens evaluated.
        """
        if self._llm is None:
            return 0
        marker = "\ue000llamarch-next-message\ue000"  # private-use characters: never in a real chat
        text = self.render_chat([*messages, {"role": "user", "content": marker}])
        head = text.split(marker, 1)[0]
        # The last token may merge with the message's first characters: leave it to the turn.
        tokens = self._llm.tokenize(head.encode("utf-8"), add_bos=False, special=True)[:-1]
        reuse = self._reused_prefix(tokens)
        if len(tokens) - reuse <= 0 or len(tokens) >= self.n_ctx:
            return 0
        if reuse > 0 and not kv_cache_seq_rm(self._llm, -1, reuse, -1):
            return 0
        self._llm.n_tokens = reuse
        self._llm.eval(tokens[reuse:])
        return len(tokens) - reuse

    def _grammar(self, schema: dict[str, Any] | None) -> Any:
        if schema is None:
            return None
        key = json.dumps(schema)  # property order is the output order: keep it
        if key not in self._grammars:
            from llama_cpp.llama_grammar import LlamaGrammar

            self._grammars[key] = LlamaGrammar.from_json_schema(key, verbose=False)
        return self._grammars[key]

    def _reused_prefix(self, tokens: list[int]) -> int:
        """How many prompt tokens llama.cpp will take from its KV cache (mirrors Llama.generate)."""
        n = self._llm.n_tokens
        if n == 0:
            return 0
        cached = input_ids(self._llm)[:n]
        prefix = 0
        for a, b in zip(cached, tokens):
            if a != b:
                break
            prefix += 1
        return prefix - 1 if prefix == len(tokens) else prefix

    # --- generation ---------------------------------------------------------------------

    def stream(self, prompt: Prompt, options: GenerationOptions) -> Iterator[Chunk]:
        if self._llm is None:
            raise BackendError(f"{self.model_name} is closed: load it again")
        if self._speculative is not None:
            return (chunk for _, chunk in self.stream_batch([prompt], options, parallel=1))
        return self._stream(prompt, options)

    def _stream(self, prompt: Prompt, options: GenerationOptions) -> Iterator[Chunk]:
        t_call = time.perf_counter()
        tokens, format_stops = self.prompt_tokens(prompt)
        n_prompt = len(tokens)
        if n_prompt >= self.n_ctx:
            raise ContextOverflowError(n_prompt, self.n_ctx)
        room = self.n_ctx - n_prompt
        limit = room if options.max_tokens is None else min(options.max_tokens, room)
        cached = max(0, self._reused_prefix(tokens))
        seed = options.seed if options.seed is not None else random.randint(0, 2**31 - 1)
        self._llm.set_seed(seed)
        is_eog = self._llama_cpp.llama_vocab_is_eog
        vocab = vocab_ptr(self._llm)
        to_piece = self._piece
        utf8, stops = Utf8Stream(), StopMatcher([*options.stop, *format_stops])

        t_start = time.perf_counter()
        t_first = t_last = None
        received = generated = 0
        finish = "length"
        gen = self._llm.generate(
            tokens,
            top_k=options.top_k,
            top_p=options.top_p,
            min_p=options.min_p,
            temp=options.temperature,
            repeat_penalty=options.repeat_penalty,
            grammar=self._grammar(options.json_schema),
        )
        try:
            for token in gen if limit > 0 else ():
                t_last = time.perf_counter()
                t_first = t_first or t_last
                received += 1
                if is_eog(vocab, token):
                    finish = "stop"
                    break
                generated += 1
                text = stops.feed(utf8.feed(to_piece(token)))
                if text:
                    yield Chunk(text, (token,))
                if stops.stopped:
                    finish = "stop"
                    break
                if options.cancelled:
                    finish = "cancelled"
                    break
                if generated >= limit:
                    break
        finally:
            gen.close()
        t_end = time.perf_counter()
        tail = stops.feed(utf8.flush()) + stops.flush()
        t_first = t_first or t_end
        t_last = t_last or t_end
        evaluated = n_prompt - cached
        prompt_s = max(t_first - t_start, 1e-9)
        stats = Stats(
            prompt_tokens=n_prompt,
            completion_tokens=generated,
            prompt_tps=evaluated / prompt_s,
            decode_tps=(received - 1) / (t_last - t_first) if received > 1 and t_last > t_first else 0.0,
            ttft_s=t_first - t_call,
            total_s=t_end - t_call,
            finish_reason=finish,
            cached_tokens=cached,
        )
        yield Chunk(tail, stats=stats)

    def reset_cache(self) -> None:
        """Forget the KV cache: the next prompt is evaluated from its first token."""
        if self._llm is not None:
            self._llm.reset()
        if self._batch_engine is not None:
            self._batch_engine.clear()

    # --- batches ------------------------------------------------------------------------

    @property
    def shape(self) -> Any:
        """Layers, heads and sizes that the KV cache depends on (from the GGUF header)."""
        from .kvplan import ModelShape

        return ModelShape.from_metadata(self.metadata, self._llm.n_vocab())

    @property
    def on_gpu(self) -> bool:
        return bool(self._llama_cpp.llama_supports_gpu_offload()) and self.n_gpu_layers != 0

    def stream_batch(
        self, prompts: Sequence[Prompt], options: GenerationOptions, parallel: int | None = None
    ) -> Iterator[tuple[int, Chunk]]:
        """Replies to many prompts, up to `parallel` decoded together (default: planned)."""
        from .llamacpp_batch import stream_batch

        return stream_batch(self, prompts, options, parallel)

    def plan_batch(self, prompts: Sequence[Prompt], options: GenerationOptions, parallel: int | None = None) -> Any:
        """The memory plan `stream_batch` would use for these prompts (nothing is allocated)."""
        from .llamacpp_batch import plan_for, prepare_requests

        n_draft = self._speculative.n_draft if self._speculative is not None else 0
        return plan_for(self, prepare_requests(self, prompts, options), parallel, n_draft, notify=lambda line: None)

    def _piece(self, token: int) -> bytes:
        """The bytes of one token (llama-cpp-python's own helper returns its whole buffer)."""
        piece = self._pieces.get(token)
        if piece is None:
            import ctypes

            buf = ctypes.create_string_buffer(256)
            n = self._llama_cpp.llama_token_to_piece(vocab_ptr(self._llm), token, buf, 256, 0, False)
            piece = self._pieces[token] = buf.raw[: max(n, 0)]
        return piece

    # --- tokens -------------------------------------------------------------------------

    def tokenize(self, text: str, special: bool = False, add_bos: bool = False) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special)

    def detokenize(self, tokens: Sequence[int]) -> str:
        ids = [int(t) for t in tokens]
        n_vocab = self._llm.n_vocab()
        bad = next((t for t in ids if not 0 <= t < n_vocab), None)
        if bad is not None:  # llama.cpp aborts the process on an out-of-range id
            raise BackendError(f"token id {bad} is outside the vocabulary of {self.model_name} (0..{n_vocab - 1})")
        return self._llm.detokenize(ids).decode("utf-8", errors="replace")

    # --- lifetime -----------------------------------------------------------------------

    def close(self) -> None:
        for attr in ("_batch_engine", "_speculative"):
            part = getattr(self, attr, None)
            if part is not None:
                part.close()
                setattr(self, attr, None)
        llm, self._llm = getattr(self, "_llm", None), None
        if llm is not None:
            llm.close()

    def __enter__(self) -> LlamaCppBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
