"""seedrag as a LangChain retriever: each verbatim quote becomes a `Document`.

Owns the adapter only. ``page_content`` is the quote exactly as cited, and
``metadata`` says where it lies (``source``, ``start``, ``end``, ``score``, and
``page`` and ``page_label`` for PDFs), so ``source_text(source)[start:end] == page_content``.
When the documents do not answer, the retriever returns no document.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from rag.api import Index, open_index


class SeedragRetriever(BaseRetriever):
    """A LangChain retriever over an open seedrag `Index`.

    Usage (not a doctest: it needs a built index, a model or a server)::

        docs = SeedragRetriever(index=idx).invoke("Why did Musk leave?")
        docs[0].metadata["source"], docs[0].metadata["start"]
        # -> ('000_510c6f564a1ffe89.txt', 10412)
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Index

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        result = self.index.answer(query)
        docs = []
        for c in result.citations:
            meta: dict[str, Any] = {
                "source": c.source,
                "start": c.start,
                "end": c.end,
                "score": c.score,
            }
            if c.page is not None:
                meta["page"] = c.page
                meta["page_label"] = c.page_label or str(c.page)
            docs.append(Document(page_content=c.quote, metadata=meta))
        return docs


def as_langchain_retriever(
    seeds_dir: str | Path = "seeds", index_dir: str | Path = "index", **options: Any
) -> SeedragRetriever:
    """A LangChain `BaseRetriever` answering from ``seeds_dir`` with verbatim quotes.

    ``options`` are those of `rag.open_index` (``settings``, ``embedder``,
    ``store="pgvector"``, ``pg_url``, ``pg_schema``); the index is built or
    refreshed first.

    Usage (not a doctest: it needs a built index, a model or a server)::

        import rag
        retriever = rag.as_langchain_retriever(seeds_dir="seeds")
        chain = retriever | (lambda docs: [d.page_content for d in docs])
    """
    return SeedragRetriever(index=open_index(seeds_dir, index_dir, **options))
