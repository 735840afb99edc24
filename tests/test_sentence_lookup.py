"""The per-generation arrays quote scoring reads (`rag.query.quotes.SentenceFeatures`) say what
the sentences and the source texts say."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.api import Index
from rag.config import Settings
from rag.embedding.fake import HashingEmbedder
from rag.query import quotes
from rag.query.sentences import JOIN_NO, JOIN_READ, JOIN_YES, SentenceFeatures, window_norm
from rag.text.features import shape
from rag.text.pages import page_of
from rag.types import Chunk, Sentence, StoredIndex
from tests.conftest import write_seeds
from tests.test_retrieve import Rows, with_random_vectors

WORDS = ["Rain", "fell", "on", "the", "valves", "1969", "they", "pilots", "launch", "Moon"]
GAPS = [" ", "  ", "\n", "\n\n", " \n \n", "\r\n\r\n", "\n  "]


@st.composite
def corpora(draw: st.DrawFn) -> tuple[StoredIndex, dict[str, str]]:
    """Sources of real sentences with any gaps between them (paragraph breaks among
    them), PDF pages for some, verbatim chunks at any offsets, and unit vectors."""
    sentences: list[Sentence] = []
    chunks: list[Chunk] = []
    texts: dict[str, str] = {}
    records: dict[str, dict[str, object]] = {}
    for s in range(draw(st.integers(1, 3))):
        source, text, starts = f"s{s}.txt", "", []
        for _ in range(draw(st.integers(1, 7))):
            words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=5))
            sentence = " ".join(words) + draw(st.sampled_from([".", "", "?"]))
            text += draw(st.sampled_from(["", *GAPS])) if text else ""
            starts.append(len(text))
            sentences.append(Sentence(source, len(text), len(text) + len(sentence), sentence))
            text += sentence
        texts[source] = text
        if draw(st.booleans()):  # a PDF: pages begin at some sentence starts
            firsts = sorted({0, *draw(st.lists(st.sampled_from(starts), max_size=3))})
            bounds = [*firsts, len(text)]
            records[source] = {
                "pages": [[i + 1, a, b] for i, (a, b) in enumerate(itertools.pairwise(bounds))]
            }
        for _ in range(draw(st.integers(1, 4))):
            start = draw(st.integers(0, len(text)))
            end = draw(st.integers(start, len(text)))
            chunks.append(Chunk(f"{source}:{start}", source, start, end, text[start:end]))
    stored, _ = with_random_vectors(
        draw(st.integers(0, 2**32 - 1)), {"sources": records}, chunks, sentences
    )
    return stored, texts


def _page(stored: StoredIndex, source: str, offset: int) -> int | None:
    return page_of(stored, source, offset)[0]


@settings(max_examples=200, deadline=None)
@given(corpora())
def test_joinable_follows_the_gap_and_the_page(case: tuple[StoredIndex, dict[str, str]]) -> None:
    stored, texts = case
    lookup = SentenceFeatures(stored)
    spans = stored.sentences
    for a in range(len(spans) - 1):
        sa, sb = spans[a], spans[a + 1]
        same = sa.source == sb.source
        joins = (
            same
            and _page(stored, sa.source, sa.start) == _page(stored, sb.source, sb.start)
            and "\n\n" not in texts[sa.source][sa.end : sb.start].replace("\r", "")
        )
        state = lookup.joinable[a]
        if state == JOIN_READ:  # only where no chunk holds both sentences
            assert same and not any(
                c.source == sa.source and c.start < sa.end and sb.start < c.end
                for c in stored.chunks
            )
        else:
            assert state == (JOIN_YES if joins else JOIN_NO), (a, sa, sb)
    if spans:
        assert lookup.joinable[-1] == JOIN_NO


@settings(max_examples=100, deadline=None)
@given(corpora(), st.lists(st.sampled_from([w.lower() for w in WORDS] + ["absent"])))
def test_holds_and_idf_say_what_the_sentences_hold(
    case: tuple[StoredIndex, dict[str, str]], wanted: list[str]
) -> None:
    from rag.text.features import stem

    stored, _ = case
    lookup = SentenceFeatures(stored)
    terms = sorted({stem(w) for w in wanted})
    rows = np.arange(len(stored.sentences), dtype=np.int64)
    got = lookup.holds(terms, rows)
    for t, term in enumerate(terms):
        held = [term in shape(s.text).terms for s in stored.sentences]
        assert got[t].tolist() == held
        n = max(1, len(stored.sentences))
        expected = math.log(1 + n / sum(held)) if any(held) else math.log(1 + n)
        assert lookup.idf(term) == pytest.approx(expected)


@settings(max_examples=100, deadline=None)
@given(corpora(), st.integers(1, 4), st.booleans())
def test_window_norms_and_penalties_are_those_of_the_summed_window(
    case: tuple[StoredIndex, dict[str, str]], span: int, by_row: bool
) -> None:
    stored, _ = case
    vectors = np.asarray(stored.sentence_vectors)
    n = len(vectors)
    first = np.arange(n, dtype=np.int64)
    norms = window_norm(Rows(vectors) if by_row else vectors, first, span)
    lookup = SentenceFeatures(stored, span)
    penalty = lookup.penalty(1.0, 0.03, 0.04)
    for r in range(n):
        for j in range(span):
            if r + j >= n:
                continue  # no such window
            total = vectors[r : r + j + 1].astype(np.float64).sum(axis=0)
            norm = max(float(np.sqrt(total @ total)), 1e-12)
            assert norms[j, r] == pytest.approx(norm, abs=1e-5)
            assert lookup.window_norm is not None
            assert lookup.window_norm[j, r] == pytest.approx(norm, abs=1e-5)
            spans = stored.sentences[r : r + j + 1]
            expected = (
                1.0 * all(shape(s.text).heading for s in spans)
                + 0.03 * shape(spans[0].text).anaphoric
                + 0.04 * (spans[-1].end - spans[0].start) / 1000
            )
            assert penalty[j, r] == pytest.approx(expected)


def test_a_changed_weight_makes_a_new_penalty(tmp_path: Path) -> None:
    write_seeds(tmp_path / "seeds", {"a.txt": "A short title\n\nThe valves froze in the rain."})
    idx = Index(Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "i"), HashingEmbedder())
    lookup = idx.generation().sentences
    assert not np.array_equal(lookup.penalty(1.0, 0.03, 0.04), lookup.penalty(2.0, 0.03, 0.04))


@pytest.mark.parametrize("question", ["Why did the valves freeze?", "rain launch", "Who flew?"])
def test_quotes_are_the_same_when_the_store_reads_rows(tmp_path: Path, question: str) -> None:
    """pgvector's store serves sentence vectors by row: window norms are computed per
    question instead of per generation, with the same windows and scores."""
    text = (
        "The launch was delayed by rain. The valves froze overnight. They thawed by noon.\n\n"
        "Pilots waited. He said the valves froze again. The crowd left at three."
    )
    write_seeds(tmp_path / "seeds", {"a.txt": text, "b.txt": text.replace("rain", "snow")})
    idx = Index(
        Settings(
            seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "i", chunk_size=90, chunk_overlap=30
        ),
        HashingEmbedder(),
    )
    stored = idx.current()
    by_row = dataclasses.replace(stored, sentence_vectors=Rows(np.asarray(stored.sentence_vectors)))
    query = idx.embedder.embed_query(question)
    lookup = SentenceFeatures(stored)
    row_lookup = SentenceFeatures(by_row)
    assert lookup.window_norm is not None and row_lookup.window_norm is None
    hits = idx.generation().retrieve(question, query, idx.settings.top_k, idx.settings.retrieval)
    chosen = quotes.select(stored, hits, query, question, idx.settings, idx.source_text, lookup)
    again = quotes.select(by_row, hits, query, question, idx.settings, idx.source_text, row_lookup)
    assert chosen  # something was quoted
    assert [(w.first, w.last) for w in chosen] == [(w.first, w.last) for w in again]
    for w, v in zip(chosen, again, strict=True):
        assert w.score == pytest.approx(v.score, abs=1e-6)
