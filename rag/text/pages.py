"""PDF pages of indexed sources: the physical page of an offset and the label printed on it.

Owns the manifest's ``page_labels`` field of a PDF source (beside its ``pages`` spans) and
the look-up of a citation's page and page label. It does not extract PDFs
(`rag.ingest.extract`) or pick quotes (`rag.query.quotes`).
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.types import Document, SourceRecord, StoredIndex


def label_fields(doc: Document) -> dict[str, Any]:
    """The `SourceRecord` fields recording a PDF's pages and page labels; none for other
    formats.

    Example:
        >>> from rag.types import Document
        >>> label_fields(Document("a.pdf", "ab", "0", 2, 0, ((1, 0, 2),), ("iv",)))
        {'pages': ((1, 0, 2),), 'page_labels': ('iv',)}
    """
    return {"pages": doc.pages, "page_labels": doc.page_labels} if doc.pages else {}


def lacks_labels(record: SourceRecord) -> bool:
    """True for a PDF's manifest record written before page labels were recorded: its
    file is read again (not re-embedded) by the next refresh to add them."""
    return bool(record.pages) and record.page_labels is None


def page_in(record: SourceRecord | None, offset: int) -> tuple[int | None, str | None]:
    """The 1-based page holding ``offset`` of the source ``record`` describes, and its label.

    The label is ``str(page)`` where the record has none (a PDF without page labels, or an
    index built before they were recorded); both are None for formats without pages.

    Example:
        >>> from rag.types import SourceRecord
        >>> page_in(SourceRecord(9, 0, pages=((1, 0, 5), (2, 7, 9)), page_labels=("i", "ii")), 8)
        (2, 'ii')
        >>> page_in(SourceRecord(9, 0, pages=((1, 0, 5),)), 3), page_in(None, 3)
        ((1, '1'), (None, None))
    """
    pages = record.pages if record is not None else ()
    if not pages:
        return None, None
    i = max(0, bisect.bisect_right([p[1] for p in pages], offset) - 1)
    page = int(pages[i][0])
    labels = (record.page_labels if record is not None else None) or ()
    label = labels[page - 1] if 0 < page <= len(labels) else None
    return page, str(label) if label else str(page)


def page_of(index: StoredIndex, source: str, offset: int) -> tuple[int | None, str | None]:
    """`page_in` for ``source`` of ``index``: ``(page, page_label)`` of a citation.

    Usage (not a doctest: it needs a built index, a model or a server)::

        page, page_label = page_of(index, "book.pdf", 1200)
    """
    return page_in(index.manifest.sources.get(source), offset)
