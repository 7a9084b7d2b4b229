"""Chat: multi-turn sessions over one loaded model, stored in the user's SQLite store."""

from .conversations import ConversationInfo, Conversations, StoredMessage, UnknownConversationError
from .session import ChatContextError, ChatSession, Turn

__all__ = [
    "ChatContextError",
    "ChatSession",
    "ConversationInfo",
    "Conversations",
    "StoredMessage",
    "Turn",
    "UnknownConversationError",
]
