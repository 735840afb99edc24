"""Split a document into overlapping chunks with exact character offsets.

Owns chunk boundaries and ids. The text splitter proposes chunk strings; the
offsets are computed here and checked (`text[start:end] == chunk`), because the
splitter's own ``add_start_index`` can point at an earlier duplicate.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from functools import lru_cache

from langchain_text_splitters import RecursiveCharacterTextSplitter

from rag.types import Chunk, Document

# Paragraphs, lines, sentence ends, clauses, words, then characters.
SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]
_NON_SPACE = re.compile(r"\S")


@lru_cache(maxsize=8)
def _splitter(chunk_size: int, chunk_overlap: int) -> RecursiveCharacterTextSplitter:
    return RecursiveCharacterTextSplitter(
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        separators=SEPARATORS,
        keep_separator="end",
        strip_whitespace=True,
    )


def chunk_id(source: str, start: int, end: int, text: str) -> str:
    """Deterministic id: the same span of the same content gets the same id."""
    key = f"{source}\x00{start}\x00{end}\x00{text}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(key).hexdigest()[:32]


def locate(text: str, pieces: list[str], overlap: int = 0) -> Iterator[tuple[str, int, int]]:
    """Yield ``(piece, start, end)`` in document order, with ``text[start:end] == piece``.

    Pieces come in document order, as a splitter emits them, sharing at most
    ``overlap`` characters with the previous piece. Each new piece must reach
    past the previous one's end, so a repeated paragraph maps to its own
    occurrence, not the first one, unless that occurrence lies past text no piece
    holds: the splitter leaves nothing out, so such a piece is the overlap it
    re-emitted, placed inside the previous span. A piece that only repeats a span
    already yielded (splitters re-emit one around whitespace-only separators)
    is dropped.

    Raises:
        ValueError: a piece is not a substring of ``text``.
    """
    prev_start, prev_end = 0, 0
    seen: set[tuple[int, int]] = set()
    for piece in pieces:
        start = text.find(piece, max(prev_start, prev_end - overlap))
        while start >= 0 and start + len(piece) <= prev_end:
            start = text.find(piece, start + 1)
        # The splitter leaves no text out: a new piece starts by this point at the latest.
        gap_end = m.start() if (m := _NON_SPACE.search(text, prev_end)) else len(text)
        if start > gap_end and (inside := text.rfind(piece, prev_start, prev_end)) >= 0:
            # Placing it further on would skip text, and it fits inside the previous span:
            # the splitter re-emitted the overlap it carried, a repeat of that text.
            start = inside
        elif start >= 0:
            # Where the piece also fits later with only whitespace after the previous end
            # (repeated text), the latest such place is taken: the splitter moves forward,
            # so no text is left out between the two.
            reach = gap_end + len(piece)
            later = text.find(piece, start + 1, reach)
            while later >= 0:
                start, later = later, text.find(piece, later + 1, reach)
        if start < 0:  # nothing new: a re-emitted span, or (defensively) an earlier one
            start = text.find(piece, prev_start)
            if start < 0:
                start = text.find(piece)
            if start < 0:
                raise ValueError(f"chunk is not a substring of its document: {piece[:60]!r}")
        end = start + len(piece)
        if (start, end) in seen:
            continue
        seen.add((start, end))
        prev_start, prev_end = start, max(prev_end, end)
        yield piece, start, end


def chunk_document(doc: Document, chunk_size: int, chunk_overlap: int) -> list[Chunk]:
    """Split ``doc`` into chunks whose offsets index ``doc.text`` exactly.

    A PDF is split page by page, so no chunk crosses a page boundary.

    Example:
        >>> from rag.types import Document
        >>> d = Document("a.txt", "One. Two.\\n\\nThree.", "h", 17, 0)
        >>> [c.text for c in chunk_document(d, 10, 0)]
        ['One. Two.', 'Three.']
    """
    splitter = _splitter(chunk_size, chunk_overlap)
    chunks = []
    for lo, hi in doc.regions:
        region = doc.text[lo:hi]
        pieces = [p for p in splitter.split_text(region) if p.strip()]
        for piece, start, end in locate(region, pieces, chunk_overlap):
            a, b = lo + start, lo + end
            chunks.append(Chunk(chunk_id(doc.source, a, b, piece), doc.source, a, b, piece))
    return chunks
