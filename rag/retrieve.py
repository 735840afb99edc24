"""Find the chunks most relevant to a question: dense, lexical, or both fused.

Owns ranking over the stored index: inner-product search over unit vectors
(cosine similarity) through the store's `VectorIndex` (FAISS or pgvector), BM25
over the chunk texts (bm25s), and their reciprocal-rank fusion. It does not
pick quotes or decide whether to abstain.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from rag.embed import Vectors
from rag.features import tokens
from rag.store import StoredIndex
from rag.types import Hit

log = logging.getLogger(__name__)

RRF_K = 60  # the usual reciprocal-rank-fusion constant (Cormack et al. 2009)


def _dense(index: StoredIndex, query_vector: Vectors, k: int) -> list[tuple[int, float]]:
    return index.chunk_index.search(query_vector, k)


def search(index: StoredIndex, query_vector: Vectors, k: int) -> list[Hit]:
    """The ``k`` chunks nearest to ``query_vector``, best first (score: cosine).

    Example:
        >>> hits = search(stored, embedder.embed_query("Why did Musk leave?"), 5)  # doctest: +SKIP
    """
    return [
        Hit(index.chunks[row], score, rank)
        for rank, (row, score) in enumerate(_dense(index, query_vector, k))
    ]


class LexicalIndex:
    """BM25 over the chunk texts of one stored index, built in memory on first use."""

    def __init__(self, index: StoredIndex) -> None:
        import bm25s

        # bm25s sets its logger to DEBUG when imported, which printed a line per index
        # build on every CLI call; its messages are warnings or nothing for us.
        logging.getLogger("bm25s").setLevel(logging.WARNING)

        self._bm25: Any = bm25s.BM25()
        corpus = [tokens(c.text) or ["\x00"] for c in index.chunks]
        self._bm25.index(corpus, show_progress=False)
        self._vocab: set[str] = set(self._bm25.vocab_dict)
        self.size = len(index.chunks)

    def search(self, question: str, k: int) -> list[tuple[int, float]]:
        """``(chunk row, BM25 score)`` of the best ``k`` chunks with a positive score."""
        wanted = [t for t in tokens(question) if t in self._vocab]
        if not wanted or self.size == 0:
            return []
        # Scores of every chunk, then the best k by (score, row): bm25s's own `retrieve`
        # costs more in progress-bar set-up than the scoring itself, and breaks ties
        # arbitrarily.
        scores = np.asarray(self._bm25.get_scores(wanted), dtype=np.float64)
        rows = np.flatnonzero(scores > 0)
        best = rows[np.lexsort((rows, -scores[rows]))[:k]]
        return [(int(r), float(scores[r])) for r in best]


def hybrid_search(
    index: StoredIndex, lexical: LexicalIndex, query_vector: Vectors, question: str, k: int
) -> list[Hit]:
    """Dense and BM25 rankings fused by reciprocal rank; each hit keeps its cosine score.

    The fused order decides which chunks are candidates and in what order; the
    score stays the cosine similarity, so thresholds keep their meaning.
    """
    depth = max(k * 4, 20)
    fused: dict[int, float] = {}
    for ranking in (_dense(index, query_vector, depth), lexical.search(question, depth)):
        for rank, (row, _) in enumerate(ranking):
            fused[row] = fused.get(row, 0.0) + 1.0 / (RRF_K + rank + 1)
    best = sorted(fused, key=lambda r: (-fused[r], r))[:k]
    cosines = index.chunk_index.scores(query_vector, best)
    return [
        Hit(index.chunks[row], score, rank)
        for rank, (row, score) in enumerate(zip(best, cosines, strict=True))
    ]
