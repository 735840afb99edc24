"""Pick verbatim quotes that answer a question, or abstain.

Owns quote selection (windows of consecutive sentences inside the retrieved
chunks, scored by embedding similarity, lexical overlap and the chunk's own
score), the abstention rule and the answer text. Every quote is re-checked
against the current source text before it is cited.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from rag.config import Settings
from rag.embedding.base import Vectors
from rag.index.stores.folder import SpanLookup, StoredIndex
from rag.index.stores.vectors import RowVectors, in_memory, inner_products, pair_products
from rag.query.retrieve import SentenceRanges
from rag.text.features import answer_type, content_words, shape, terms
from rag.text.pages import page_of
from rag.types import Answer, Chunk, Citation, Hit

log = logging.getLogger(__name__)

NOT_ANSWERED = "The documents do not answer this question."
# Weights of the quote score (see benchmarks/quality.py): similarity of the best
# sentence and of the whole window, the chunk's score, the share of question
# words quoted (weighted by rarity), and whether the quote holds the kind of
# answer asked for; minus penalties for a leading pronoun and length (per 1,000
# chars). A bare heading is quoted only when nothing else is found.
W_BEST, W_MEAN, W_CHUNK, W_LEXICAL, W_TYPE = 0.30, 0.25, 0.30, 0.35, 0.05
P_HEADING, P_ANAPHOR, P_LENGTH = 1.0, 0.03, 0.04


class _Window(NamedTuple):  # immutable and, unlike a frozen dataclass, cheap to make
    source: str
    first: int  # index of first sentence in StoredIndex.sentences
    last: int  # inclusive
    score: float


# `SentenceLookup.joinable`: may a window ending at a sentence take the next one in?
JOIN_NO, JOIN_YES, JOIN_READ = 0, 1, -1  # READ: only the text between them can tell


class SentenceLookup(SpanLookup):
    """Per-generation helpers for quoting from ``index``, computed once per generation.

    Besides the sentences overlapping a character range (`SpanLookup`) and those each
    chunk overlaps (``by_chunk``), what quote scoring needs of each sentence, as arrays
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
        super().__init__(sentences)
        self.span = span
        self.by_chunk = SentenceRanges(index.chunks, self)
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
            last = _window_rows(len(self.starts), self.span)
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
        for name, record in index.manifest.get("sources", {}).items():
            if record.get("pages") and name in self.ranges:
                lo, hi = self.ranges[name]
                offsets = [p[1] for p in record["pages"]]
                page = np.searchsorted(offsets, starts[lo:hi], side="right")
                same[lo : hi - 1] &= page[1:] == page[:-1]
        out[:-1][same] = np.where((starts[1:] - ends[:-1])[same] <= 1, JOIN_YES, JOIN_READ)
        reads = np.flatnonzero(out == JOIN_READ)
        chunks = index.chunks
        if not len(reads) or not chunks:
            return out
        # The chunk spanning pair (a, a + 1): among chunks whose first sentence is at most
        # a, the one reaching furthest; it spans the pair when it reaches past a + 1.
        first, stop = self.by_chunk.first, self.by_chunk.stop
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

    def rows_of(self, chunk: Chunk) -> range:
        """The rows of the sentences ``chunk`` overlaps (a stored chunk's are precomputed)."""
        c = chunk
        known = self.by_chunk.of.get((c.source, c.start, c.end))
        return known if known is not None else self.overlapping(c.source, c.start, c.end)

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


def _window_rows(n: int, length: int) -> np.ndarray:
    """``out[j, p]``: the (j+1)-th of the windows starting at each of ``n`` positions,
    ``p + j``, clipped to the last (cells past the end belong to no valid window)."""
    rows: np.ndarray = np.minimum(np.arange(n) + np.arange(length)[:, None], max(0, n - 1))
    return rows


def page_at(index: StoredIndex, source: str, offset: int) -> int | None:
    """The 1-based PDF page holding ``offset`` of ``source``; None for other formats."""
    return page_of(index, source, offset)[0]


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


@dataclass(frozen=True)
class _Candidates:
    """The sentences of the retrieved chunks, in row order, as arrays for window scoring.

    At position ``p``: ``ids[p]`` is the sentence's row in ``StoredIndex.sentences``,
    ``sim[p]`` its similarity to the question, ``chunk[p]`` the score of the best
    retrieved chunk holding it; ``norm[j, p]`` is the norm of the summed vectors of rows
    ``ids[p]`` to ``ids[p] + j`` (a window is consecutive rows), for the window's
    similarity to the question without summing vectors.
    """

    ids: np.ndarray
    sim: np.ndarray
    chunk: np.ndarray
    norm: np.ndarray


