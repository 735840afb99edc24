"""Pick verbatim quotes that answer a question, or abstain.

Owns quote selection (windows of consecutive sentences inside the retrieved
chunks, scored by embedding similarity, lexical overlap and the chunk's own
score), the abstention rule and the answer text. Every quote is re-checked
against the current source text before it is cited.
"""

from __future__ import annotations

import bisect
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from rag.config import Settings
from rag.embed import Vectors, normalise
from rag.store import Span, StoredIndex
from rag.types import Answer, Citation, Hit

log = logging.getLogger(__name__)

NOT_ANSWERED = "The documents do not answer this question."
_WORD = re.compile(r"\w+", re.UNICODE)
_STOP = frozenset(
    (
        "a an the of to in on at for by with from and or but is are was were be been being do "
        "does did has have had what which who whom whose when where why how that this these "
        "those it its as about into than then there their they he she his her him them we you "
        "your i me my our not no can could would should will shall may might must s "
    ).split()
)
# Weights of the quote score; sum to 1 so the score stays on the cosine scale.
W_WINDOW, W_CHUNK, W_LEXICAL = 0.55, 0.30, 0.15


@dataclass(frozen=True)
class _Window:
    source: str
    first: int  # index of first sentence in StoredIndex.sentences
    last: int  # inclusive
    score: float


def content_words(text: str) -> set[str]:
    """Lowercased words of ``text`` without stop words."""
    return {w for w in (m.lower() for m in _WORD.findall(text)) if w not in _STOP}


class SentenceLookup:
    """Finds the sentences that overlap a chunk, per source, by binary search."""

    def __init__(self, sentences: tuple[Span, ...]) -> None:
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


def _windows(
    index: StoredIndex,
    lookup: SentenceLookup,
    hits: list[Hit],
    query: Vectors,
    query_words: set[str],
    max_len: int,
) -> list[_Window]:
    best_chunk: dict[int, float] = {}
    for hit in hits:
        for i in lookup.overlapping(hit.chunk.source, hit.chunk.start, hit.chunk.end):
            best_chunk[i] = max(best_chunk.get(i, -1.0), hit.score)
    out: list[_Window] = []
    sentences = index.sentences
    for first in sorted(best_chunk):
        for last in range(first, first + max_len):
            if last not in best_chunk or sentences[last].source != sentences[first].source:
                break
            if last > first and page_at(index, sentences[first].source, sentences[first].start) != (
                page_at(index, sentences[last].source, sentences[last].start)
            ):
                break  # a quote stays on one page
            vec = normalise(index.sentence_vectors[first : last + 1].sum(axis=0))
            words = set().union(*(content_words(sentences[j].text) for j in range(first, last + 1)))
            lexical = len(query_words & words) / len(query_words) if query_words else 0.0
            chunk_score = max(best_chunk[j] for j in range(first, last + 1))
            score = W_WINDOW * float(vec @ query) + W_CHUNK * chunk_score + W_LEXICAL * lexical
            out.append(_Window(sentences[first].source, first, last, score))
    return out


def select(
    index: StoredIndex,
    hits: list[Hit],
    query: Vectors,
    question: str,
    settings: Settings,
    lookup: SentenceLookup | None = None,
) -> list[_Window]:
    """Best non-overlapping sentence windows, best first (at most ``max_citations``)."""
    lookup = lookup or SentenceLookup(index.sentences)
    windows = _windows(
        index, lookup, hits, query, content_words(question), settings.max_quote_sentences
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
    one content word of the question must also occur in the top chunks (an
    off-topic question often lands near a chunk that shares none of its words).
    """
    if not hits or hits[0].score < settings.min_score:
        return False
    if hits[0].score >= settings.confident_score:
        return True
    words = content_words(question)
    if not words:
        return True
    return any(words & content_words(h.chunk.text) for h in hits[:3])


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
    for w in select(index, hits, query, question, settings, lookup):
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
