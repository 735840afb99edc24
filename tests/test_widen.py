"""An unsure answer looks further (`Settings.reader_widen`): the chunks a retrieval of
twice ``top_k`` adds are read too and compete for the places after the first quote."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag.api import Index
from rag.config import MODEL_ALONE, Settings
from rag.embedding.fake import HashingEmbedder
from rag.errors import SettingsError
from rag.query.reading import widened
from rag.reader.model import Reading
from rag.types import Citation, Hit
from tests.conftest import write_seeds

STORY = (
    "Alpha opens the story about the launch. Bravo gives the first reason for the delay. "
    "Charlie gives the second reason for the delay. Delta restates the launch topic.\n\n"
    "Echo is another paragraph about the launch. Foxtrot ends it. Golf closes the delay.\n\n"
    "Hotel is about the weather. India is about the crew and the delay."
)
QUESTION = "Why the delay?"


class CountingReader:
    """Every passage answers with probability ``answers``; a sentence gets the probability
    its first word maps to in ``by_word``. Records how many passages each read took."""

    def __init__(self, by_word: dict[str, float], answers: float) -> None:
        self.by_word = by_word
        self.answers = answers
        self.calls: list[int] = []

    def read(
        self, question: str, passages: Sequence[tuple[str, Sequence[tuple[int, int]]]]
    ) -> list[Reading]:
        self.calls.append(len(passages))
        return [
            Reading(
                self.answers,
                np.array([self.by_word.get(text[s:e].split()[0], 0.0) for s, e in spans]),
            )
            for text, spans in passages
        ]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Index:
    """The story in chunks of about one sentence, two retrieved per question."""
    root = tmp_path_factory.mktemp("widen")
    write_seeds(root / "seeds", {"story.txt": STORY})
    s = Settings(
        seeds_dir=root / "seeds",
        index_dir=root / "index",
        chunk_size=60,
        chunk_overlap=0,
        top_k=2,
        reader_evidence=MODEL_ALONE,
        reader_weight=10.0,
        reader_quote_ratio=0.0,
        reader_bridge=None,
    )
    idx = Index(s, HashingEmbedder())
    idx.refresh()
    return idx


def first_word(h: Hit) -> str:
    return h.chunk.text.split()[0]


def scenario(small: Index) -> tuple[list[Hit], list[Hit], dict[str, float]]:
    """The first read's hits, the hits the wider retrieval adds, and sentence
    probabilities under which an added chunk holds the likeliest sentence."""
    first = small.search(QUESTION, 2)
    known = {h.chunk.id for h in first}
    extra = [h for h in small.search(QUESTION, 4) if h.chunk.id not in known]
    assert len(first) == 2 and extra
    probs = {first_word(first[0]): 0.5, first_word(first[1]): 0.1}
    probs |= {first_word(h): 0.9 for h in extra}
    return first, extra, probs


def answer(small: Index, reader: CountingReader, **changes: object) -> list[Citation]:
    return list(
        Index(small.settings.with_(**changes), small.embedder, reader).answer(QUESTION).citations
    )


def test_an_unsure_answer_reads_further_and_keeps_its_first_quote(small: Index) -> None:
    _, extra, probs = scenario(small)
    plain = answer(small, CountingReader(probs, 0.3), reader_widen=None)
    reader = CountingReader(probs, 0.3)
    wide = answer(small, reader, reader_widen=0.5)
    assert reader.calls == [2, len(extra)]
    assert wide[0] == plain[0]
    assert len(wide) <= small.settings.max_citations
    added = [c for c in wide[1:] if any(h.chunk.text.strip() in c.quote for h in extra)]
    assert added, "a quote from a chunk only the wider read saw takes a later place"
    for c in wide:
        assert small.source_text(c.source)[c.start : c.end] == c.quote
    spans = sorted((c.start, c.end) for c in wide)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


@pytest.mark.parametrize(
    ("answers", "widen", "reads"),
    [
        (0.3, 0.2, [2]),  # sure enough: no second read
        (0.3, None, [2]),  # widening off
        (0.01, 0.5, [2]),  # under reader_min_answer: refused on the first read alone
    ],
)
def test_a_sure_or_refused_answer_reads_once(
    small: Index, answers: float, widen: float | None, reads: list[int]
) -> None:
    first, _, probs = scenario(small)
    reader = CountingReader(probs, answers)
    citations = answer(small, reader, reader_widen=widen)
    assert reader.calls == reads
    known = " ".join(h.chunk.text for h in first)
    assert all(c.quote in known for c in citations)
    assert bool(citations) == (answers >= small.settings.reader_min_answer)


def cited(start: int, end: int, score: float, source: str = "a.txt") -> Citation:
    return Citation(source, start, end, "x" * (end - start), score)


SPANS = st.lists(
    st.tuples(st.integers(0, 60), st.integers(1, 20), st.floats(0.0, 1.0), st.booleans()),
    max_size=8,
)


@given(first=st.tuples(st.integers(0, 60), st.integers(1, 20), st.floats(0.01, 1.0)), wider=SPANS)
def test_widened_keeps_the_first_and_adds_only_fitting_quotes(
    first: tuple[int, int, float], wider: list[tuple[int, int, float, bool]]
) -> None:
    s = Settings(reader_quote_ratio=0.3, max_citations=3)
    lead = cited(first[0], first[0] + first[1], first[2])
    later = [cited(a, a + n, p, "a.txt" if same else "b.txt") for a, n, p, same in wider]
    out = widened(lead, later, s)
    assert out[0] == lead and 1 <= len(out) <= s.max_citations
    assert all(c.score >= s.reader_quote_ratio * lead.score for c in out[1:])
    rest = iter(later)
    assert all(any(c is d for d in rest) for c in out[1:])  # in the wider answer's order
    for i, a in enumerate(out):
        for b in out[i + 1 :]:
            assert a.source != b.source or a.end <= b.start or b.end <= a.start
    if len(out) < s.max_citations:  # every quote left out overlaps or pads
        for c in later:
            assert (
                c in out
                or c.score < s.reader_quote_ratio * lead.score
                or any(c.source == o.source and c.start < o.end and o.start < c.end for o in out)
            )


def test_settings_reject_a_widen_outside_zero_to_one() -> None:
    with pytest.raises(SettingsError, match="reader_widen must lie in"):
        Settings(reader_widen=1.5)
    assert Settings(reader_widen=None).reader_widen is None
