"""Sentence spans are exact, non-empty and stripped, whatever the text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rag.text.segment import MAX_SENTENCE_CHARS, sentence_spans


@given(st.text(max_size=2000), st.integers(0, 50))
@settings(max_examples=400, deadline=None)
def test_spans_are_verbatim_stripped_and_ordered(text: str, offset: int) -> None:
    spans = sentence_spans(text, offset)
    prev_end = offset
    for start, end in spans:
        piece = text[start - offset : end - offset]
        assert piece and piece == piece.strip()
        assert start >= prev_end
        assert end - start <= MAX_SENTENCE_CHARS
        prev_end = end
    # Nothing but whitespace is left out.
    covered = "".join(text[s - offset : e - offset] for s, e in spans)
    assert "".join(covered.split()) == "".join(text.split())


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)]


def test_splits_after_end_punctuation_and_closing_quotes() -> None:
    text = "He said “stop.” Then he left! Did he? Yes.\nHeadline here"
    assert sentences(text) == [
        "He said “stop.”",
        "Then he left!",
        "Did he?",
        "Yes.",
        "Headline here",
    ]


def test_keeps_abbreviations_initials_and_lowercase_continuations() -> None:
    text = "Mr. Smith met Dr. Jones in the U.S. on Monday. J. R. R. Tolkien wrote e.g. books."
    assert sentences(text) == [
        "Mr. Smith met Dr. Jones in the U.S. on Monday.",
        "J. R. R. Tolkien wrote e.g. books.",
    ]


def test_crlf_and_blank_lines() -> None:
    assert sentences("One.\r\n\r\nTwo.\r\n") == ["One.", "Two."]


def test_long_sentences_are_cut_into_pieces() -> None:
    text = ", ".join(f"clause number {i}" for i in range(100)) + "."
    parts = sentences(text)
    assert len(parts) > 1 and all(len(p) <= MAX_SENTENCE_CHARS for p in parts)
