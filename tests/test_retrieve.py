"""Chunks are ranked and scored by their closest sentence (`rag.query.retrieve`)."""

from __future__ import annotations

import dataclasses
from typing import Any

import faiss
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag.api import Index
from rag.index.sentences import SentenceRows
from rag.index.stores.faiss import FaissVectors
from rag.query.retrieve import closest_sentences, search
from rag.types import Chunk, Manifest, Sentence, StoredIndex

DIM = 8


@st.composite
def layouts(draw: st.DrawFn) -> tuple[StoredIndex, np.ndarray]:
    """Sources cut into disjoint sentences (gaps allowed), chunks at any offsets, and
    random unit vectors for all of them."""
    sentences: list[Sentence] = []
    chunks: list[Chunk] = []
    for s in range(draw(st.integers(1, 3))):
        source, pos = f"s{s}.txt", 0
        for _ in range(draw(st.integers(0, 6))):
            start = pos + draw(st.integers(0, 3))
            end = start + draw(st.integers(1, 10))
            sentences.append(Sentence(source, start, end, "x" * (end - start)))
            pos = end
        for _ in range(draw(st.integers(1, 4))):
            start = draw(st.integers(0, pos + 3))
            end = start + draw(st.integers(1, 12))
            chunks.append(Chunk(f"{source}:{start}", source, start, end, "x" * (end - start)))
    return with_random_vectors(draw(st.integers(0, 2**32 - 1)), {}, chunks, sentences)


def with_random_vectors(
    seed: int, manifest: dict[str, Any], chunks: list[Chunk], sentences: list[Sentence]
) -> tuple[StoredIndex, np.ndarray]:
    """A stored index of ``chunks`` and ``sentences`` with random unit vectors (a flat FAISS
    index for the chunks), and a random unit query."""
    rng = np.random.default_rng(seed)

    def unit(n: int) -> np.ndarray:
        v = rng.normal(size=(n, DIM)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    flat = faiss.IndexFlatIP(DIM)
    flat.add(unit(len(chunks)))
    stored = StoredIndex(
        Manifest.from_json(manifest),
        tuple(chunks),
        FaissVectors(flat),
        tuple(sentences),
        unit(len(sentences)),
    )
    return stored, unit(1)[0]


class Rows:
    """Sentence vectors read by row, as pgvector's store serves them (`RowVectors`)."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors, self.shape = vectors, vectors.shape

    def __getitem__(self, rows: list[int]) -> np.ndarray:
        return self.vectors[list(rows)]


@given(layouts(), st.booleans(), st.randoms())
def test_a_chunks_score_is_its_best_overlapping_sentence(
    case: tuple[StoredIndex, np.ndarray], by_row: bool, rnd: Any
) -> None:
    stored, query = case
    if by_row:  # the store reads rows; in memory, FAISS's by-index kernel does the work
        stored = dataclasses.replace(stored, sentence_vectors=Rows(stored.sentence_vectors))
    rows = list(range(len(stored.chunks))) * 2  # repeats, in any order
    rnd.shuffle(rows)
    ranges = SentenceRows(stored.sentences, stored.chunks)
    got = closest_sentences(stored, ranges, query, rows)
    own = np.asarray(stored.chunk_index.vectors(list(range(len(stored.chunks))))) @ query
    for row, score in zip(rows, got, strict=True):
        c = stored.chunks[row]
        inside = [
            float(np.asarray(stored.sentence_vectors[[i]])[0] @ query)
            for i, s in enumerate(stored.sentences)
            if s.source == c.source and s.start < c.end and c.start < s.end
        ]
        expected = max(inside) if inside else float(own[row])  # no sentence: its own cosine
        assert score == pytest.approx(expected, abs=1e-5)


def _expected(index: Index, question: str) -> tuple[StoredIndex, dict[int, float]]:
    stored = index.current()
    query = index.embedder.embed_query(question)
    best: dict[int, float] = {}
    for row, c in enumerate(stored.chunks):
        sims = [
            float(stored.sentence_vectors[i] @ query)
            for i, s in enumerate(stored.sentences)
            if s.source == c.source and s.start < c.end and c.start < s.end
        ]
        best[row] = max(sims)
    return stored, best


def test_dense_search_ranks_chunks_by_their_closest_sentence(index: Index) -> None:
    question = "Where does the Falcon booster land?"
    stored, best = _expected(index, question)
    assert len(stored.chunks) <= 20  # every chunk is proposed, so the order is the whole story
    ranges = SentenceRows(stored.sentences, stored.chunks)
    hits = search(stored, ranges, index.embedder.embed_query(question), 4)
    ranked = sorted(best, key=lambda r: (-best[r], r))[:4]
    assert [stored.chunks.index(h.chunk) for h in hits] == ranked
    assert [h.score for h in hits] == pytest.approx([best[r] for r in ranked], abs=1e-5)


def test_hybrid_hits_carry_their_closest_sentences_score(index: Index) -> None:
    question = "Which engines burn methane?"
    stored, best = _expected(index, question)
    hits = index.search(question)
    assert hits
    for h in hits:
        assert h.score == pytest.approx(best[stored.chunks.index(h.chunk)], abs=1e-5)


@given(
    st.lists(st.lists(st.sampled_from("ab cd ef gh ij kl".split()), max_size=8), min_size=1),
    st.lists(st.sampled_from("ab cd ef gh zz".split()), max_size=5),
    st.integers(1, 10),
)
def test_bm25_search_ranks_as_bm25s_scores(
    texts: list[list[str]], question: list[str], k: int
) -> None:
    """The summed term weights rank chunks as bm25s's own scoring does (repeated question
    words count twice there too), best first, ties by row."""
    import bm25s

    from rag.query.retrieve import LexicalIndex
    from rag.text.features import tokens

    chunks = tuple(Chunk(f"c{i}", "s.txt", i, i + 1, " ".join(t)) for i, t in enumerate(texts))
    stored = StoredIndex(
        Manifest(), chunks, FaissVectors(faiss.IndexFlatIP(DIM)), (), np.zeros((0, DIM))
    )
    got = LexicalIndex(stored).search(" ".join(question), k)
    reference = bm25s.BM25()
    reference.index([tokens(c.text) or ["\x00"] for c in chunks], show_progress=False)
    wanted = [t for t in tokens(" ".join(question)) if t in reference.vocab_dict]
    scores = reference.get_scores(wanted) if wanted else np.zeros(len(chunks))
    expected = sorted((-float(s), r) for r, s in enumerate(scores) if s > 0)[:k]
    assert [r for r, _ in got] == [r for _, r in expected]
    assert [s for _, s in got] == pytest.approx([-s for s, _ in expected], rel=1e-5)
