"""What a question gets: the retrieved chunks (`Hit`), the verbatim quotes (`Citation`) and
the answer made of them (`Answer`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rag.types.documents import Chunk


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its relevance score (higher is better)."""

    chunk: Chunk
    score: float
    rank: int


@dataclass(frozen=True)
class Citation:
    """A verbatim quote: ``source_text(source)[start:end] == quote``.

    Attributes:
        source: path relative to the seeds folder, "/" separators.
        start: start character offset into the source text.
        end: end offset (exclusive).
        quote: the quoted text.
        score: relevance, higher is better, never under the threshold the answer
            abstains on: with the answer model, the probability that the best retrieved
            chunk holding the quote answers (`rag.query.reading.believe`, compared with
            `Settings.reader_min_answer`); without it, the window's score (`min_score`).
        page: 1-based page of a PDF source (its position in the file); None for other
            formats.
        page_label: the label the PDF gives that page, as printed on it ("iv", "12");
            ``str(page)`` when the PDF defines no labels; None for other formats.
    """

    source: str
    start: int
    end: int
    quote: str
    score: float
    page: int | None = None
    page_label: str | None = None

    def to_dict(self) -> dict[str, object]:
        """The JSON shape used by the CLI and the app's API."""
        return {
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "quote": self.quote,
            "score": round(self.score, 6),
            "page": self.page,
            "page_label": self.page_label,
        }


@dataclass(frozen=True)
class Answer:
    """What `answer` returns: text with [n] markers and its citations.

    ``citations`` is empty exactly when the documents do not answer.
    """

    question: str
    text: str
    citations: tuple[Citation, ...] = field(default_factory=tuple)

    @property
    def answered(self) -> bool:
        """True when at least one quote was cited."""
        return bool(self.citations)

    def to_dict(self) -> dict[str, object]:
        """The JSON shape printed by ``rag ask --json``."""
        return {
            "question": self.question,
            "text": self.text,
            "citations": [c.to_dict() for c in self.citations],
        }
