"""Find the chunks most relevant to a question: dense, lexical, or both fused.

Owns ranking over the stored index: inner-product search over unit vectors
(cosine similarity) through the store's `VectorIndex` (FAISS or pgvector), BM25
over the chunk texts (bm25s), and their reciprocal-rank fusion. The chunks those
searches find are then ranked by their closest sentence (see `closest_sentences`).
It does not pick quotes or decide whether to abstain.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from rag.index.sentences import SentenceRows
from rag.index.vectors import inner_products
from rag.text.features import tokens
from rag.types import Hit, StoredIndex, Vectors

log = logging.getLogger(__name__)

RRF_K = 60  # the usual reciprocal-rank-fusion constant (Cormack et al. 2009)


def _dense(index: StoredIndex, query_vector: Vectors, k: int) -> list[int]:
    """Rows of the ``k`` nearest chunk vectors: the proposals `closest_sentences` ranks."""
    return index.chunk_index.nearest(query_vector, k)


def depth(k: int) -> int:
    """How many chunks each search proposes before the ``k`` best are kept."""
    return max(k * 4, 20)


def fuse(rankings: Sequence[Sequence[tuple[int, float]]], k: int) -> list[int]:
    """The ``k`` best rows of ``(row, score)`` rankings by reciprocal rank (ties by row)."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, (row, _) in enumerate(ranking):
            fused[row] = fused.get(row, 0.0) + 1.0 / (RRF_K + rank + 1)
    return [row for _, row in sorted((-score, row) for row, score in fused.items())[:k]]


def closest_sentences(
    index: StoredIndex, ranges: SentenceRows, query_vector: Vectors, rows: list[int]
) -> np.ndarray:
    """For each chunk row, the similarity to ``query_vector`` of its closest sentence.

    A chunk's own vector blurs its sentences together (with ``model_pass="sentences"``
    it is their mean), so a chunk holding one sentence that answers the question can
    rank below chunks that are vaguely on topic throughout; its best sentence does not
    blur. A chunk holding no sentence keeps its own cosine.
    """
    if ranges.count != index.sentence_vectors.shape[0]:
        raise ValueError(
            f"sentence ranges of {ranges.count} sentences used with an index of "
            f"{index.sentence_vectors.shape[0]}: build SentenceRows from this generation"
        )
    at = np.asarray(rows, dtype=np.int64)
    firsts = ranges.first[at]
    sizes = ranges.stop[at] - firsts
    scores = np.zeros(len(rows), dtype=np.float64)
    held = sizes > 0
    if held.any():
        # Each chunk's sentence rows, chunk after chunk; its best is a max over its segment.
        ends = np.cumsum(sizes)
        ids = np.arange(int(ends[-1]), dtype=np.int64) + np.repeat(firsts - (ends - sizes), sizes)
        sims = inner_products(index.sentence_vectors, query_vector, ids)
        scores[held] = np.maximum.reduceat(sims, (ends - sizes)[held])
    if not held.all():
        own = [r for r, h in zip(rows, held.tolist(), strict=True) if not h]
        scores[~held] = index.chunk_index.scores(query_vector, own)
    return scores


def _by_sentence(
    index: StoredIndex, ranges: SentenceRows, query_vector: Vectors, rows: list[int]
) -> list[tuple[int, float]]:
    """``rows`` with their closest sentence's score, best first (ties by row)."""
    scores = closest_sentences(index, ranges, query_vector, rows)
    at = np.asarray(rows, dtype=np.int64)
    order = np.lexsort((at, -scores))
    return list(zip(at[order].tolist(), scores[order].tolist(), strict=True))


def search(index: StoredIndex, ranges: SentenceRows, query_vector: Vectors, k: int) -> list[Hit]:
    """The ``k`` chunks whose closest sentence is nearest to ``query_vector``, best first.

    The vector index proposes the nearest chunks (cosine of the chunk vectors); they are
    ranked by `closest_sentences`, which is also each hit's score.

    Usage (not a doctest: it needs a built index, a model or a server)::

        q = embedder.embed_query("Why did Musk leave?")
        ranges = SentenceRows(stored.sentences, stored.chunks)
        hits = search(stored, ranges, q, 5)
    """
    rows = _dense(index, query_vector, depth(k))
    ranked = _by_sentence(index, ranges, query_vector, rows)[:k]
    return [Hit(index.chunks[row], score, rank) for rank, (row, score) in enumerate(ranked)]


class LexicalIndex:
    """BM25 over the chunk texts of one stored index, built in memory on first use.

    bm25s computes each term's BM25 weight in each chunk (a sparse term-by-chunk
    matrix); a question's scores are the sums of its terms' weights, summed here from
    the matrix's rows in one numpy call instead of bm25s's call per term, with the same
    ranking.
    """

    def __init__(self, index: StoredIndex) -> None:
        import bm25s

        # bm25s sets its logger to DEBUG when imported, which printed a line per index
        # build on every CLI call; its messages are warnings or nothing for us.
        logging.getLogger("bm25s").setLevel(logging.WARNING)

        bm25: Any = bm25s.BM25()
        corpus = [tokens(c.text) or ["\x00"] for c in index.chunks]
        bm25.index(corpus, show_progress=False)
        matrix = bm25.scores  # CSC-style: term t's chunks and weights in one slice
        self._start = np.asarray(matrix["indptr"], dtype=np.int64)
        self._chunks = np.asarray(matrix["indices"], dtype=np.int64)
        self._weights = np.asarray(matrix["data"], dtype=np.float64)
        terms = len(self._start) - 1
        self._terms = {t: i for t, i in bm25.vocab_dict.items() if i < terms}
        self.size = len(index.chunks)

    def search(self, question: str, k: int) -> list[tuple[int, float]]:
        """``(chunk row, BM25 score)`` of the best ``k`` chunks with a positive score,
        best first (ties by row)."""
        wanted = [self._terms[t] for t in tokens(question) if t in self._terms]
        if not wanted or self.size == 0:
            return []
        spans = [slice(self._start[i], self._start[i + 1]) for i in wanted]
        scores = np.bincount(
            np.concatenate([self._chunks[s] for s in spans]),
            np.concatenate([self._weights[s] for s in spans]),
            minlength=self.size,
        )
        rows = np.flatnonzero(scores > 0)
        best = rows[np.lexsort((rows, -scores[rows]))[:k]]
        return list(zip(best.tolist(), scores[best].tolist(), strict=True))


def hybrid_search(
    index: StoredIndex,
    lexical: LexicalIndex,
    ranges: SentenceRows,
    query_vector: Vectors,
    question: str,
    k: int,
) -> list[Hit]:
    """Dense and BM25 rankings fused by reciprocal rank; each hit's score is its closest
    sentence's similarity.

    The chunks either search proposes are ranked densely by `closest_sentences`; the
    fused order decides which chunks are candidates and in what order. The score stays
    a cosine similarity, so thresholds keep their meaning.
    """
    n = depth(k)
    proposed = _dense(index, query_vector, n)
    words = lexical.search(question, n)
    pool = list(dict.fromkeys(proposed + [row for row, _ in words]))
    dense = _by_sentence(index, ranges, query_vector, pool)
    score = dict(dense)
    best = fuse((dense[:n], words), k)
    return [Hit(index.chunks[row], score[row], rank) for rank, row in enumerate(best)]
