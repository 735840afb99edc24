"""seedrag: answers made of verbatim, checkable quotes from a folder of documents.

Importing this package loads no model, reads no environment variable, writes
nothing and imports no heavy library: names resolve on first use (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.api import Index, answer, open_index, source_text
    from rag.config import Settings
    from rag.errors import RagError
    from rag.integrations.langchain import as_langchain_retriever
    from rag.types import Answer, Citation, IndexReport, IndexStatus

_EXPORTS = {
    "Answer": "rag.types",
    "Citation": "rag.types",
    "IndexReport": "rag.types",
    "Index": "rag.api",
    "IndexStatus": "rag.api",
    "answer": "rag.api",
    "open_index": "rag.api",
    "source_text": "rag.api",
    "as_langchain_retriever": "rag.integrations.langchain",
    "Settings": "rag.config",
    "RagError": "rag.errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rag' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
