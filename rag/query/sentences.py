"""What quote scoring needs of each sentence of a generation, computed once per generation.

Owns `SentenceFeatures` (shape, terms, rarity, whether neighbours may join one quote, the
norms of window vectors, length penalties) as arrays indexed by sentence row, so that
scoring a question's candidate windows reads arrays instead of calling Python per
sentence or window.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from rag.index.sentences import SentenceRows
from rag.index.vectors import in_memory, pair_products
from rag.text.features import shape
from rag.types import RowVectors, StoredIndex, Vectors

# `SentenceFeatures.joinable`: may a window ending at a sentence take the next one in?
JOIN_NO, JOIN_YES, JOIN_READ = 0, 1, -1  # READ: only the text between them can tell


class SentenceFeatures(SentenceRows):
    """Per-generation helpers for quoting from ``index``, computed once per generation.

    Besides the sentences overlapping a character range and those each chunk overlaps
    (`SentenceRows`), what quote scoring needs of each sentence, as arrays
    indexed by sentence row: its shape (``has_number``, ``has_name``, ``heading``,
    ``anaphoric``; see `rag.text.features.SentenceShape`), the rank of its source's name
    (``source_rank``), whether the next sentence may join it in a quote (``joinable``),
    which sentences hold which term (`holds`) and how rare a term is (`idf`); and per
    window of up to ``span`` consecutive rows, its summed vector's norm
    (``window_norm``) and what it loses whatever the question (`penalty`). Scoring a
    question's candidates then reads arrays instead of calling Python per sentence or
    per window.
    """

    def __init__(self, index: StoredIndex, span: int = 3) -> None:
        sentences = index.sentences
        super().__init__(sentences, index.chunks)
        self.span = span
        n = len(sentences)
        term_ids: defaultdict[str, int] = defaultdict(itertools.count().__next__)
        held: list[int] = []  # term ids, sentence after sentence
        sizes = np.zeros(n, dtype=np.int64)
        self.has_number = np.zeros(n, dtype=bool)
        self.has_name = np.zeros(n, dtype=bool)
        self.heading = np.zeros(n, dtype=bool)
        self.anaphoric = np.zeros(n, dtype=bool)
        for i, s in enumerate(sentences):
            sh = shape(s.text)
            held.extend(map(term_ids.__getitem__, sh.terms))
            sizes[i] = len(sh.terms)
            self.has_number[i], self.has_name[i] = sh.has_number, sh.has_name
            self.heading[i], self.anaphoric[i] = sh.heading, sh.anaphoric
        self._term_ids = dict(term_ids)
        term_of = np.asarray(held, dtype=np.int64)
        counts = np.bincount(term_of, minlength=len(term_ids))
        # Which sentence holds which term, as sorted keys ``term id * n + row``: whether
        # rows hold terms is then one binary search for any number of both.
        self._keys = np.sort(term_of * max(1, n) + np.repeat(np.arange(n, dtype=np.int64), sizes))
        self.unseen_idf = math.log(1 + max(1, n))
        self._idf = np.log1p(max(1, n) / np.maximum(counts, 1))
        self.source_names = sorted(self.ranges)
        self.source_rank = np.zeros(n, dtype=np.int64)
        for rank, name in enumerate(self.source_names):
            lo, hi = self.ranges[name]
            self.source_rank[lo:hi] = rank
        self.starts_array = np.asarray(self.starts, dtype=np.int64)
        self.ends_array = np.asarray(self.ends, dtype=np.int64)
        self.joinable = self._joinable(index)
        self.unread = int(np.count_nonzero(self.joinable == JOIN_READ))
        # The window of rows r to r + j, by j < span and r (rows past the last clipped:
        # such windows are never valid): its summed vector's norm (None unless the
        # vectors are in memory; then `_candidates` computes it per question), and what
        # it loses whatever the question (`penalty`).
        self.window_norm = (
            window_norm(index.sentence_vectors, np.arange(n), span)
            if in_memory(index.sentence_vectors)
            else None
        )
        self._penalties: dict[tuple[float, ...], np.ndarray] = {}

    def penalty(self, heading: float, anaphor: float, per_1000: float) -> np.ndarray:
        """``out[j, r]``: what the window of rows r to r + j loses whatever the question:
        ``heading`` if all its sentences are headings, ``anaphor`` if it opens with a
        pronoun, ``per_1000`` per 1,000 characters. Made once per set of weights."""
        key = (heading, anaphor, per_1000)
        if key not in self._penalties:
            last = window_rows(len(self.starts), self.span)
            chars = self.ends_array[last] - self.starts_array
            all_headings = np.logical_and.accumulate(self.heading[last], axis=0)
            self._penalties[key] = (
                heading * all_headings + anaphor * self.anaphoric + per_1000 / 1000 * chars
            )
        return self._penalties[key]

    def _joinable(self, index: StoredIndex) -> np.ndarray:
        """Per sentence ``a``: may a quote ending at ``a`` take in ``a + 1``?

        Only sentences of one source and PDF page, with no paragraph break between them.
        A gap of at most one character holds no break; a wider one is read from a chunk
        spanning both sentences (chunk texts are verbatim). Where none spans them the
        answer is `JOIN_READ`: read the source when a quote needs it.
        """
        n = len(self.starts)
        out = np.full(n, JOIN_NO, dtype=np.int8)
        if n < 2:
            return out
        starts, ends = self.starts_array, self.ends_array
        same = self.source_rank[1:] == self.source_rank[:-1]
        for name, record in index.manifest.sources.items():
            if record.pages and name in self.ranges:
                lo, hi = self.ranges[name]
                offsets = [p[1] for p in record.pages]
                page = np.searchsorted(offsets, starts[lo:hi], side="right")
                same[lo : hi - 1] &= page[1:] == page[:-1]
        out[:-1][same] = np.where((starts[1:] - ends[:-1])[same] <= 1, JOIN_YES, JOIN_READ)
        reads = np.flatnonzero(out == JOIN_READ)
        chunks = index.chunks
        if not len(reads) or not chunks:
            return out
        # The chunk spanning pair (a, a + 1): among chunks whose first sentence is at most
        # a, the one reaching furthest; it spans the pair when it reaches past a + 1.
        first, stop = self.first, self.stop
        order = np.argsort(first, kind="stable")
        reach = np.maximum.accumulate(stop[order] * len(chunks) + np.arange(len(chunks)))
        at = np.searchsorted(first[order], reads, side="right") - 1
        for a, i in zip(reads.tolist(), at.tolist(), strict=True):
            if i < 0 or reach[i] // len(chunks) < a + 2:
                continue
            c = chunks[int(order[reach[i] % len(chunks)])]
            gap = c.text[ends[a] - c.start : starts[a + 1] - c.start]
            out[a] = JOIN_NO if "\n\n" in gap.replace("\r", "") else JOIN_YES
        return out

    def idf(self, term: str) -> float:
        """The rarity of ``term``: log(1 + sentences / sentences holding it)."""
        t = self._term_ids.get(term)
        return self.unseen_idf if t is None else float(self._idf[t])

    def holds(self, terms: Sequence[str], rows: np.ndarray) -> np.ndarray:
        """``out[t, i]``: whether sentence ``rows[i]`` holds ``terms[t]`` (a stem, see
        `rag.text.features.terms`)."""
        n = max(1, len(self.starts))
        ids = np.array([self._term_ids.get(t, -1) for t in terms], dtype=np.int64)
        keys = ids[:, None] * n + rows  # negative for unknown terms: never found
        at = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
        return (self._keys[at] == keys) if len(self._keys) else np.zeros(keys.shape, bool)


def window_rows(n: int, length: int) -> np.ndarray:
    """``out[j, p]``: the (j+1)-th of the windows starting at each of ``n`` positions,
    ``p + j``, clipped to the last (cells past the end belong to no valid window)."""
    rows: np.ndarray = np.minimum(np.arange(n) + np.arange(length)[:, None], max(0, n - 1))
    return rows


def window_norm(vectors: Vectors | RowVectors, first: np.ndarray, span: int) -> np.ndarray:
    """``out[j, i]``: norm of the sum of the vectors of rows ``first[i]`` to
    ``first[i] + j`` (rows past the last are clipped), for j < ``span``; at least 1e-12.

    From inner products of row pairs: each row with itself once, distinct rows twice. In
    blocks, so that the pairs of a whole index never sit in memory at once.
    """
    count = vectors.shape[0]
    pairs = [(a, b) for b in range(span) for a in range(b + 1)]  # grouped by the later row
    a_off = np.array([a for a, _ in pairs], dtype=np.int64)[:, None]
    b_off = np.array([b for _, b in pairs], dtype=np.int64)[:, None]
    twice = np.where(a_off == b_off, 1.0, 2.0)
    groups = np.array([b * (b + 1) // 2 for b in range(span)])
    out = np.zeros((span, len(first)), dtype=np.float64)
    for lo in range(0, len(first), 1 << 16):
        rows = first[None, lo : lo + (1 << 16)]
        a = np.minimum(rows + a_off, count - 1).ravel()
        b = np.minimum(rows + b_off, count - 1).ravel()
        products = pair_products(vectors, a, b).reshape(len(pairs), -1) * twice
        out[:, lo : lo + rows.shape[1]] = np.cumsum(np.add.reduceat(products, groups), axis=0)
    return np.sqrt(np.maximum(out, 1e-24))
