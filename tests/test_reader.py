"""The answer model: its input encoding, quote choice from its probabilities, abstention,
and (marked ``model``) the shipped file itself: hash, offline load, recorded rankings."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import cast

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rag.api import Index
from rag.config import MODEL_ALONE, Settings
from rag.embedding.base import model_folder
from rag.embedding.fake import HashingEmbedder
from rag.errors import ModelError, SettingsError
from rag.query.quotes import NOT_ANSWERED, QuoteWeights
from rag.query.reading import believe, coverage, evidence
from rag.query.sentences import SentenceFeatures
from rag.reader.inputs import encode_pairs, load_tokenizer
from rag.reader.model import MODEL_DIR, Reader, Reading, file_sha256
from rag.text.segment import sentence_spans
from rag.types import Chunk, Hit
from tests.conftest import REPO, write_seeds
from tests.fakes import WordReader

RECORDED = REPO / "tests" / "data" / "reader_pairs.json"


class FixedReader:
    """Gives each sentence the probability its text's first word maps to in ``by_word``."""

    def __init__(self, by_word: dict[str, float], answers: float = 0.9) -> None:
        self.by_word = by_word
        self.answers = answers

    def read(
        self, question: str, passages: list[tuple[str, list[tuple[int, int]]]]
    ) -> list[Reading]:
        out = []
        for text, spans in passages:
            probs = np.array([self.by_word.get(text[s:e].split()[0], 0.0) for s, e in spans])
            out.append(Reading(self.answers, probs))
        return out


STORY = (
    "Alpha opens the story about the launch. Bravo gives the first reason for the delay. "
    "Charlie gives the second reason for the delay. Delta restates the launch topic.\n\n"
    "Echo is another paragraph about the launch. Foxtrot ends it."
)


def story_index(tmp_path: Path, model: object, **changes: object) -> Index:
    """The story indexed with ``model`` as the reader, deciding alone unless ``changes``
    say otherwise."""
    changes.setdefault("reader_evidence", MODEL_ALONE)
    write_seeds(tmp_path / "seeds", {"story.txt": STORY})
    s = Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index", **changes)  # type: ignore[arg-type]
    return Index(s, HashingEmbedder(), model)  # type: ignore[arg-type]


def test_the_models_most_likely_sentence_leads_when_its_weight_dominates(tmp_path: Path) -> None:
    probs = {"Charlie": 0.9, "Alpha": 0.1, "Delta": 0.05}
    idx = story_index(tmp_path, FixedReader(probs), reader_weight=10.0)
    result = idx.answer("Why was the launch delayed?")
    assert result.citations[0].quote.split()[0] in {"Bravo", "Charlie"}
    assert "Charlie gives the second reason" in result.citations[0].quote
    assert result.citations[0].score == pytest.approx(0.9)  # its passage's probability


def test_without_weight_the_model_still_decides_the_chunks_and_abstention(tmp_path: Path) -> None:
    off = story_index(tmp_path / "a", FixedReader({}), reader="off", min_score=-1.0)
    full = story_index(tmp_path / "b", FixedReader({}, answers=0.9), reader_weight=0.0)
    question = "Why was the launch delayed?"
    assert [c.quote for c in full.answer(question).citations][:1] == [
        c.quote for c in off.answer(question).citations
    ][:1]


def test_the_model_decides_abstention(tmp_path: Path) -> None:
    idx = story_index(tmp_path, FixedReader({"Bravo": 0.9}, answers=0.1), reader_min_answer=0.2)
    result = idx.answer("Why was the launch delayed?")
    assert result.citations == () and result.text == NOT_ANSWERED
    idx = story_index(tmp_path, FixedReader({"Bravo": 0.9}, answers=0.1), reader_min_answer=0.05)
    assert "Bravo" in idx.answer("Why was the launch delayed?").citations[0].quote


def test_reader_off_never_calls_the_model(tmp_path: Path, word_reader: WordReader) -> None:
    write_seeds(tmp_path / "seeds", {"story.txt": STORY})
    s = Settings(
        seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index", reader="off", min_score=0.0
    )
    assert Index(s, HashingEmbedder()).answer("launch delay").citations
    assert word_reader.calls == []


@pytest.mark.parametrize("mode", ["full", "rerank", "windows"])
def test_every_mode_reads_and_cites_verbatim(
    tmp_path: Path, mode: str, word_reader: WordReader
) -> None:
    write_seeds(tmp_path / "seeds", {"story.txt": STORY, "other.txt": "Golf is played with clubs."})
    s = Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index", reader=mode)
    idx = Index(s, HashingEmbedder())
    result = idx.answer("What is the second reason for the delay?")
    assert word_reader.calls and result.citations
    for c in result.citations:
        assert idx.source_text(c.source)[c.start : c.end] == c.quote
    assert "Charlie" in result.citations[0].quote


