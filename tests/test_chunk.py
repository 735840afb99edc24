"""Chunk offsets are exact on any text, repeated paragraphs included."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from rag.text.chunk import chunk_document, locate
from rag.types import Document

PARAGRAPH = st.sampled_from(
    [
        "Same paragraph again.",
        "Ünïcödé “curly” ‘quotes’ — dash…",
        "x" * 300,
        "",
        "  ",
        "Line one.\r\nLine two.",
        "\ufeffBOM start",
        "emoji 🚀🚀 text",
        "a. b. c. d. e.",
    ]
)
TEXTS = st.one_of(
    st.text(max_size=3000),
    st.lists(PARAGRAPH, max_size=30).map("\n\n".join),
    st.lists(st.one_of(PARAGRAPH, st.text(max_size=80)), max_size=40).map("\n".join),
)


def doc(text: str) -> Document:
    return Document("d.txt", text, "h", len(text), 0)


@given(TEXTS, st.integers(20, 400), st.integers(0, 19))
@settings(max_examples=300, deadline=None)
def test_every_chunk_is_a_verbatim_span(text: str, size: int, overlap: int) -> None:
    chunks = chunk_document(doc(text), size, overlap)
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert c.text.strip()
    assert len({(c.start, c.end) for c in chunks}) == len(chunks)


PROSE = st.lists(
    st.sampled_from(
        [
            "Same sentence again.",
            "Musk left in 2018.",
            "“Curly” café 🚀.",
            "Line\r\n",
            "\n\n",
            "  ",
            "A longer sentence about the board and funding.",
        ]
    ),
    max_size=60,
).map(" ".join)
WORDS = st.lists(st.from_regex(r"[a-z]{1,8}[.,]?", fullmatch=True), max_size=200).map(" ".join)


@given(st.one_of(PROSE, WORDS), st.integers(20, 200), st.integers(0, 19))
@example("Same sentence again. " * 3 + "Line\r\n Line\r\n Line\r\n", 42, 4)  # overlapping repeats
# The splitter re-emits the overlap it carried ("Line") before moving on.
@example("Same sentence again. Line\r\n Line\r\n \n\n Musk left in 2018. Line\r\n", 35, 18)
@settings(max_examples=200, deadline=None)
def test_prose_chunks_are_ordered_and_cover_the_text(text: str, size: int, overlap: int) -> None:
    chunks = chunk_document(doc(text), size, overlap)
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)
    covered = set().union(*(range(c.start, c.end) for c in chunks)) if chunks else set()
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


def test_repeated_paragraphs_map_to_their_own_occurrence() -> None:
    text = "\n\n".join(["Repeat me please."] * 5)
    chunks = chunk_document(doc(text), 20, 0)
    assert [c.start for c in chunks] == [0, 19, 38, 57, 76]
    assert len({c.id for c in chunks}) == 5  # same text, different places, different ids


def test_ids_are_deterministic_and_depend_on_content() -> None:
    a = chunk_document(doc("Alpha beta. Gamma delta."), 100, 0)
    b = chunk_document(doc("Alpha beta. Gamma delta."), 100, 0)
    c = chunk_document(doc("Alpha beta. Gamma delta!"), 100, 0)
    assert [x.id for x in a] == [x.id for x in b]
    assert a[0].id != c[0].id


def test_no_chunk_exceeds_the_size_and_whitespace_only_gives_none() -> None:
    text = " ".join(f"word{i}" for i in range(500))
    assert all(len(c.text) <= 100 for c in chunk_document(doc(text), 100, 10))
    assert chunk_document(doc(" \n\n \t "), 100, 10) == []


def test_whitespace_only_separators_do_not_hide_a_repeat() -> None:
    text = "\n\n00000 00 0000\n\n  \n\n00000 00 0000"
    assert [c.start for c in chunk_document(doc(text), 20, 15)] == [2, 21]


def test_locate_rejects_a_piece_not_in_the_text() -> None:
    try:
        list(locate("abc", ["zzz"]))
    except ValueError as exc:
        assert "not a substring" in str(exc)
    else:
        raise AssertionError("expected ValueError")
