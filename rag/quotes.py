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

from rag.config import Settings
from rag.embed import Vectors, normalise
from rag.features import answer_type, content_words, shape, terms, type_match
from rag.store import Span, StoredIndex
from rag.types import Answer, Citation, Hit

log = logging.getLogger(__name__)

NOT_ANSWERED = "The documents do not answer this question."
# Weights of the quote score (see benchmarks/quality.py): similarity of the best
# sentence and of the whole window, the chunk's score, the share of question
# words quoted (weighted by rarity), and whether the quote holds the kind of
# answer asked for; minus penalties for a leading pronoun and length (per 1,000
# chars). A bare heading is quoted only when nothing else is found.
W_BEST, W_MEAN, W_CHUNK, W_LEXICAL, W_TYPE = 0.30, 0.25, 0.30, 0.35, 0.05
P_HEADING, P_ANAPHOR, P_LENGTH = 1.0, 0.03, 0.04


@dataclass(frozen=True)
class _Window:
    source: str
    first: int  # index of first sentence in StoredIndex.sentences
    last: int  # inclusive
    score: float


class SentenceLookup:
    """Per-generation helpers: sentences overlapping a chunk, and term rarity (IDF)."""

    def __init__(self, sentences: tuple[Span, ...]) -> None:
        df: Counter[str] = Counter()
        for s in sentences:
            df.update(shape(s.text).terms)
        n = max(1, len(sentences))
        self.idf = {t: math.log(1 + n / c) for t, c in df.items()}
        self.unseen_idf = math.log(1 + n)
        self.ranges: dict[str, tuple[int, int]] = {}
        for i, s in enumerate(sentences):
            lo, _ = self.ranges.get(s.source, (i, i))
            self.ranges[s.source] = (lo, i + 1)
        self.starts = [s.start for s in sentences]
        self.ends = [s.end for s in sentences]

    def overlapping(self, source: str, start: int, end: int) -> range:
        """Indices of the sentences of ``source`` that overlap ``[start, end)``."""
        lo, hi = self.ranges.get(source, (0, 0))
        first = bisect.bisect_right(self.ends, start, lo, hi)
        last = bisect.bisect_left(self.starts, end, first, hi)
        return range(first, last)


def page_at(index: StoredIndex, source: str, offset: int) -> int | None:
    """The 1-based PDF page holding ``offset`` of ``source``; None for other formats."""
    pages = index.manifest.get("sources", {}).get(source, {}).get("pages")
    if not pages:
        return None
    i = max(0, bisect.bisect_right([p[1] for p in pages], offset) - 1)
    return int(pages[i][0])


def _sentence_scores(
    index: StoredIndex, lookup: SentenceLookup, hits: list[Hit], query: Vectors
) -> dict[int, tuple[float, float]]:
    """Candidate sentences: index -> (similarity to the question, best chunk score)."""
    best_chunk: dict[int, float] = {}
    for hit in hits:
        for i in lookup.overlapping(hit.chunk.source, hit.chunk.start, hit.chunk.end):
            best_chunk[i] = max(best_chunk.get(i, -1.0), hit.score)
    ids = sorted(best_chunk)
    sims: list[float] = (index.sentence_vectors[ids] @ query).tolist() if ids else []
    return {i: (float(sim), best_chunk[i]) for i, sim in zip(ids, sims, strict=True)}


def _joinable(index: StoredIndex, a: int, b: int, text: str) -> bool:
    """Whether sentences ``a`` and ``b = a + 1`` may share a quote: same source, page, paragraph."""
    sa, sb = index.sentences[a], index.sentences[b]
    if sa.source != sb.source or "\n\n" in text[sa.end : sb.start].replace("\r", ""):
        return False
    return page_at(index, sa.source, sa.start) == page_at(index, sb.source, sb.start)


def _windows(
    index: StoredIndex,
    lookup: SentenceLookup,
    candidates: dict[int, tuple[float, float]],
    query: Vectors,
    question: str,
    max_len: int,
    source_text: Callable[[str], str],
) -> list[_Window]:
    q_terms, kind = terms(question), answer_type(question)
    weight = {t: lookup.idf.get(t, lookup.unseen_idf) for t in q_terms}
    total = sum(weight.values()) or 1.0
    out: list[_Window] = []
    sentences = index.sentences
    texts = {src: source_text(src) for src in {sentences[i].source for i in candidates}}
    for first in candidates:
        text = texts[sentences[first].source]
        for last in range(first, first + max_len):
            if last not in candidates or (
                last > first and not _joinable(index, last - 1, last, text)
            ):
                break
            span = range(first, last + 1)
            shapes = [shape(sentences[j].text) for j in span]
            vec = normalise(index.sentence_vectors[first : last + 1].sum(axis=0))
            covered = frozenset().union(*(s.terms for s in shapes))
            score = (
                W_BEST * max(candidates[j][0] for j in span)
                + W_MEAN * float(vec @ query)
                + W_CHUNK * max(candidates[j][1] for j in span)
                + W_LEXICAL * sum(weight[t] for t in q_terms & covered) / total
                + W_TYPE * type_match(kind, shapes)
                - P_HEADING * all(s.heading for s in shapes)
                - P_ANAPHOR * shapes[0].anaphoric
                - P_LENGTH * (sentences[last].end - sentences[first].start) / 1000
            )
            out.append(_Window(sentences[first].source, first, last, score))
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
    candidates = _sentence_scores(index, lookup, hits, query)
    windows = _windows(
        index, lookup, candidates, query, question, settings.max_quote_sentences, source_text
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

    The best chunk must reach ``min_score``; below ``confident_score`` at least
    one content word of the question must also occur in the three most similar
    chunks (an off-topic question often lands near chunks that share none of its
    words; BM25's own matches always share one, so they do not count here).
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