def test_settings_reject_unknown_modes_and_thresholds() -> None:
    with pytest.raises(SettingsError, match="reader must be"):
        Settings(reader="always")
    with pytest.raises(SettingsError, match="reader_min_answer"):
        Settings(reader_min_answer=1.5)
    with pytest.raises(SettingsError, match="reader_bridge must lie in"):
        Settings(reader_bridge=1.5)
    assert Settings(reader_bridge=None).reader_bridge is None


def test_settings_reject_evidence_that_is_not_four_numbers() -> None:
    for bad in ((1.0, 2.0), (0.0, 1.0, float("nan"), 0.0), ("0", 1, 0, 0), (True, 1, 0, 0)):
        with pytest.raises(SettingsError, match=r"reader_evidence must be four numbers"):
            Settings(reader_evidence=bad)  # type: ignore[arg-type]
    assert Settings(reader_evidence=[0, 1, 0, 0]).reader_evidence == MODEL_ALONE  # type: ignore[arg-type]


@given(st.lists(st.floats(1e-5, 1 - 1e-5), min_size=1, max_size=6))
def test_the_model_alone_believes_its_own_probability(model: list[float]) -> None:
    hits = [Hit(Chunk(str(i), "a.txt", 0, 1, "x"), 0.3, i) for i in range(len(model))]
    no_words = cast(SentenceFeatures, None)  # a question without words reads no rarity
    features = evidence(no_words, "?", hits, model)
    assert believe(features, MODEL_ALONE) == pytest.approx(model, rel=1e-9)


def test_retrieval_evidence_raises_the_chunk_that_holds_the_question_words(
    tmp_path: Path,
) -> None:
    idx = story_index(tmp_path, FixedReader({}), chunk_size=100, chunk_overlap=0)
    chunks = idx.current().chunks
    lookup = idx.generation().sentences
    holding = next(c for c in chunks if "Bravo" in c.text and "delay" in c.text)
    lacking = next(c for c in chunks if "Bravo" not in c.text and "delay" not in c.text)
    hits = [Hit(lacking, 0.2, 0), Hit(holding, 0.2, 1)]
    question = "Why did Bravo delay?"
    assert coverage(lookup, question, hits).tolist() == pytest.approx([0.0, 1.0])
    beliefs = believe(evidence(lookup, question, hits, [0.5, 0.5]), (0.0, 1.0, 0.0, 2.0))
    assert beliefs[1] > beliefs[0] == pytest.approx(0.5)
    assert coverage(lookup, "Why?", hits).tolist() == [1.0, 1.0]  # nothing to hold


WORDS = st.sampled_from(
    ["launch", "delay", "Musk", "he", "it", "OpenAI", "rain", "2018", "é", "🚀"]
)
SENTENCE = st.lists(WORDS, min_size=1, max_size=12).map(lambda w: " ".join(w).capitalize() + ".")
PASSAGE = st.lists(SENTENCE, min_size=1, max_size=20).map(" ".join)


@given(passage=PASSAGE, question=st.text(min_size=1, max_size=80), budget=st.integers(8, 96))
@example(passage="Launch.", question="0" * 16, budget=8)  # a question longer than the budget
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_encoding_marks_each_sentence_in_order_within_the_budget(
    passage: str, question: str, budget: int
) -> None:
    tok = _tokenizer()
    spans = sentence_spans(passage)
    (enc,) = encode_pairs(tok, question, [(passage, spans)], budget)
    assert len(enc.ids) <= max(budget, 8 + 3) and len(enc.ids) == len(enc.types) == len(
        enc.sentence
    )
    marks = enc.sentence[enc.sentence >= 0]
    assert (np.diff(marks) >= 0).all()  # sentences in passage order
    passage_part = np.flatnonzero(enc.types == 1)
    assert enc.sentence[: passage_part[0]].max() == -1  # nothing marked in the question part
    for m in set(marks.tolist()):
        at = np.flatnonzero(enc.sentence == m)
        assert (np.diff(at) == 1).all()  # a sentence's tokens are contiguous
    # Every sentence that fits in the budget whole is marked.
    if len(enc.ids) < budget:
        assert set(marks.tolist()) == set(range(len(spans)))


_TOK: list[object] = []


def _tokenizer() -> object:
    if not _TOK:
        _TOK.append(load_tokenizer(str(Path(model_folder("all-MiniLM-L6-v2")) / "tokenizer.json")))
    return _TOK[0]


