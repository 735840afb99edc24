"""One generation of the index, with what answering builds from it once.

A `Generation` is made when an index generation is installed: the stored index, its
`SentenceFeatures` (sentence rows by chunk and the quote-scoring arrays) and, on the
first hybrid search, its BM25 index. Questions against the same generation share them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from rag.config import Retrieval, Settings
from rag.query.quotes import DEFAULT_WEIGHTS, QuoteWeights, answer_from
from rag.query.reading import answer_with_reader
from rag.query.retrieve import LexicalIndex, hybrid_search, search
from rag.query.sentences import SentenceFeatures
from rag.reader.model import AnswerReader
from rag.types import Answer, Hit, StoredIndex, Vectors


class Generation:
    """``stored`` with its sentence features (built now) and lexical index (on first use).

    Usage (not a doctest: it needs a built index, a model or a server)::

        gen = Generation(stored, max_quote_sentences=3)
        hits = gen.retrieve("Why did Musk leave?", query_vector, 6, "hybrid")
    """

    def __init__(self, stored: StoredIndex, max_quote_sentences: int) -> None:
        self.stored = stored
        self.sentences = SentenceFeatures(stored, max_quote_sentences)
        self._lexical: LexicalIndex | None = None
        self._lock = threading.Lock()

    @property
    def lexical(self) -> LexicalIndex:
        """The BM25 index of the chunks, built on first use."""
        with self._lock:
            if self._lexical is None:
                self._lexical = LexicalIndex(self.stored)
            return self._lexical

    def retrieve(self, question: str, query: Vectors, k: int, retrieval: Retrieval) -> list[Hit]:
        """The ``k`` chunks most relevant to ``question`` (embedded as ``query``), best
        first: dense only, or dense and BM25 fused (`Settings.retrieval`)."""
        if retrieval == "dense":
            return search(self.stored, self.sentences, query, k)
        return hybrid_search(self.stored, self.lexical, self.sentences, query, question, k)

    def answer(
        self,
        question: str,
        query: Vectors,
        settings: Settings,
        source_text: Callable[[str], str],
        reader: AnswerReader | None,
        weights: QuoteWeights = DEFAULT_WEIGHTS,
    ) -> Answer:
        """Answer ``question`` (cleaned, embedded as ``query``) from this generation:
        with the answer model ``reader`` as `Settings.reader` says, or by similarity and
        lexical features alone when ``reader`` is None."""
        hits = self.retrieve(question, query, settings.top_k, settings.retrieval)
        if reader is None:
            return answer_from(
                self.stored, question, query, hits, settings, source_text, self.sentences, weights
            )
        return answer_with_reader(
            self.stored,
            question,
            query,
            hits,
            settings,
            source_text,
            self.sentences,
            reader,
            weights,
            more=lambda k: self.retrieve(question, query, k, settings.retrieval),
        )
