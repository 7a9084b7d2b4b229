"""The optional engine capabilities are declared Protocols, and each engine has the ones it claims."""

from __future__ import annotations

import pytest

from llamarch.backends import (
    BACKENDS,
    BatchPlanning,
    BatchStreaming,
    ChatPrefill,
    ChatTemplated,
    ContinuesAssistant,
    PromptTokens,
    backend_class,
)

METHODS = (BatchStreaming, BatchPlanning, PromptTokens, ChatPrefill)
CLAIMED = {
    "llamacpp": {BatchStreaming, BatchPlanning, PromptTokens, ChatPrefill},
    "mlx": {BatchStreaming, PromptTokens},
    "openai": {BatchStreaming},
}


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_engine_capabilities(name):
    cls = backend_class(name)
    assert {p for p in METHODS if issubclass(cls, p)} == CLAIMED[name]
    assert hasattr(cls, "has_chat_template")  # a property or a class attribute: ChatTemplated on every instance
    assert hasattr(cls, "continues_assistant_message") == (name == "llamacpp")


def test_data_capabilities_are_checked_on_instances():
    class Plain:
        has_chat_template = False

    assert isinstance(Plain(), ChatTemplated) and not isinstance(Plain(), ContinuesAssistant)


def test_cli_backend_choices_are_the_registry():
    from llamarch.cli.ui import BACKEND_CHOICE

    assert list(BACKEND_CHOICE.choices) == list(BACKENDS)
