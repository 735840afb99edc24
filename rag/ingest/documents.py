"""What the seeds folder holds, document by document, next to what the index holds.

Owns the status of each source (indexed; skipped and why; pending) for listings such
as the page's Documents panel. It reads the index manifest and stats the seeds
folder; it never reads a document's bytes and never writes (`rag.ingest.uploads` and
`rag.ingest.trash` do).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rag.ingest.scan import scan
from rag.types import Manifest, SourceRecord

Status = Literal["indexed", "skipped", "pending"]
NOT_YET = "not indexed yet"
CHANGED = "changed since it was indexed"
CHANGED_SKIPPED = "changed since it was skipped"
GONE = "removed from the seeds folder; leaves the index at the next refresh"


@dataclass(frozen=True)
class DocumentEntry:
    """One document as a listing shows it.

    Attributes:
        source: the name below the seeds folder ("notes/a.md"); names the scan could not
            use are shown with their control characters escaped (`rag.text.display.printable`).
        status: "indexed" (answers quote it), "skipped" (it is not indexed; ``reason``
            says why) or "pending" (the next refresh will index or drop it).
        reason: why it is skipped or pending; empty when indexed.
        size: bytes on disk (or as indexed, where the seeds were not looked at).
        chunks: chunks in the index; None unless indexed.
        indexed_ns: when its bytes were last read for the index (ns since the epoch).
        on_disk: whether the file is in the seeds folder now (so it can be removed).
    """

    source: str
    status: Status
    reason: str = ""
    size: int | None = None
    chunks: int | None = None
    indexed_ns: int | None = None
    on_disk: bool = False


def _indexed(source: str, rec: SourceRecord, on_disk: bool) -> DocumentEntry:
    return DocumentEntry(
        source,
        "indexed",
        size=rec.size,
        chunks=rec.chunks,
        indexed_ns=rec.checked_ns or None,
        on_disk=on_disk,
    )


def _skipped(source: str, rec: SourceRecord, on_disk: bool) -> DocumentEntry:
    reason = rec.reason or "not readable"
    return DocumentEntry(source, "skipped", reason, rec.size, on_disk=on_disk)


def _lsize(path: Path) -> int | None:
    """The size of the file (or link) at ``path``; None when there is none."""
    try:
        return os.lstat(path).st_size
    except OSError:
        return None


def _same_stat(rec: SourceRecord, size: int, mtime_ns: int) -> bool:
    return rec.size == size and rec.mtime_ns == mtime_ns


def list_documents(
    manifest: Manifest,
    seeds_dir: Path | None,
    *,
    follow_external_links: bool = False,
) -> list[DocumentEntry]:
    """Every document of the index manifest and of ``seeds_dir``, sorted by name.

    A file whose size and mtime match its manifest record has that record's status;
    any other file in the seeds folder is pending, as is an indexed source no longer
    there. Files the scan itself refuses (unsupported type, a link out of the folder,
    an undecodable name) are skipped with the scan's reason. With ``seeds_dir`` None
    (a read-only app that never looks at the seeds) the manifest alone is listed.

    Usage (not a doctest: it needs a built index, a model or a server)::

        entries = list_documents(index.current().manifest, Path("seeds"))
        [(e.source, e.status) for e in entries]
        # -> [('000_510c6f564a1ffe89.txt', 'indexed'), ('notes.md', 'pending')]
    """
    sources, skipped = manifest.sources, manifest.skipped
    if seeds_dir is None:
        listed = [_indexed(s, rec, False) for s, rec in sources.items()]
        listed += [_skipped(s, rec, False) for s, rec in skipped.items() if s not in sources]
        return sorted(listed, key=lambda e: e.source)
    files, refused = scan(seeds_dir, warn=False, follow_external_links=follow_external_links)
    entries: dict[str, DocumentEntry] = {}
    for f in files:
        rec, srec = sources.get(f.source), skipped.get(f.source)
        if rec is not None and _same_stat(rec, f.size, f.mtime_ns):
            entries[f.source] = _indexed(f.source, rec, True)
        elif srec is not None and _same_stat(srec, f.size, f.mtime_ns):
            entries[f.source] = _skipped(f.source, srec, True)
        else:
            reason = CHANGED if rec else CHANGED_SKIPPED if srec else NOT_YET
            entries[f.source] = DocumentEntry(f.source, "pending", reason, f.size, on_disk=True)
    for r in refused:
        size = None if r.source.endswith("/") else _lsize(seeds_dir / r.source)
        entry = DocumentEntry(r.source, "skipped", r.reason, size, on_disk=size is not None)
        entries.setdefault(r.source, entry)
    for source, rec in sources.items():
        if source not in entries:
            entries[source] = DocumentEntry(source, "pending", GONE, rec.size)
    return sorted(entries.values(), key=lambda e: e.source)


def matching(entries: Iterable[DocumentEntry], query: str) -> list[DocumentEntry]:
    """The entries whose name, status or reason contains every word of ``query``
    (case-insensitive); all of them for an empty query.

    Example:
        >>> docs = [DocumentEntry("a.md", "indexed"), DocumentEntry("b.pdf", "skipped", "empty")]
        >>> [e.source for e in matching(docs, "PDF")]
        ['b.pdf']
    """
    words = query.casefold().split()
    return [
        e
        for e in entries
        if all(w in f"{e.source} {e.status} {e.reason}".casefold() for w in words)
    ]


def counts(entries: Iterable[DocumentEntry]) -> dict[Status, int]:
    """How many entries have each status.

    Example:
        >>> counts([DocumentEntry("a.md", "indexed"), DocumentEntry("b.md", "pending")])
        {'indexed': 1, 'skipped': 0, 'pending': 1}
    """
    found: dict[Status, int] = {"indexed": 0, "skipped": 0, "pending": 0}
    for e in entries:
        found[e.status] += 1
    return found
