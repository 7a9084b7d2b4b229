"""llamarch: run and distill language models on your own laptop, offline.

In Python:

    from llamarch import LLM
    with LLM("qwen2.5-coder-0.5b") as llm:
        print(llm.generate("Write a Python function that reverses a string."))
"""

from .backends.base import Chunk, GenerationOptions, Response, Stats
from .errors import LlamarchError
from .llm import LLM

__version__ = "0.1.0"

__all__ = ["LLM", "Chunk", "GenerationOptions", "LlamarchError", "Response", "Stats", "__version__"]
