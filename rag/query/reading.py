"""Pick quotes with the answer model's help, or abstain on its word.

Owns the answer path when `Settings.reader` is on. The retrieved chunks are read by the
model (`rag.reader.model`) together with the question: each sentence gets the probability that
it holds the answer (the best over the chunks holding it), each chunk the probability that
it answers at all. That chunk probability weighs the model's reading with retrieval's
evidence (`believe`, `Settings.reader_evidence`): a chunk the model likes that holds few of
the question's words and no sentence close to it is less likely to answer. The answer
abstains when no chunk reaches `Settings.reader_min_answer`.
Otherwise windows of one to three sentences are scored as with ``reader="off"``
(`rag.query.quotes.select`: similarity, question words, answer type, length), plus
`Settings.reader_weight` times the model's probability for the window's best sentence,
and each chunk counts by its probability of answering instead of its similarity. A quote
must come from a chunk that reaches `Settings.reader_min_answer`, and its score is that
chunk's probability: no citation scores below the threshold the answer abstains on. A
quote after the first must also score at least `Settings.reader_quote_ratio` of the first
one's: an answer is not padded with quotes from chunks the model finds far less likely to
answer than the one it quotes first. When the next window lies one sentence away from a
quote and the model finds it at least `Settings.reader_bridge` as likely to hold the answer,
the quote grows over both (`rag.query.quotes.select`): two parts of one answer, quoted with
the sentence that links them. When the best chunk's probability is under
`Settings.reader_widen`, the answer looks further: the chunks a retrieval of twice
`Settings.top_k` adds are read too, and their quotes compete for the places after the
first quote (`widened`); the decision to answer and the first quote stay the first read's.

For the ablation, `Settings.reader` also selects one half alone: "rerank" (the model
orders the chunks and decides abstention; similarity picks the quotes inside the best
two) and "windows" (the model's sentence probabilities join the window score; chunks keep
their similarity).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rag.config import MODEL_ALONE, Settings
from rag.query.quotes import DEFAULT_WEIGHTS, QuoteWeights, cite, compose, select
from rag.query.sentences import SentenceFeatures
from rag.reader.model import AnswerReader
from rag.text.features import terms
from rag.types import Answer, Citation, Hit, StoredIndex, Vectors

# How many of the chunks the model ranks first "rerank" quotes from.
FOCUS_CHUNKS = 2


@dataclass(frozen=True)
class Readings:
    """The model's probabilities for the retrieved chunks of one question.

    Attributes:
        sentence: sentence row -> probability that it holds the answer.
        chunk: per hit (in the order given), the probability that the chunk answers
            (`believe`: the model's reading weighed with retrieval's evidence).
        passage: sentence row -> the probability that the best chunk holding it answers.
        model: per hit, the model's own probability that the chunk answers.
        evidence: per hit, the `evidence` row its ``chunk`` probability was believed from.
    """

    sentence: dict[int, float]
    chunk: tuple[float, ...]
    passage: dict[int, float]
    model: tuple[float, ...]
    evidence: np.ndarray

    @property
    def confidence(self) -> float:
        """Probability that the retrieved chunks answer at all (the best chunk's)."""
        return max(self.chunk, default=0.0)

    def joined(self, other: Readings) -> Readings:
        """The readings of this read's hits followed by ``other``'s (a later read of more
        hits): a sentence read in both keeps its best probabilities."""
        sentence, passage = dict(self.sentence), dict(self.passage)
        _keep_best(sentence, other.sentence)
        _keep_best(passage, other.passage)
        return Readings(
            sentence,
            self.chunk + other.chunk,
            passage,
            self.model + other.model,
            np.vstack([self.evidence, other.evidence]),
        )


def _keep_best(into: dict[int, float], probs: dict[int, float]) -> None:
    """Raise ``into[row]`` to ``probs[row]`` where that is higher (or new)."""
    for row, p in probs.items():
        if p > into.get(row, -1.0):
            into[row] = p


def coverage(lookup: SentenceFeatures, question: str, hits: Sequence[Hit]) -> np.ndarray:
    """Per hit, the share of the question's words its chunk holds, each word weighted by
    its rarity (`SentenceFeatures.idf`); 1 for a question without content words."""
    wanted = sorted(terms(question))
    if not wanted:
        return np.ones(len(hits))
    rarity = np.array([lookup.idf(t) for t in wanted], dtype=np.float64)
    out = np.zeros(len(hits))
    for i, h in enumerate(hits):
        rows = np.asarray(lookup.rows_of(h.chunk), dtype=np.int64)
        if len(rows):
            out[i] = rarity @ lookup.holds(wanted, rows).any(axis=1) / rarity.sum()
    return out


def evidence(
    lookup: SentenceFeatures, question: str, hits: Sequence[Hit], model: Sequence[float]
) -> np.ndarray:
    """Per hit, the features `believe` weighs: ``(1, logit(p), s, c)`` (see
    `Settings.reader_evidence`), with ``p`` the model's probability from ``model``."""
    p = np.clip(np.asarray(model, dtype=np.float64), 1e-6, 1 - 1e-6)
    similarity = np.array([h.score for h in hits], dtype=np.float64)
    return np.column_stack(
        [np.ones(len(hits)), np.log(p / (1 - p)), similarity, coverage(lookup, question, hits)]
    )


def believe(features: np.ndarray, weights: Sequence[float] | np.ndarray) -> np.ndarray:
    """The probability that each chunk answers, from its `evidence` row:
    ``sigmoid(features @ weights)``; `MODEL_ALONE` gives the model's own."""
    z = np.clip(features @ np.asarray(weights, dtype=np.float64), -60, 60)
    out: np.ndarray = 1.0 / (1.0 + np.exp(-z))
    return out


def read(
    reader: AnswerReader,
    index: StoredIndex,
    lookup: SentenceFeatures,
    question: str,
    hits: Sequence[Hit],
    weights: Sequence[float] = MODEL_ALONE,
) -> Readings:
    """Read each hit's chunk with the question; sentences cut by a chunk's edge are read
    in the part the chunk holds. ``weights``: `Settings.reader_evidence`."""
    passages = []
    rows_of = []
    for h in hits:
        c = h.chunk
        rows = lookup.rows_of(c)
        spans = [
            (max(s.start, c.start) - c.start, min(s.end, c.end) - c.start)
            for s in (index.sentences[r] for r in rows)
        ]
        passages.append((c.text, spans))
        rows_of.append(rows)
    readings = reader.read(question, passages)
    model = tuple(r.answers for r in readings)
    features = evidence(lookup, question, hits, model)
    chunk = believe(features, weights).tolist()
    sentence: dict[int, float] = {}
    passage: dict[int, float] = {}
    for rows, r, answers in zip(rows_of, readings, chunk, strict=True):
        _keep_best(sentence, dict(zip(rows, r.sentences.tolist(), strict=True)))
        _keep_best(passage, dict.fromkeys(rows, answers))
    return Readings(sentence, tuple(chunk), passage, model, features)


def best_of(probs: dict[int, float], first: int, last: int) -> float:
    """The highest probability among sentence rows ``first`` to ``last`` (0 for none)."""
    return max((probs.get(r, 0.0) for r in range(first, last + 1)), default=0.0)


def answer_with_reader(
    index: StoredIndex,
    question: str,
    query: Vectors,
    hits: list[Hit],
    settings: Settings,
    source_text: Callable[[str], str],
    lookup: SentenceFeatures,
    reader: AnswerReader,
    weights: QuoteWeights = DEFAULT_WEIGHTS,
    more: Callable[[int], Sequence[Hit]] | None = None,
) -> Answer:
    """Answer ``question`` from ``hits`` as `Settings.reader` says; see the module doc.

    ``more(k)`` retrieves the ``k`` best chunks, for the wider read of an unsure answer
    (`Settings.reader_widen`); without it the answer reads ``hits`` only.
    Every citation is `rag.query.quotes.cite`'s: sliced from ``source_text`` and checked, or
    dropped when its file changed since indexing. Its score is the model's probability
    that the best retrieved chunk holding the window answers.
    """
    reading = read(reader, index, lookup, question, hits, settings.reader_evidence)
    if reading.confidence < settings.reader_min_answer:
        return compose(question, [])
    quote = Quoting(index, question, query, settings, source_text, lookup, weights)
    citations = quote(hits, reading)
    widen = settings.reader_widen
    if more is None or widen is None or reading.confidence >= widen or not citations:
        return compose(question, citations)
    known = {h.chunk.id for h in hits}
    extra = [h for h in more(2 * settings.top_k) if h.chunk.id not in known]
    if not extra:
        return compose(question, citations)
    further = read(reader, index, lookup, question, extra, settings.reader_evidence)
    wider = quote([*hits, *extra], reading.joined(further))
    return compose(question, widened(citations[0], wider, settings))


@dataclass(frozen=True)
class Quoting:
    """Quotes for one question from the chunks the model has read (`__call__`)."""

    index: StoredIndex
    question: str
    query: Vectors
    settings: Settings
    source_text: Callable[[str], str]
    lookup: SentenceFeatures
    weights: QuoteWeights

    def __call__(self, hits: Sequence[Hit], reading: Readings) -> list[Citation]:
        """The quotes from ``hits`` (read as ``reading``), best first, as
        `Settings.reader` says: only from chunks that reach `Settings.reader_min_answer`,
        without the padding `drop_padding` leaves out."""
        settings = self.settings
        threshold = settings.reader_min_answer
        answers: tuple[dict[int, float], float] | None = (
            reading.sentence,
            settings.reader_weight,
        )
        # Quotes come only from chunks the model finds answering: the best windows of those.
        kept = [(h, p) for h, p in zip(hits, reading.chunk, strict=True) if p >= threshold]
        if settings.reader == "rerank":  # the model orders the chunks; similarity quotes
            order = sorted(range(len(kept)), key=lambda i: (-kept[i][1], i))
            chosen_hits = [kept[i][0] for i in order[:FOCUS_CHUNKS]]
            answers = None
        elif settings.reader == "full":  # a chunk counts by the model's belief that it answers
            chosen_hits = [Hit(h.chunk, p, h.rank) for h, p in kept]
        else:  # "windows": chunks keep their similarity
            chosen_hits = [h for h, _ in kept]
        windows = select(
            self.index,
            chosen_hits,
            self.query,
            self.question,
            settings,
            self.source_text,
            self.lookup,
            answers,
            self.weights,
            bridge=settings.reader_bridge,
        )
        citations: list[Citation] = []
        for w in windows:
            believed = best_of(reading.passage, w.first, w.last)  # >= threshold: kept chunk
            c = cite(self.index, self.source_text, w.source, w.first, w.last, believed)
            if c is not None:
                citations.append(c)
        return drop_padding(citations, settings.reader_quote_ratio)


def widened(first: Citation, wider: Sequence[Citation], settings: Settings) -> list[Citation]:
    """``first`` (the first read's first quote), then ``wider``'s quotes (from the first
    and the wider read together) in their order, leaving out those `drop_padding` would
    after ``first`` and those that overlap a quote already kept, up to
    `Settings.max_citations`."""
    out = [first]
    for c in drop_padding([first, *wider], settings.reader_quote_ratio)[1:]:
        if len(out) == settings.max_citations:
            break
        if not any(c.source == o.source and c.start < o.end and o.start < c.end for o in out):
            out.append(c)
    return out


def drop_padding(citations: Sequence[Citation], ratio: float) -> list[Citation]:
    """``citations`` without the later ones whose score (their chunk's probability of
    answering) is under ``ratio`` times the first's: quotes from chunks the model finds far
    less likely to answer than the one it quotes first only pad the answer."""
    return [c for c in citations if c.score >= ratio * citations[0].score]
