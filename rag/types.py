"""The data seedrag passes between stages: frozen dataclasses, nothing else.

Stored data (`Document`, `Chunk`) and query-time data (`Hit`, `Citation`,
`Answer`, `IndexReport`) are separate types. No behaviour beyond tiny helpers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


def sha256_text(text: str) -> str:
    """Hex sha256 of a string's UTF-8 bytes (ids and content keys use it)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Document:
    """One source file as read from the seeds folder.

    Attributes:
        source: path relative to the seeds folder, with "/" separators.
        text: the exact text that citation offsets refer to.
        sha256: hash of the file's bytes.
        size: file size in bytes when read.
        mtime_ns: modification time in nanoseconds when read.
        pages: for a PDF, ``(page, start, end)`` of each page in ``text``.
        page_labels: for a PDF, each page's label ("iv", "12"), in page order; a page
            the PDF's page-label tree does not name is labelled with its number.
    """

    source: str
    text: str
    sha256: str
    size: int
    mtime_ns: int
    pages: tuple[tuple[int, int, int], ...] = ()
    page_labels: tuple[str, ...] = ()

    @property
    def regions(self) -> list[tuple[int, int]]:
        """Spans that chunks and quotes must not cross: the pages, or the whole text."""
        return [(s, e) for _, s, e in self.pages] if self.pages else [(0, len(self.text))]


@dataclass(frozen=True)
class Chunk:
    """A verbatim span of a document: ``document.text[start:end] == text``.

    Attributes:
        id: deterministic id from source, offsets and content.
        source: the document's source path.
        start: start offset (characters) in the document text.
        end: end offset (exclusive).
        text: the chunk text.
    """

    id: str
    source: str
    start: int
    end: int
    text: str

    @property
    def content_hash(self) -> str:
        """Hash of the text alone: equal texts share one embedding."""
        return sha256_text(self.text)


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
        score: relevance, higher is better.
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


@dataclass(frozen=True)
class IndexReport:
    """What a build or refresh did. Source counts, then chunk counts."""

    added: int
    updated: int
    unchanged: int
    deleted: int
    chunks_embedded: int
    chunks_total: int
    documents: int
    seconds: float
    skipped: tuple[str, ...] = ()
    full_rebuild_reason: str | None = None

    @property
    def changed(self) -> bool:
        """True when the index on disk was rewritten."""
        return bool(self.added or self.updated or self.deleted or self.full_rebuild_reason)

    def to_dict(self) -> dict[str, object]:
        """The JSON shape printed by ``rag index --json``."""
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "chunks_embedded": self.chunks_embedded,
            "chunks_total": self.chunks_total,
            "documents": self.documents,
            "seconds": round(self.seconds, 3),
            "skipped": list(self.skipped),
            "full_rebuild_reason": self.full_rebuild_reason,
        }