class _Scored(NamedTuple):
    """Every window of joinable candidates: the candidate positions of its first and
    last sentence, and its score."""

    first: np.ndarray
    last: np.ndarray
    score: np.ndarray


def _candidates(
    index: StoredIndex, lookup: SentenceLookup, hits: list[Hit], query: Vectors, span: int
) -> _Candidates:
    best: dict[int, float] = {}  # sentence row -> score of the best hit holding it
    for h in sorted(hits, key=lambda h: h.score):  # better hits overwrite
        best.update(dict.fromkeys(lookup.rows_of(h.chunk), h.score))
    ordered = sorted(best)
    ids = np.array(ordered, dtype=np.int64)
    vectors = index.sentence_vectors
    if lookup.window_norm is not None:
        norm = lookup.window_norm[:span, ids]
    else:  # the store reads rows (pgvector): only the candidates' windows
        norm = window_norm(vectors, ids, span)
    sims = inner_products(vectors, query, ids).astype(np.float64)
    chunk = np.array([best[i] for i in ordered], dtype=np.float64)
    return _Candidates(ids, sims, chunk, norm)


def _joins(
    index: StoredIndex,
    lookup: SentenceLookup,
    cands: _Candidates,
    source_text: Callable[[str], str],
) -> np.ndarray:
    """At each candidate position ``p``: may the next candidate extend a window ending at
    ``p``? Only when it is the next sentence and `SentenceLookup.joinable` allows it; where
    only the source's text can tell, it is read (the cited sources are read anyway).
    """
    ids = cands.ids
    out = np.zeros(len(ids), dtype=bool)
    if len(ids) < 2:
        return out
    follows = ids[1:] == ids[:-1] + 1
    state = lookup.joinable[ids[:-1]]
    out[:-1] = follows & (state == JOIN_YES)
    if not lookup.unread:
        return out
    for p in np.flatnonzero(follows & (state == JOIN_READ)).tolist():
        a, b = index.sentences[int(ids[p])], index.sentences[int(ids[p]) + 1]
        out[p] = "\n\n" not in source_text(a.source)[a.end : b.start].replace("\r", "")
    return out


def _windows(
    index: StoredIndex,
    lookup: SentenceLookup,
    cands: _Candidates,
    question: str,
    max_len: int,
    source_text: Callable[[str], str],
    answers: tuple[dict[int, float], float] | None = None,
) -> _Scored:
    """Every window of up to ``max_len`` joinable candidate sentences, scored.

    A window's vector is the normalised sum of its sentences' vectors; its similarity
    to the question comes from ``cands`` (sum of similarities over the sum's norm). Each
    feature is a (window length, first position) array accumulated along the length
    from per-sentence arrays, and the score their weighted sum: a fixed number of numpy
    calls per answer, each a few microseconds, where a Python loop per window took
    0.8 ms on pydocs after a model call.
    """
    ids = cands.ids
    n = len(ids)
    if n == 0:
        none = np.zeros(0, dtype=np.int64)
        return _Scored(none, none, np.zeros(0, dtype=np.float64))
    length = min(max_len, n)
    at = _window_rows(n, length)  # positions among the candidates
    joins = _joins(index, lookup, cands, source_text)
    valid = np.ones((length, n), dtype=bool)
    valid[1:] = np.logical_and.accumulate(joins[at[:-1]], axis=0)  # joins[n - 1] is False
    # Question terms the window holds, weighted by rarity.
    wanted = sorted(terms(question))
    rarity = [lookup.idf(t) for t in wanted]
    weight = np.array([W_LEXICAL * r / (sum(rarity) or 1.0) for r in rarity], dtype=np.float64)
    covered = np.logical_or.accumulate(lookup.holds(wanted, ids)[:, at], axis=1)
    typed = {"number": lookup.has_number, "name": lookup.has_name}.get(answer_type(question) or "")
    sim = cands.sim[at]
    score = (
        W_BEST * np.maximum.accumulate(sim, axis=0)
        + W_MEAN * np.cumsum(sim, axis=0) / cands.norm[:length]
        + W_CHUNK * np.maximum.accumulate(cands.chunk[at], axis=0)
        + np.einsum("t,tlp->lp", weight, covered)
        - lookup.penalty(P_HEADING, P_ANAPHOR, P_LENGTH)[:length, ids]
    )
    if typed is not None:
        score += W_TYPE * np.logical_or.accumulate(typed[ids[at]], axis=0)
    if answers is not None:  # the answer model's probability of the window's best sentence
        probs, share = answers
        model = np.fromiter((probs.get(i, 0.0) for i in ids.tolist()), np.float64, count=n)
        score += share * np.maximum.accumulate(model[at], axis=0)
    offset, first = np.nonzero(valid)
    return _Scored(first, first + offset, score[offset, first])