# --- the shipped file (real model, CI runs these) -------------------------------------


@pytest.mark.model
def test_the_shipped_model_matches_the_hash_in_its_card() -> None:
    model = MODEL_DIR / "model.onnx"
    digest = file_sha256(model)
    config = json.loads((MODEL_DIR / "reader.json").read_text("utf-8"))
    card = (MODEL_DIR / "MODEL_CARD.md").read_text("utf-8")
    assert config["sha256"] == digest
    assert re.search(rf"sha256[^\n]*{digest}", card), "MODEL_CARD.md must state the file's sha256"
    assert model.stat().st_size <= 30_000_000


def test_the_defaults_are_the_values_tuning_chose() -> None:
    tuning = json.loads((MODEL_DIR / "tuning.json").read_text("utf-8"))
    defaults = Settings()
    for name in ("reader_min_answer", "reader_weight", "reader_quote_ratio"):
        assert getattr(defaults, name) == pytest.approx(tuning[name]), name
    assert defaults.reader_evidence == pytest.approx(tuple(tuning["reader_evidence"]))


@pytest.mark.model
def test_the_model_loads_offline_without_torch() -> None:
    code = (
        "import sys; from rag.reader.model import load_reader; r = load_reader(); "
        "r.read('Who?', [('Ann wrote it.', [(0, 13)])]); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.model
def test_the_model_ranks_the_recorded_pairs_as_recorded() -> None:
    reader = Reader()
    rows = json.loads(RECORDED.read_text("utf-8"))
    assert len(rows) >= 8
    for row in rows:
        spans = [tuple(s) for s in row["sentences"]]
        ((answer, sentences),) = reader.logits(row["question"], [(row["passage"], spans)])
        want = np.array([-np.inf if x is None else x for x in row["sentence_logits"]])
        assert abs(answer - row["answer_logit"]) < 0.05, row["question"]
        assert int(np.argmax(sentences)) == int(np.argmax(want)), row["question"]
        seen = np.isfinite(want)
        assert np.allclose(sentences[seen], want[seen], atol=0.05), row["question"]


@pytest.mark.model
def test_a_damaged_model_file_is_refused_with_the_fix(tmp_path: Path) -> None:
    for name in ("model.onnx", "tokenizer.json", "reader.json"):
        (tmp_path / name).write_bytes((MODEL_DIR / name).read_bytes())
    with (tmp_path / "model.onnx").open("r+b") as fh:
        fh.seek(1000)
        fh.write(b"\x00\x01\x02")
    with pytest.raises(ModelError, match="git checkout rag/reader/weights"):
        Reader(tmp_path)


def test_pairs_of_windows_never_overlap(tmp_path: Path) -> None:
    probs = {
        w: p
        for w, p in zip(
            ["Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot"],
            itertools.count(0.9, -0.1),
            strict=False,
        )
    }
    idx = story_index(tmp_path, FixedReader(probs), reader_quote_ratio=0.0)
    spans = sorted((c.start, c.end) for c in idx.answer("launch?").citations)
    assert len(spans) == 3 and all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


@pytest.mark.parametrize(
    ("bridge", "probs", "quotes"),
    [
        (0.5, {"Alpha": 0.9, "Charlie": 0.6}, ["Alpha Bravo Charlie", "Delta", "Foxtrot"]),
        (0.5, {"Charlie": 0.9, "Alpha": 0.6}, ["Alpha Bravo Charlie", "Delta", "Foxtrot"]),
        (None, {"Alpha": 0.9, "Charlie": 0.6}, ["Alpha", "Charlie", "Delta"]),
        (0.5, {"Alpha": 0.9, "Charlie": 0.3}, ["Alpha", "Charlie", "Delta"]),
        (0.5, {"Delta": 0.9, "Foxtrot": 0.8}, ["Delta", "Foxtrot", "Alpha"]),
    ],
)
def test_a_quote_grows_over_the_sentence_between_two_answering_ones(
    tmp_path: Path, bridge: float | None, probs: dict[str, float], quotes: list[str]
) -> None:
    """Quotes are single sentences here (length weighs heavily). Alpha and Charlie, one
    sentence apart, become one quote with Bravo when the model finds the later of the two
    at least ``bridge`` as likely to hold the answer; never across a paragraph break (Delta,
    Echo, Foxtrot). ``quotes``: each quote's sentences by their first words."""
    reader = FixedReader(probs)
    s = story_index(tmp_path, reader, reader_weight=10.0, reader_bridge=bridge).settings
    idx = Index(s, HashingEmbedder(), reader, QuoteWeights(per_1000=20.0))
    citations = idx.answer("Why was the launch delayed?").citations
    assert [" ".join(re.findall(r"(?:^|\. )(\w+)", c.quote)) for c in citations] == quotes


class PassageReader(FixedReader):
    """`FixedReader`, with each passage's probability of answering set by its first word."""

    def __init__(self, by_word: dict[str, float], passages: dict[str, float]) -> None:
        super().__init__(by_word)
        self.passages = passages

    def read(
        self, question: str, passages: list[tuple[str, list[tuple[int, int]]]]
    ) -> list[Reading]:
        out = super().read(question, passages)
        return [
            Reading(self.passages.get(text.split()[0], 0.0), r.sentences)
            for (text, _), r in zip(passages, out, strict=True)
        ]


FIRST_WORDS = ["Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot"]
PROBABILITY = st.floats(0.0, 1.0, allow_nan=False)


@pytest.fixture(scope="module")
def small_chunks(tmp_path_factory: pytest.TempPathFactory) -> Index:
    """The story cut into chunks of about one or two sentences, so passages differ."""
    root = tmp_path_factory.mktemp("small-chunks")
    return story_index(root, FixedReader({}), chunk_size=90, chunk_overlap=0)


@pytest.mark.parametrize(
    ("ratio", "first_words"),
    [(0.1, ["Bravo", "Echo", "Charlie"]), (0.3, ["Bravo", "Echo"]), (0.4, ["Bravo"])],
)
def test_a_later_quote_from_a_far_less_likely_chunk_is_left_out(
    small_chunks: Index, ratio: float, first_words: list[str]
) -> None:
    """The chunks holding Bravo, Echo and Charlie answer with probability 0.8, 0.3 and 0.1:
    a later quote is cited only while its chunk reaches ``ratio`` of the first quote's."""
    reader = PassageReader(
        {"Bravo": 0.9, "Foxtrot": 0.8}, {"Alpha": 0.8, "Echo": 0.3, "Charlie": 0.1}
    )
    s = small_chunks.settings.with_(reader_quote_ratio=ratio, reader_weight=10.0)
    citations = Index(s, small_chunks.embedder, reader).answer("Why the delay?").citations
    assert [c.quote.split()[0] for c in citations] == first_words


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sentences=st.fixed_dictionaries({w: PROBABILITY for w in FIRST_WORDS}),
    passages=st.fixed_dictionaries({w: PROBABILITY for w in FIRST_WORDS}),
    threshold=st.floats(0.01, 0.99),
    ratio=st.sampled_from([0.0, 0.1, 0.5]),
    changed=st.sampled_from([None, *FIRST_WORDS]),
    bridge=st.sampled_from([None, 0.0, 0.5]),
)
def test_no_citation_scores_under_the_abstention_threshold(
    small_chunks: Index,
    sentences: dict[str, float],
    passages: dict[str, float],
    threshold: float,
    ratio: float,
    changed: str | None,
    bridge: float | None,
) -> None:
    """Each quote must come from a passage the model finds answering, also when a quote
    before it was dropped because its file changed after indexing; quotes, grown over a
    sentence between them or not, never overlap."""
    idx = small_chunks
    gen = idx.generation()
    question = "Why was the launch delayed?"
    query = idx.embedder.embed_query(question)
    s = idx.settings.with_(
        reader_min_answer=threshold, reader_quote_ratio=ratio, reader_bridge=bridge
    )
    text = STORY if changed is None else STORY.replace(changed, changed.upper())
    result = gen.answer(question, query, s, lambda source: text, PassageReader(sentences, passages))
    for c in result.citations:
        assert c.score >= threshold
        assert c.score >= ratio * result.citations[0].score
        assert text[c.start : c.end] == c.quote
        if changed is not None:
            assert changed not in c.quote
    spans = sorted((c.start, c.end) for c in result.citations)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    read = [h.chunk.text.split()[0] for h in gen.retrieve(question, query, s.top_k, s.retrieval)]
    if all(passages[w] < threshold for w in read):
        assert result.citations == ()


@settings(max_examples=40, deadline=None)
@given(
    question=st.lists(st.sampled_from(STORY.split()), min_size=1, max_size=6).map(" ".join),
    threshold=st.floats(-0.2, 0.6),
)
def test_without_the_model_no_citation_scores_under_min_score(
    small_chunks: Index, question: str, threshold: float
) -> None:
    s = small_chunks.settings.with_(reader="off", min_score=threshold, confident_score=1.0)
    idx = Index(s, small_chunks.embedder)
    result = idx.answer(question)
    assert all(c.score >= threshold for c in result.citations)
