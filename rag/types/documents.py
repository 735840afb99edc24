"""What the seeds hold: a source file as read (`Document`), its chunks and its sentences,
each with offsets into the source's text."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]  # one unit vector per row


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
class Sentence:
    """A sentence of a source: ``source_text[start:end] == text``. Its id is its row in
    `StoredIndex.sentences` (and in ``sentence_vectors``)."""

    source: str
    start: int
    end: int
    text: str