def select(
    index: StoredIndex,
    hits: list[Hit],
    query: Vectors,
    question: str,
    settings: Settings,
    source_text: Callable[[str], str],
    lookup: SentenceLookup | None = None,
    answers: tuple[dict[int, float], float] | None = None,
) -> list[_Window]:
    """Best non-overlapping sentence windows, best first (at most ``max_citations``).

    ``answers`` is ``(probability per sentence row, weight)`` from the answer model
    (`rag.query.reading`): the window's most probable sentence adds weight x probability.
    Equal scores go to the shorter window, then by source name and position.
    """
    if lookup is None or lookup.span < settings.max_quote_sentences:
        lookup = SentenceLookup(index, settings.max_quote_sentences)
    cands = _candidates(index, lookup, hits, query, settings.max_quote_sentences)
    scored = _windows(
        index, lookup, cands, question, settings.max_quote_sentences, source_text, answers
    )
    first, last = cands.ids[scored.first], cands.ids[scored.last]
    order = np.lexsort((first, lookup.source_rank[first], last - first, -scored.score))
    chosen: list[_Window] = []
    for o in order.tolist():
        if len(chosen) == settings.max_citations:
            break
        # A source's rows are contiguous, so windows sharing a row share the source.
        a, b = int(first[o]), int(last[o])
        if any(c.first <= b and a <= c.last for c in chosen):
            continue
        chosen.append(_Window(index.sentences[a].source, a, b, float(scored.score[o])))
    return chosen


def compose(question: str, quotes: list[Citation]) -> Answer:
    """The answer text: each quote in quotation marks with its [n] marker."""
    if not quotes:
        return Answer(question, NOT_ANSWERED, ())
    lines = [f"\u201c{c.quote}\u201d [{n}]" for n, c in enumerate(quotes, 1)]
    return Answer(question, "\n\n".join(lines), tuple(quotes))


def relevant(question: str, hits: list[Hit], settings: Settings) -> bool:
    """Whether the retrieved chunks are close enough to the question to quote from.

    The best hit must reach ``min_score``; below ``confident_score`` at least one
    content word of the question must also occur in the three most similar chunks (an
    off-topic question often lands near chunks that share none of its words; BM25's own
    matches always share one, so they do not count here).

    A hit's score is its closest sentence's similarity (`rag.query.retrieve`), not the
    chunk's own: a chunk's vector blurs its sentences together, so an off-topic
    question lands about as close to it as a real one does, while the sentence that
    answers a real question stands out (benchmarks/abstention.py).
    """
    best = max((h.score for h in hits), default=-1.0)
    if best < settings.min_score:
        return False
    if best >= settings.confident_score:
        return True
    words = content_words(question)
    if not words:
        return True
    closest = sorted(hits, key=lambda h: -h.score)[:3]  # by similarity: BM25 hits share words
    return any(words & content_words(h.chunk.text) for h in closest)


def answer_from(
    index: StoredIndex,
    question: str,
    query: Vectors,
    hits: list[Hit],
    settings: Settings,
    source_text: Callable[[str], str],
    lookup: SentenceLookup | None = None,
) -> Answer:
    """Answer ``question`` from retrieved ``hits``; abstain when none is relevant enough.

    Every citation satisfies ``source_text(c.source)[c.start:c.end] == c.quote``:
    a window whose text no longer matches the source (the file changed since
    indexing) is dropped, never repaired.
    """
    if not relevant(question, hits, settings):
        return compose(question, [])
    citations: list[Citation] = []
    for w in select(index, hits, query, question, settings, source_text, lookup):
        c = cite(index, source_text, w.source, w.first, w.last, w.score)
        if c is not None:
            citations.append(c)
    return compose(question, citations)


def cite(
    index: StoredIndex,
    source_text: Callable[[str], str],
    source: str,
    first: int,
    last: int,
    score: float,
) -> Citation | None:
    """The verbatim citation of sentence rows ``first`` to ``last`` (inclusive), sliced
    from the source's current text; None (with a warning) when a sentence no longer
    matches it: the file changed since indexing, and a quote is never repaired."""
    start, end = index.sentences[first].start, index.sentences[last].end
    text = source_text(source)
    if any(text[s.start : s.end] != s.text for s in index.sentences[first : last + 1]):
        log.warning("dropping a quote from %s: the file changed since indexing", source)
        return None
    return Citation(source, start, end, text[start:end], score, *page_of(index, source, start))


__all__ = [
    "NOT_ANSWERED",
    "SentenceLookup",
    "answer_from",
    "cite",
    "compose",
    "content_words",
    "relevant",
    "select",
]
