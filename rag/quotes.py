"""Pick verbatim quotes that answer a question, or abstain.

Owns quote selection (windows of consecutive sentences inside the retrieved
chunks, scored by embedding similarity, lexical overlap and the chunk's own
score), the abstention rule and the answer text. Every quote is re-checked
against the current source text before it is cited.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from rag.config import Settings
from rag.embed import Vectors
from rag.features import answer_type, content_words, shape, terms, type_match
from rag.store import Span, SpanLookup, StoredIndex
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


class SentenceLookup(SpanLookup):
    """Per-generation helpers: sentences overlapping a chunk (`SpanLookup`), and term
    rarity (IDF)."""

    def __init__(self, sentences: tuple[Span, ...]) -> None:
        super().__init__(sentences)
        df: Counter[str] = Counter()
        for s in sentences:
            df.update(shape(s.text).terms)
        n = max(1, len(sentences))
        self.idf = {t: math.log(1 + n / c) for t, c in df.items()}
        self.unseen_idf = math.log(1 + n)


def page_at(index: StoredIndex, source: str, offset: int) -> int | None:
    """The 1-based PDF page holding ``offset`` of ``source``; None for other formats."""
    pages = index.manifest.get("sources", {}).get(source, {}).get("pages")
    if not pages:
        return None
    i = max(0, bisect.bisect_right([p[1] for p in pages], offset) - 1)
    return int(pages[i][0])


@dataclass(frozen=True)
class _Candidates:
    """The sentences of the retrieved chunks, with what window scoring needs of them.

    ``sim[i]``: similarity of sentence ``i`` to the question; ``chunk[i]``: score of the
    best retrieved chunk holding it; ``row[i]``: its position in ``sorted(sim)``;
    ``near[d][p]``: inner product of the vectors at positions ``p`` and ``p + d`` (d = 0
    is the squared norm). A window is consecutive sentences, so these give its summed
    vector's norm without a numpy call per window.
    """

    sim: dict[int, float]
    chunk: dict[int, float]
    row: dict[int, int]
    near: list[list[float]]
    chunks: dict[int, list[Chunk]]  # the retrieved chunks overlapping sentence i


def _products(vecs: Vectors, query: Vectors, span: int) -> tuple[list[float], list[list[float]]]:
    """Similarities to ``query`` and ``near`` (see `_Candidates`), row by row.

    Element-wise products summed, not matrix products: OpenBLAS splits even small
    matrix products over its threads, and one waiting for a busy core cost 12-16 ms
    per answer on a 2-core machine (measured); this costs microseconds on any load.
    """
    sims = (vecs * query).sum(axis=1).tolist()
    near = [(vecs * vecs).sum(axis=1).tolist()]
    near += [(vecs[:-d] * vecs[d:]).sum(axis=1).tolist() for d in range(1, span)]
    return sims, near


def _candidates(
    index: StoredIndex, lookup: SentenceLookup, hits: list[Hit], query: Vectors, span: int
) -> _Candidates:
    best_chunk: dict[int, float] = {}
    chunks: dict[int, list[Chunk]] = {}
    for hit in hits:
        for i in lookup.overlapping(hit.chunk.source, hit.chunk.start, hit.chunk.end):
            best_chunk[i] = max(best_chunk.get(i, -1.0), hit.score)
            chunks.setdefault(i, []).append(hit.chunk)
    ids = sorted(best_chunk)
    if not ids:
        return _Candidates({}, {}, {}, [], {})
    vecs = np.asarray(index.sentence_vectors[ids], dtype=np.float32)  # one read, pgvector too
    sims, near = _products(vecs, query, span)
    return _Candidates(
        dict(zip(ids, sims, strict=True)),
        best_chunk,
        {i: r for r, i in enumerate(ids)},
        near,
        chunks,
    )


def _joins(
    index: StoredIndex, cands: _Candidates, source_text: Callable[[str], str]
) -> dict[int, bool]:
    """For each candidate ``a``: may sentence ``a + 1`` extend a window ending at ``a``?

    Only when it is a candidate too, of the same source and PDF page, and no paragraph
    break lies between them. The text between them is read from a retrieved chunk that
    spans it (chunk texts are verbatim and in memory), else from the source, so that only
    the cited sources need reading (for the final check).
    """
    sentences = index.sentences
    out: dict[int, bool] = {}
    for a in cands.sim:
        if a + 1 not in cands.sim:
            out[a] = False
            continue
        sa, sb = sentences[a], sentences[a + 1]
        if sa.source != sb.source:
            out[a] = False
            continue
        for c in cands.chunks.get(a, ()):
            if c.start <= sa.end and sb.start <= c.end:
                gap = c.text[sa.end - c.start : sb.start - c.start]
                break
        else:
            gap = source_text(sa.source)[sa.end : sb.start]
        same_page = page_at(index, sa.source, sa.start) == page_at(index, sb.source, sb.start)
        out[a] = same_page and "\n\n" not in gap.replace("\r", "")
    return out


def _windows(
    index: StoredIndex,
    lookup: SentenceLookup,
    cands: _Candidates,
    question: str,
    max_len: int,
    source_text: Callable[[str], str],
) -> list[_Window]:
    """Every window of up to ``max_len`` joinable candidate sentences, scored.

    A window's vector is the normalised sum of its sentences' vectors; its similarity
    to the question comes from ``cands`` (sum of similarities over the sum's norm).
    Whatever depends on one sentence only is computed once per sentence, not per window.
    """
    q_terms, kind = terms(question), answer_type(question)
    weight = {t: lookup.idf.get(t, lookup.unseen_idf) for t in q_terms}
    total = sum(weight.values()) or 1.0
    sentences = index.sentences
    shapes = {i: shape(sentences[i].text) for i in cands.sim}
    found = {i: q_terms & s.terms for i, s in shapes.items()}  # question terms it holds
    typed = {i: type_match(kind, [s]) for i, s in shapes.items()}
    joins = _joins(index, cands, source_text)
    near, rows, sims, chunk_scores = cands.near, cands.row, cands.sim, cands.chunk
    out: list[_Window] = []
    for first in sims:
        r0, start, source = rows[first], sentences[first].start, sentences[first].source
        dot = squared = lexical = 0.0
        best = chunk = -math.inf
        covered: set[str] = set()
        any_typed, headings = False, True
        opening = P_ANAPHOR * shapes[first].anaphoric
        last = first
        while True:  # extend the window one sentence at a time; plain floats, no numpy
            r = rows[last]
            cross = 0.0
            for a in range(r0, r):
                cross += near[r - a][a]
            squared += near[0][r] + 2.0 * cross
            sim, in_chunk = sims[last], chunk_scores[last]
            dot += sim
            best = sim if sim > best else best
            chunk = in_chunk if in_chunk > chunk else chunk
            new = found[last] - covered
            if new:
                covered |= new
                lexical += sum(weight[t] for t in new)
            any_typed = any_typed or typed[last]
            headings = headings and shapes[last].heading
            score = (
                W_BEST * best
                + W_MEAN * dot / (math.sqrt(squared) if squared > 1e-24 else 1e-12)
                + W_CHUNK * chunk
                + W_LEXICAL * lexical / total
                + W_TYPE * any_typed
                - P_HEADING * headings
                - opening
                - P_LENGTH * (sentences[last].end - start) / 1000
            )
            out.append(_Window(source, first, last, score))
            if last - first + 1 >= max_len or not joins[last]:
                break
            last += 1
    return out


def select(
    index: StoredIndex,
    hits: list[Hit],
    query: Vectors,
    question: str,
    settings: Settings,
    source_text: Callable[[str], str],
    lookup: SentenceLookup | None = None,
) -> list[_Window]:
    """Best non-overlapping sentence windows, best first (at most ``max_citations``)."""
    lookup = lookup or SentenceLookup(index.sentences)
    candidates = _candidates(index, lookup, hits, query, settings.max_quote_sentences)
    windows = _windows(
        index, lookup, candidates, question, settings.max_quote_sentences, source_text
    )
    windows.sort(key=lambda w: (-w.score, w.last - w.first, w.source, w.first))
    chosen: list[_Window] = []
    for w in windows:
        if len(chosen) == settings.max_citations:
            break
        if any(c.source == w.source and c.first <= w.last and w.first <= c.last for c in chosen):
            continue
        chosen.append(w)
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

    A hit's score is its closest sentence's similarity (`rag.retrieve`), not the
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
        start, end = index.sentences[w.first].start, index.sentences[w.last].end
        text = source_text(w.source)
        quote = text[start:end]
        spans = index.sentences[w.first : w.last + 1]
        if any(text[s.start : s.end] != s.text for s in spans):
            log.warning("dropping a quote from %s: the file changed since indexing", w.source)
            continue
        citations.append(
            Citation(w.source, start, end, quote, w.score, page_at(index, w.source, start))
        )
    return compose(question, citations)


__all__ = [
    "NOT_ANSWERED",
    "SentenceLookup",
    "answer_from",
    "compose",
    "content_words",
    "relevant",
    "select",
]
