"""What the build sends to the model (`Settings.model_pass`) and how it batches texts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rag.config import Settings
from rag.embedding.base import normalise
from rag.embedding.fake import HashingEmbedder
from rag.embedding.pooling import MAX_PADDING, Tokens, by_length, model_inputs
from rag.index.build import refresh
from rag.types import StoredIndex
from tests.test_build import CountingEmbedder
from tests.test_pooling import TEXTS, real_tokenizer

WORDS = st.sampled_from(["Musk", "left", "OpenAI", "in", "2018", "board", "Altman", "funds"])
SENTENCE = st.lists(WORDS, min_size=1, max_size=12).map(lambda w: " ".join(w).capitalize() + ".")
PARAGRAPH = st.lists(SENTENCE, min_size=1, max_size=8).map(" ".join)
DOCUMENT = st.lists(PARAGRAPH, min_size=1, max_size=6).map("\n\n".join)


def weighted_mean(stored: StoredIndex, row: int) -> np.ndarray:
    """The chunk vector the sentence pass promises, computed from the stored rows alone."""
    chunk = stored.chunks[row]
    total = np.zeros(stored.sentence_vectors.shape[1], dtype=np.float64)
    for i, s in enumerate(stored.sentences):
        shared = min(s.end, chunk.end) - max(s.start, chunk.start)
        if s.source == chunk.source and shared > 0:
            total += shared * np.asarray(stored.sentence_vectors[i], dtype=np.float64)
    return normalise(total.reshape(1, -1))[0]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(docs=st.lists(DOCUMENT, min_size=1, max_size=3), size=st.integers(60, 400))
@example(  # found by hypothesis: one chunk text twice, overlapping different sentences
    docs=[
        "Musk musk musk musk musk musk musk musk musk openai musk openai. "
        "Musk musk musk musk musk musk musk openai openai musk openai."
    ],
    size=60,
)
def test_each_chunk_is_the_character_weighted_mean_of_its_sentences(
    tmp_path_factory: pytest.TempPathFactory, docs: list[str], size: int
) -> None:
    root = tmp_path_factory.mktemp("pass")
    (root / "seeds").mkdir()
    for n, text in enumerate(docs):
        (root / "seeds" / f"d{n}.txt").write_text(text)
    s = Settings(
        seeds_dir=root / "seeds",
        index_dir=root / "index",
        chunk_size=size,
        chunk_overlap=size // 4,
        model_pass="sentences",
    )
    emb = CountingEmbedder()
    stored, report = refresh(s, emb)
    assert sorted(emb.texts) == sorted({x.text for x in stored.sentences})  # no chunk text
    assert report.chunks_embedded == len(stored.chunks)
    vectors = stored.chunk_vectors()
    for row in range(len(stored.chunks)):
        assert np.allclose(vectors[row], weighted_mean(stored, row), atol=1e-5), row
    alone = HashingEmbedder().embed_documents([x.text for x in stored.sentences])
    assert np.allclose(stored.sentence_vectors, alone, atol=1e-6)


def test_a_chunk_that_holds_no_sentence_is_embedded_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "a.txt").write_text("Musk left the board in 2018. Altman stayed.")
    monkeypatch.setattr("rag.index.build.sentence_spans", lambda text, offset=0: [])
    s = Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index", model_pass="sentences")
    emb = CountingEmbedder()
    stored, _ = refresh(s, emb)
    assert stored.sentences == ()
    assert emb.texts == [c.text for c in stored.chunks]
    expected = HashingEmbedder().embed_documents(emb.texts)
    assert np.allclose(stored.chunk_vectors(), expected, atol=1e-6)


def test_the_sentence_pass_reuses_the_vectors_of_unchanged_files(tmp_path: Path) -> None:
    (tmp_path / "seeds").mkdir()
    for n in range(3):
        (tmp_path / "seeds" / f"f{n}.txt").write_text(f"File {n} says one thing. And another {n}.")
    s = Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index", model_pass="sentences")
    refresh(s, CountingEmbedder())
    (tmp_path / "seeds" / "f1.txt").write_text("File 1 now says something else entirely.")
    emb = CountingEmbedder()
    stored, report = refresh(s, emb)
    assert report.full_rebuild_reason is None
    assert emb.texts == ["File 1 now says something else entirely."]
    vectors = stored.chunk_vectors()
    for row in range(len(stored.chunks)):
        assert np.allclose(vectors[row], weighted_mean(stored, row), atol=1e-5), row


@dataclass
class _Encoding:
    ids: list[int]


@given(lengths=st.lists(st.integers(0, 300), max_size=80), size=st.integers(1, 40))
def test_batches_hold_every_text_once_most_tokens_first(lengths: list[int], size: int) -> None:
    encodings = [_Encoding([7] * n) for n in lengths]
    batches = by_length(encodings, size)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert all(1 <= len(b) <= size for b in batches)
    counts = [lengths[i] for i in flat]
    assert counts == sorted(counts, reverse=True)
    for b, after in zip(batches, [*batches[1:], []][: len(batches)], strict=True):
        width, real = lengths[b[0]], sum(lengths[i] for i in b)
        assert len(b) == 1 or width * len(b) <= MAX_PADDING * real  # little padding
        if after and len(b) < size:  # ended early only because the next text would pad it
            assert width * (len(b) + 1) > MAX_PADDING * (real + lengths[after[0]])


@settings(max_examples=40, deadline=None)
@given(texts=st.lists(TEXTS, min_size=1, max_size=6))
def test_a_batch_is_padded_to_its_longest_text_only(texts: list[str]) -> None:
    encodings = real_tokenizer().encode_batch(texts)
    ids, mask, types = model_inputs(encodings)
    assert ids.shape == mask.shape == types.shape
    assert ids.shape[1] == max(len(e.ids) for e in encodings)
    for row, e in enumerate(encodings):
        n = len(e.ids)
        assert ids[row, :n].tolist() == e.ids
        assert mask[row].tolist() == [1] * n + [0] * (ids.shape[1] - n)
        assert ids[row, n:].tolist() == [0] * (ids.shape[1] - n)


@settings(max_examples=40, deadline=None)
@given(texts=st.lists(TEXTS, min_size=1, max_size=6))
def test_compact_tokens_give_the_model_what_the_encodings_do(texts: list[str]) -> None:
    encodings = real_tokenizer().encode_batch(texts)
    tokens = [Tokens(e) for e in encodings]
    assert [len(t) for t in tokens] == [len(e.ids) for e in encodings]
    for ours, theirs in zip(model_inputs(tokens), model_inputs(encodings), strict=True):
        assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)


@dataclass(frozen=True)
class _Digits:
    """A text whose size is its count of digits."""

    text: str

    def __len__(self) -> int:
        return sum(ch.isdigit() for ch in self.text)


class DigitCounter(CountingEmbedder):
    """Says a text has as many tokens as it has digits (not characters)."""

    def tokenize(self, texts: list[str]) -> list[_Digits]:
        return [_Digits(t) for t in texts]

    def embed_tokens(self, tokens: list[_Digits]):  # type: ignore[no-untyped-def]
        return self.embed_documents([t.text for t in tokens])


@pytest.mark.parametrize("model_pass", ["sentences", "both"])
def test_texts_reach_the_model_in_order_of_token_count(tmp_path: Path, model_pass: str) -> None:
    (tmp_path / "seeds").mkdir()
    sentences = ["A very long sentence without any digit at all.", "1 2 3 4.", "Short 12.", "9."]
    (tmp_path / "seeds" / "a.txt").write_text("\n\n".join(sentences))
    s = Settings(
        seeds_dir=tmp_path / "seeds",
        index_dir=tmp_path / "index",
        model_pass=model_pass,
        chunk_size=60,
        chunk_overlap=0,
        batch_size=1,  # a model call per text: the recorded order is the order sent
    )
    emb = DigitCounter()
    stored, _ = refresh(s, emb)
    sent = [t for t in emb.texts if t in sentences]
    assert sent == ["1 2 3 4.", "Short 12.", "9.", sentences[0]]  # by digits, not length
    assert len(stored.sentences) == 4


@pytest.mark.parametrize("model_pass", ["both", "chunks", "sentences"])
def test_progress_ends_at_its_total_with_repeated_texts(tmp_path: Path, model_pass: str) -> None:
    (tmp_path / "seeds").mkdir()
    text = "Musk left the board in 2018. Altman stayed on.\n\nThe lab grew. It raised funds."
    for name in ("a.txt", "b.txt", "c.txt"):  # the same chunks and sentences three times
        (tmp_path / "seeds" / name).write_text(text)
    calls: list[tuple[int, int]] = []
    s = Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index", model_pass=model_pass)
    refresh(s, HashingEmbedder(), progress=lambda n, total: calls.append((n, total)))
    assert calls, "no progress reported"
    assert calls[-1][0] == calls[-1][1] > 0
    assert all(0 <= n <= total for n, total in calls)
    assert [n for n, _ in calls] == sorted(n for n, _ in calls)
