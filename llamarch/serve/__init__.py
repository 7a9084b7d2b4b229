"""An OpenAI-compatible HTTP server for one model (`llamarch serve`)."""

from .server import ModelService, OpenAIServer, bind, make_server

__all__ = ["ModelService", "OpenAIServer", "bind", "make_server"]
