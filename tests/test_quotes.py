"""Answers: verbatim citations always, abstention when nothing is relevant."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.api import Index
from rag.config import Settings
from rag.embedding.fake import HashingEmbedder
from rag.index.sentences import SentenceRows
from rag.query.quotes import NOT_ANSWERED, compose, content_words, relevant
from rag.query.sentences import SentenceFeatures
from rag.types import Citation, Hit, Sentence
from tests.conftest import write_seeds

PARAGRAPHS = st.sampled_from(
    [
        "The launch was delayed by rain. Engineers checked the valves.",
        "Ünïcödé “curly” ‘quotes’ — the launch… again?",
        "Repeated paragraph about the launch.",
        "Repeated paragraph about the launch.",
        "",
        "Line one about fuel.\r\nLine two about fuel.\r\n",
        "\ufeffBOM then the launch text.",
        "long " * 400,
        "emoji 🚀 launch 🚀 fuel.",
    ]
)
DOCUMENTS = st.one_of(
    st.lists(PARAGRAPHS, min_size=1, max_size=12).map("\n\n".join),
    st.text(min_size=1, max_size=1500),
    st.lists(st.one_of(PARAGRAPHS, st.text(max_size=60)), min_size=1, max_size=12).map("\n".join),
)


@given(
    docs=st.lists(DOCUMENTS, min_size=1, max_size=3),
    question=st.sampled_from(
        [
            "launch",
            "fuel valves",
            "Why was the launch delayed?",
            "curly quotes",
            "🚀 launch",
            "long",
        ]
    ),
)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@pytest.mark.parametrize("reader", ["full", "off"])
def test_every_citation_is_verbatim(
    tmp_path_factory: pytest.TempPathFactory, docs: list[str], question: str, reader: str
) -> None:
    root = tmp_path_factory.mktemp("prop")
    files = {f"d{i}.txt": text for i, text in enumerate(docs)}
    if not any(t.strip() and "\x00" not in t for t in docs):
        files["filler.txt"] = "Filler about the launch."
    write_seeds(root / "seeds", files)
    idx = Index(
        Settings(
            seeds_dir=root / "seeds",
            index_dir=root / "index",
            min_score=-1.0,
            reader=reader,
            reader_min_answer=0.0,
        ),
        HashingEmbedder(),
    )
    result = idx.answer(question)
    for c in result.citations:
        raw = (root / "seeds" / c.source).read_bytes().decode("utf-8")
        assert raw[c.start : c.end] == c.quote == idx.source_text(c.source)[c.start : c.end]
        assert c.quote.strip()
    spans = sorted((c.source, c.start, c.end) for c in result.citations)
    assert all(a[2] <= b[1] for a, b in itertools.pairwise(spans) if a[0] == b[0])


def test_answers_with_the_fact_and_markers(index: Index) -> None:
    result = index.answer("Where does the Falcon booster land?")
    assert result.citations[0].source == "rockets.txt"
    assert "drone ship" in result.citations[0].quote
    assert result.text.startswith("“") and "[1]" in result.text
    assert len(result.citations[0].quote) < 120  # a sentence or two, not the whole chunk


def test_abstains_when_nothing_is_relevant(index: Index) -> None:
    result = index.answer("zyxwv qwerty plugh")
    assert result.citations == () and result.text == NOT_ANSWERED and not result.answered


def test_quotes_do_not_overlap_and_are_capped(tmp_path: Path) -> None:
    text = " ".join(f"Launch fact number {i} about the launch." for i in range(40))
    write_seeds(tmp_path / "s", {"a.txt": text})
    s = Settings(seeds_dir=tmp_path / "s", index_dir=tmp_path / "i", max_citations=3, min_score=0.0)
    result = Index(s, HashingEmbedder()).answer("launch fact")
    assert len(result.citations) == 3
    spans = sorted((c.start, c.end) for c in result.citations)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


def test_a_file_changed_after_indexing_is_refreshed_not_misquoted(
    index: Index, settings: Settings
) -> None:
    index.answer("Where does the Falcon booster land?")
    path = settings.seeds_dir / "rockets.txt"
    path.write_text("Preface added. " + path.read_text())
    result = index.answer("Where does the Falcon booster land?")
    c = result.citations[0]
    assert path.read_text()[c.start : c.end] == c.quote and "drone ship" in c.quote


def test_sentence_lookup_finds_overlaps() -> None:
    spans = (Sentence("a", 0, 5, "x"), Sentence("a", 6, 10, "y"), Sentence("b", 0, 4, "z"))
    lookup = SentenceRows(spans)
    assert list(lookup.overlapping("a", 4, 7)) == [0, 1]
    assert list(lookup.overlapping("a", 10, 20)) == []
    assert list(lookup.overlapping("b", 0, 1)) == [2]
    assert list(lookup.overlapping("c", 0, 100)) == []


def test_compose_and_content_words() -> None:
    c = Citation("a.txt", 0, 3, "abc", 0.5)
    assert compose("q", [c]).text == "“abc” [1]"
    assert compose("q", []).text == NOT_ANSWERED
    assert content_words("Why did the Musk leave OpenAI?") == {"musk", "leave", "openai"}


def _hit(text: str, score: float) -> Hit:
    from rag.types import Chunk

    return Hit(Chunk("id", "a.txt", 0, len(text), text), score, 0)


def test_relevance_needs_a_shared_word_unless_confident() -> None:
    s = Settings(min_score=0.3, confident_score=0.45)
    assert not relevant("Who founded Microsoft?", [_hit("Musk helped start OpenAI.", 0.35)], s)
    assert relevant("Who founded OpenAI?", [_hit("Musk co-founded OpenAI.", 0.35)], s)
    assert relevant("Who founded Microsoft?", [_hit("Musk helped start OpenAI.", 0.5)], s)
    assert not relevant("Who founded OpenAI?", [_hit("Musk co-founded OpenAI.", 0.29)], s)
    assert not relevant("anything", [], s)


def test_relevance_is_judged_on_the_closest_sentence(index: Index) -> None:
    """The best hit's score is the best similarity among the retrieved chunks'
    sentences, and the answer abstains exactly when `relevant` says so on those hits."""
    import numpy as np

    stored = index.current()
    lookup = SentenceFeatures(stored)
    outcomes = set()
    for question in ("Where does the Falcon booster land?", "zyxwv qwerty plugh"):
        query = index.embedder.embed_query(question)
        hits = index.search(question)
        c = [h.chunk for h in hits]
        rows = sorted({i for x in c for i in lookup.overlapping(x.source, x.start, x.end)})
        expected = float(np.max(np.asarray(stored.sentence_vectors[rows]) @ query))
        best = max(h.score for h in hits)
        assert best == pytest.approx(expected, abs=1e-6)
        answered = relevant(question, hits, index.settings)
        assert bool(index.answer(question).citations) == answered
        outcomes.add(answered)
    assert outcomes == {True, False}  # both branches were checked


def _reference_windows(index: Index, question: str) -> dict[tuple[int, int], float]:
    """Window scores computed the direct way: per window, numpy on the summed vectors."""
    import numpy as np

    from rag.embedding.base import normalise
    from rag.query import quotes as q
    from rag.text.features import answer_type, shape, terms, type_match

    w = q.DEFAULT_WEIGHTS
    stored = index.current()
    lookup = SentenceFeatures(stored)
    query = index.embedder.embed_query(question)
    hits = index.generation().retrieve(
        question, query, index.settings.top_k, index.settings.retrieval
    )
    best: dict[int, float] = {}
    for h in hits:
        for i in lookup.overlapping(h.chunk.source, h.chunk.start, h.chunk.end):
            best[i] = max(best.get(i, -1.0), h.score)
    vecs = np.asarray(stored.sentence_vectors[sorted(best)])
    sim = dict(zip(sorted(best), (vecs @ query).tolist(), strict=True))
    q_terms, kind = terms(question), answer_type(question)
    weight = {t: lookup.idf(t) for t in q_terms}
    total = sum(weight.values()) or 1.0
    out = {}
    for first in best:
        text = index.source_text(stored.sentences[first].source)
        for last in range(first, first + index.settings.max_quote_sentences):
            if last not in best:
                break
            if last > first:
                prev, this = stored.sentences[last - 1], stored.sentences[last]
                if prev.source != this.source or "\n\n" in text[prev.end : this.start]:
                    break
            span = range(first, last + 1)
            shapes = [shape(stored.sentences[j].text) for j in span]
            vec = normalise(stored.sentence_vectors[first : last + 1].sum(axis=0))
            covered = frozenset().union(*(s.terms for s in shapes))
            out[(first, last)] = (
                w.best * max(sim[j] for j in span)
                + w.mean * float(vec @ query)
                + w.chunk * max(best[j] for j in span)
                + w.lexical * sum(weight[t] for t in q_terms & covered) / total
                + w.answer_type * type_match(kind, shapes)
                - w.heading * all(s.heading for s in shapes)
                - w.anaphor * shapes[0].anaphoric
                - w.per_1000 * (stored.sentences[last].end - stored.sentences[first].start) / 1000
            )
    return out


@pytest.mark.parametrize(
    "question", ["Why was the launch delayed?", "fuel valves", "Who checked the valves?"]
)
def test_window_scores_equal_the_direct_formula(tmp_path: Path, question: str) -> None:
    """The scoring by window length (per-sentence products, arrays of window starts)
    changes nothing."""
    from rag.query import quotes as q

    paragraphs = [
        "The launch was delayed by rain. Engineers checked the valves. Fuel was fine.",
        "He said the fuel valves froze. They thawed by noon. The launch went ahead at three.",
        "Heading without stop\n\nIt was a long day. The crowd waited. Rain fell again.",
    ]
    write_seeds(
        tmp_path / "seeds",
        {f"d{i}.txt": "\n\n".join(paragraphs[i:] + paragraphs[:i]) for i in range(3)},
    )
    idx = Index(
        Settings(
            seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "i", chunk_size=120, chunk_overlap=30
        ),
        HashingEmbedder(),
    )
    expected = _reference_windows(idx, question)
    stored = idx.current()
    query = idx.embedder.embed_query(question)
    hits = idx.generation().retrieve(question, query, idx.settings.top_k, idx.settings.retrieval)
    lookup = SentenceFeatures(stored)
    cands = q._candidates(stored, lookup, hits, query, idx.settings.max_quote_sentences)
    scored = q._windows(stored, lookup, cands, question, 3, idx.source_text)
    rows = cands.ids.tolist()
    got = {
        (rows[f], rows[last]): score
        for f, last, score in zip(
            scored.first.tolist(), scored.last.tolist(), scored.score.tolist(), strict=True
        )
    }
    assert len(got) > len(rows)  # some windows span several sentences
    assert got.keys() == expected.keys()
    for key, score in expected.items():
        assert got[key] == pytest.approx(score, abs=1e-6)
