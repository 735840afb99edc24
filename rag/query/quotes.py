"""Pick verbatim quotes that answer a question, or abstain.

Owns quote selection (windows of consecutive sentences inside the retrieved
chunks, scored by embedding similarity, lexical overlap and the chunk's own
score), the abstention rule and the answer text. Every quote is re-checked
against the current source text before it is cited.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from rag.config import Settings
from rag.index.vectors import inner_products
from rag.query.sentences import JOIN_READ, JOIN_YES, SentenceFeatures, window_norm, window_rows
from rag.text.display import isolated
from rag.text.features import answer_type, content_words, terms
from rag.text.pages import page_of
from rag.types import Answer, Citation, Hit, StoredIndex, Vectors

log = logging.getLogger(__name__)

NOT_ANSWERED = "The documents do not answer this question."


@dataclass(frozen=True)
class QuoteWeights:
    """The weights of a quote window's score (compared in benchmarks/ablation.py).

    Gains: ``best`` and ``mean``, the similarity to the question of the window's best
    sentence and of the whole window; ``chunk``, the score of the best retrieved chunk
    holding it; ``lexical``, the share of the question's words it quotes (weighted by
    rarity); ``answer_type``, whether it holds the kind of answer asked for (a number, a
    name). Penalties: ``heading`` when it is headings only (a bare heading is quoted only
    when nothing else is found), ``anaphor`` when it opens with a pronoun, ``per_1000``
    per 1,000 characters.
    """

    best: float = 0.30
    mean: float = 0.25
    chunk: float = 0.30
    lexical: float = 0.35
    answer_type: float = 0.05
    heading: float = 1.0
    anaphor: float = 0.03
    per_1000: float = 0.04


DEFAULT_WEIGHTS = QuoteWeights()


class _Window(NamedTuple):  # immutable and, unlike a frozen dataclass, cheap to make
    source: str
    first: int  # index of first sentence in StoredIndex.sentences
    last: int  # inclusive
    score: float


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
    index: StoredIndex, lookup: SentenceFeatures, hits: list[Hit], query: Vectors, span: int
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
    lookup: SentenceFeatures,
    cands: _Candidates,
    source_text: Callable[[str], str],
) -> np.ndarray:
    """At each candidate position ``p``: may the next candidate extend a window ending at
    ``p``? Only when it is the next sentence and `SentenceFeatures.joinable` allows it; where
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
    lookup: SentenceFeatures,
    cands: _Candidates,
    question: str,
    max_len: int,
    source_text: Callable[[str], str],
    answers: tuple[dict[int, float], float] | None = None,
    weights: QuoteWeights = DEFAULT_WEIGHTS,
) -> _Scored:
    """Every window of up to ``max_len`` joinable candidate sentences, scored.

    A window's vector is the normalised sum of its sentences' vectors; its similarity
    to the question comes from ``cands`` (sum of similarities over the sum's norm). Each
    feature is a (window length, first position) array accumulated along the length
    from per-sentence arrays, and the score their weighted sum: a fixed number of numpy
    calls per answer instead of a Python loop per window.
    """
    ids = cands.ids
    n = len(ids)
    if n == 0:
        none = np.zeros(0, dtype=np.int64)
        return _Scored(none, none, np.zeros(0, dtype=np.float64))
    length = min(max_len, n)
    at = window_rows(n, length)  # positions among the candidates
    joins = _joins(index, lookup, cands, source_text)
    valid = np.ones((length, n), dtype=bool)
    valid[1:] = np.logical_and.accumulate(joins[at[:-1]], axis=0)  # joins[n - 1] is False
    # Question terms the window holds, weighted by rarity.
    wanted = sorted(terms(question))
    rarity = [lookup.idf(t) for t in wanted]
    weight = np.array(
        [weights.lexical * r / (sum(rarity) or 1.0) for r in rarity], dtype=np.float64
    )
    covered = np.logical_or.accumulate(lookup.holds(wanted, ids)[:, at], axis=1)
    typed = {"number": lookup.has_number, "name": lookup.has_name}.get(answer_type(question) or "")
    sim = cands.sim[at]
    score = (
        weights.best * np.maximum.accumulate(sim, axis=0)
        + weights.mean * np.cumsum(sim, axis=0) / cands.norm[:length]
        + weights.chunk * np.maximum.accumulate(cands.chunk[at], axis=0)
        + np.einsum("t,tlp->lp", weight, covered)
        - lookup.penalty(weights.heading, weights.anaphor, weights.per_1000)[:length, ids]
    )
    if typed is not None:
        score += weights.answer_type * np.logical_or.accumulate(typed[ids[at]], axis=0)
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
    lookup: SentenceFeatures | None = None,
    answers: tuple[dict[int, float], float] | None = None,
    weights: QuoteWeights = DEFAULT_WEIGHTS,
    bridge: float | None = None,
) -> list[_Window]:
    """Best non-overlapping sentence windows, best first (at most ``max_citations``).

    ``answers`` is ``(probability per sentence row, weight)`` from the answer model
    (`rag.query.reading`): the window's most probable sentence adds weight x probability.
    With ``answers`` and a ``bridge`` ratio, a window may join a chosen quote instead of
    being added (`_bridged`). Equal scores go to the shorter window, then by source name
    and position.
    """
    if lookup is None or lookup.span < settings.max_quote_sentences:
        lookup = SentenceFeatures(index, settings.max_quote_sentences)
    cands = _candidates(index, lookup, hits, query, settings.max_quote_sentences)
    scored = _windows(
        index, lookup, cands, question, settings.max_quote_sentences, source_text, answers, weights
    )
    first, last = cands.ids[scored.first], cands.ids[scored.last]
    order = np.lexsort((first, lookup.source_rank[first], last - first, -scored.score))
    probs = answers[0] if answers is not None and bridge is not None else None
    quotable = set(zip(first.tolist(), last.tolist(), strict=True)) if probs is not None else set()
    chosen: list[_Window] = []
    for o in order.tolist():
        if len(chosen) == settings.max_citations:
            break
        # A source's rows are contiguous, so windows sharing a row share the source.
        a, b = int(first[o]), int(last[o])
        if any(c.first <= b and a <= c.last for c in chosen):
            continue
        if probs is not None and bridge is not None:
            at = _bridged(chosen, a, b, quotable, probs, bridge)
            if at is not None:
                c = chosen[at]
                chosen[at] = c._replace(first=min(c.first, a), last=max(c.last, b))
                continue
        chosen.append(_Window(index.sentences[a].source, a, b, float(scored.score[o])))
    return chosen


