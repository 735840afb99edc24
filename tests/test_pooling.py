"""Span pooling (`rag.embedding.pooling`) and its use by the build: offsets, truncation."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.config import DEFAULT_MODEL, Settings
from rag.embedding.base import normalise
from rag.embedding.fake import HashingEmbedder
from rag.embedding.onnx import MAX_TOKENS, OnnxEmbedder
from rag.embedding.pooling import encode, pool_spans, tokenizer
from rag.embedding.torch import SentenceTransformerEmbedder
from rag.index.build import refresh
from rag.text.segment import sentence_spans
from rag.types import Vectors
from tests.conftest import SEED_FILE


@cache
def real_tokenizer(max_tokens: int = MAX_TOKENS) -> Any:
    """The bundled model's tokenizer only (no weights are loaded)."""
    from rag.embedding.base import model_folder

    return tokenizer(model_folder(DEFAULT_MODEL), max_tokens)


TEXTS = st.one_of(
    st.lists(
        st.sampled_from(
            [
                "Musk left.",
                "Café “naïve” über!",
                "e.g. this one",
                "Dr. Who?",
                "数据。",
                "🚀 go",
                "\r\n",
            ]
        ),
        min_size=1,
        max_size=10,
    ).map(" ".join),
    st.text(max_size=300),
)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 12), pad=st.integers(0, 4))
def test_a_span_over_the_whole_text_is_the_mean_of_all_tokens(seed: int, n: int, pad: int) -> None:
    rng = np.random.default_rng(seed)
    tokens = rng.normal(size=(n + 2 + pad, 8)).astype(np.float32)
    offsets = np.zeros((n + 2 + pad, 2), dtype=np.int64)
    offsets[1 : n + 1] = [(2 * k, 2 * k + 1) for k in range(n)]  # one-char words, one space
    special = np.zeros(n + 2 + pad, dtype=bool)
    special[[0, n + 1]] = True
    mask = np.zeros(n + 2 + pad, dtype=np.int64)
    mask[: n + 2] = 1  # then padding, whose vectors must not count
    vecs, seen = pool_spans(tokens, offsets, special, mask, 2 * n - 1, [(0, 2 * n - 1)])
    assert seen.tolist() == [True]
    assert np.allclose(vecs[0], normalise(tokens[: n + 2].mean(axis=0)), atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(text=TEXTS)
def test_each_sentence_pools_exactly_the_tokens_inside_it(text: str) -> None:
    batch = encode(real_tokenizer(), [text])
    n = batch.ids.shape[1]
    onehot = np.eye(n, dtype=np.float32)  # token t's vector marks position t
    spans = sentence_spans(text)
    vecs, seen = pool_spans(
        onehot, batch.offsets[0], batch.special[0], batch.mask[0], batch.seen[0], spans
    )
    real = [t for t in range(n) if not batch.special[0][t] and batch.mask[0][t]]
    used: set[int] = set()
    for (a, b), vec, ok in zip(spans, vecs, seen, strict=True):
        inside = {t for t in real if a <= batch.offsets[0][t][0] < b}
        for t in inside:  # a token starting in a sentence ends in it: boundaries agree
            assert batch.offsets[0][t][1] <= b, (text[a:b], t)
        assert not inside & used  # no token counts for two sentences
        used |= inside
        if ok:
            marked = set(np.flatnonzero(vec > 0).tolist())
            specials = {t for t in range(n) if batch.special[0][t] and batch.mask[0][t]}
            assert marked == inside | specials
        else:  # only a sentence without any token (e.g. control characters) is unseen here
            assert not inside
    assert batch.seen[0] == len(text)  # 300 characters never reach 256 tokens


def test_a_span_past_the_truncation_is_unseen() -> None:
    words = " ".join(f"word{i}" for i in range(40))  # far more than 16 tokens
    text = f"First sentence here. {words}. Last sentence."
    batch = encode(real_tokenizer(16), [text])
    assert 0 < batch.seen[0] < len(text)
    spans = [(0, 20), (21, len(text) - 15), (len(text) - 14, len(text))]
    vecs, seen = pool_spans(
        np.ones((16, 4), np.float32),
        batch.offsets[0],
        batch.special[0],
        batch.mask[0],
        batch.seen[0],
        spans,
    )
    assert seen.tolist() == [True, False, False]
    assert not vecs[1:].any()


class Counting(HashingEmbedder):
    def __init__(self, max_words: int | None = None) -> None:
        super().__init__(max_words=max_words)
        self.texts: list[str] = []

    def embed_documents(self, texts: list[str]) -> Vectors:
        self.texts += texts
        return super().embed_documents(texts)


def test_sentences_past_the_truncation_are_embedded_alone(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    sentences = [f"Alpha{i} beta{i} gamma{i} delta{i}." for i in range(6)]  # 4 words each
    (seeds / "a.txt").write_text(" ".join(sentences))
    emb = Counting(max_words=10)  # sees the first two sentences whole, and half the third
    s = Settings(seeds_dir=seeds, index_dir=tmp_path / "index", model_pass="chunks")
    stored, report = refresh(s, emb)
    assert report.chunks_embedded == len(stored.chunks) == 1
    assert [s.text for s in stored.sentences] == sentences
    assert emb.texts == [stored.chunks[0].text, *sorted(sentences[2:], key=len, reverse=True)]
    alone = HashingEmbedder().embed_documents(sentences)
    assert np.allclose(stored.sentence_vectors, alone, atol=1e-6)


def test_a_sentence_takes_its_vector_from_the_chunk_where_it_is_most_central(
    tmp_path: Path,
) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "a.txt").write_text(" ".join(f"Sentence {i} is on topic {i}." for i in range(40)))

    class Tagging(HashingEmbedder):
        """Span vectors name the chunk they came from: one-hot at the chunk's tag."""

        def __init__(self) -> None:
            super().__init__()
            self.tags: dict[int, str] = {}

        def embed_with_spans(self, texts: list[str], spans: list[list[tuple[int, int]]]) -> Any:
            got = super().embed_with_spans(texts, spans)
            for text, vecs in zip(texts, got.spans, strict=True):
                tag = len(self.tags)
                self.tags[tag] = text
                vecs[:] = 0
                vecs[:, tag] = 1
            return got

    emb = Tagging()
    s = Settings(
        seeds_dir=seeds,
        index_dir=tmp_path / "index",
        chunk_size=120,
        chunk_overlap=60,
        model_pass="chunks",
    )
    stored, _ = refresh(s, emb)
    assert len(stored.chunks) > 5
    shared = 0
    for sent, vec in zip(stored.sentences, stored.sentence_vectors, strict=True):
        holders = [c for c in stored.chunks if c.start <= sent.start and sent.end <= c.end]
        margin = {c.text: min(sent.start - c.start, c.end - sent.end) for c in holders}
        got = emb.tags[int(np.argmax(vec))]
        assert margin[got] == max(margin.values()), sent
        shared += len(holders) > 1
    assert shared > 5  # the overlap puts many sentences in two chunks


# ---- with the real model ---------------------------------------------------------------------


def chunk_and_sentences() -> tuple[str, list[tuple[int, int]]]:
    text = SEED_FILE.read_text("utf-8")[:700]
    return text, sentence_spans(text)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.mark.model
@pytest.mark.parametrize("backend", ["torch", "onnx-int8"])
def test_whole_text_span_equals_the_plain_embedding(backend: str, cache: Path) -> None:
    e: Any = SentenceTransformerEmbedder() if backend == "torch" else OnnxEmbedder(cache_dir=cache)
    text, spans = chunk_and_sentences()
    got = e.embed_with_spans([text, "Short."], [[(0, len(text)), *spans], [(0, 6)]])
    plain = e.embed_documents([text, "Short."])
    assert np.allclose(got.texts, plain, atol=1e-5)
    assert np.allclose(got.spans[0][0], plain[0], atol=1e-5)
    assert np.allclose(got.spans[1][0], plain[1], atol=1e-5)
    assert got.seen[0].all() and np.allclose(np.linalg.norm(got.spans[0], axis=1), 1.0, atol=1e-5)


@pytest.mark.model
def test_onnx_span_vectors_match_torch(cache: Path) -> None:
    text, spans = chunk_and_sentences()
    ref = SentenceTransformerEmbedder().embed_with_spans([text], [spans]).spans[0]
    got = OnnxEmbedder(cache_dir=cache).embed_with_spans([text], [spans]).spans[0]
    cosine = (ref * got).sum(axis=1)
    assert cosine.mean() >= 0.99 and cosine.min() >= 0.97, cosine


@pytest.mark.model
def test_real_model_marks_sentences_past_256_tokens_unseen(cache: Path) -> None:
    text = " ".join(f"Fact {i} is about the number {i * 7}." for i in range(80))  # > 256 tokens
    spans = sentence_spans(text)
    got = OnnxEmbedder(cache_dir=cache).embed_with_spans([text], [spans])
    seen = got.seen[0].tolist()
    assert seen[0] and not seen[-1]
    assert seen == sorted(seen, reverse=True)  # a seen prefix, then unseen sentences