def _bridged(
    chosen: list[_Window],
    a: int,
    b: int,
    quotable: set[tuple[int, int]],
    probs: dict[int, float],
    ratio: float,
) -> int | None:
    """The position in ``chosen`` of the quote that window ``a``..``b`` should join, or None.

    A window one sentence away from a chosen quote joins it, with the sentence between,
    when that sentence is in no chosen quote, the union is itself a quotable window (no
    paragraph break, short enough) and the model finds the window at least ``ratio`` as
    likely to hold the answer as the quote:
    two parts of one answer (two reasons, a cause and its effect) often sit either side of
    a sentence that links them, which alone the model may not recognise as answering.
    """
    best = max(probs.get(r, 0.0) for r in range(a, b + 1))
    for i, c in enumerate(chosen):
        if c.last + 2 == a:
            union = (c.first, b)
        elif b + 2 == c.first:
            union = (a, c.last)
        else:
            continue
        held = max(probs.get(r, 0.0) for r in range(c.first, c.last + 1))
        gap = c.last + 1 if c.last < a else b + 1
        free = not any(o.first <= gap <= o.last for o in chosen)  # not already quoted
        if union in quotable and free and best >= ratio * held:
            return i
    return None


def compose(question: str, quotes: list[Citation]) -> Answer:
    """The answer text: each quote in quotation marks with its [n] marker (a quote that
    could reorder its neighbours in a bidi-aware display is isolated, `isolated`)."""
    if not quotes:
        return Answer(question, NOT_ANSWERED, ())
    lines = [f"\u201c{isolated(c.quote)}\u201d [{n}]" for n, c in enumerate(quotes, 1)]
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
    lookup: SentenceFeatures | None = None,
    weights: QuoteWeights = DEFAULT_WEIGHTS,
) -> Answer:
    """Answer ``question`` from retrieved ``hits``; abstain when none is relevant enough.

    Every citation satisfies ``source_text(c.source)[c.start:c.end] == c.quote``:
    a window whose text no longer matches the source (the file changed since
    indexing) is dropped, never repaired.
    """
    if not relevant(question, hits, settings):
        return compose(question, [])
    citations: list[Citation] = []
    for w in select(index, hits, query, question, settings, source_text, lookup, None, weights):
        if w.score < settings.min_score:
            continue  # scored under the abstention threshold: not an answer on its own
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
    "SentenceFeatures",
    "answer_from",
    "cite",
    "compose",
    "content_words",
    "relevant",
    "select",
]
