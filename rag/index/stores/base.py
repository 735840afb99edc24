"""The `Store` seam: where an index lives, and the contract every store keeps.

A store loads one generation whole, applies a refresh atomically, serialises writers
and keeps extracted texts. `rag.index.build` decides what changed; a store applies it.
Implementations: `rag.index.stores.folder` (files + FAISS) and
`rag.index.stores.pgvector` (PostgreSQL); `rag.index.stores.factory` picks one.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np

from rag.types import Chunk, Document, Manifest, Sentence, SourceRecord, StoredIndex, Vectors

LOCK_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Change:
    """One refresh, as `rag.index.build` decided it.

    Attributes:
        manifest: the new manifest (sources, identity, build time), without
            the store's own fields.
        kept: sources whose old chunks and sentences stay as they are.
        chunks: chunks of added and updated sources, and their vectors.
        sentences: sentences of added and updated sources, and their vectors.
        dimension: vector length.
    """

    manifest: Manifest
    kept: frozenset[str]
    chunks: list[Chunk]
    chunk_vectors: Vectors
    sentences: list[Sentence]
    sentence_vectors: Vectors
    dimension: int


class Store(Protocol):
    """A place that holds one index: a folder of files, or a database schema."""

    @property
    def location(self) -> str:
        """Where the index lives, for messages (a password is never shown)."""
        ...

    def lock(self) -> AbstractContextManager[None]:
        """Held while refreshing: one writer at a time, across processes."""
        ...

    def stamp(self) -> Hashable | None:
        """A cheap value that changes whenever a new generation is committed."""
        ...

    @property
    def watch_folder(self) -> Path | None:
        """A local folder whose entries change whenever a generation is committed: where
        the seeds are watched (`Settings.seeds_check`), it is watched too, and `stamp`
        is asked only after a change there. None: ask `stamp` every time."""
        ...

    def load(self) -> StoredIndex:
        """The current generation, whole and consistent.

        Raises:
            IndexNotFoundError: nothing was built here yet.
            IndexCorruptError: the stored index is damaged.
        """
        ...

    def commit(self, old: StoredIndex | None, change: Change) -> StoredIndex:
        """Apply ``change`` on top of ``old`` (None: replace everything) atomically."""
        ...

    def save_manifest(self, manifest: Manifest) -> None:
        """Replace the manifest only (same chunks, new file stats)."""
        ...

    def save_text(self, doc: Document) -> str | None:
        """Keep a non-plain source's extracted text; the name its record keeps (None for
        plain text, whose file is its text)."""
        ...

    def read_text(self, record: SourceRecord) -> str | None:
        """The extracted text a manifest record points at, or None."""
        ...


Row = TypeVar("Row", Chunk, Sentence)


def merge_rows(
    old: Sequence[Row], old_vecs: Vectors, kept: frozenset[str], new: list[Row], new_vecs: Vectors
) -> tuple[list[Row], Vectors]:
    """Kept old rows plus new rows, with their vectors, in (source, start) order."""
    rows = [i for i, x in enumerate(old) if x.source in kept]
    items = [old[i] for i in rows] + new
    vecs = np.concatenate([old_vecs[rows], new_vecs]) if len(old_vecs) else new_vecs
    order = sorted(range(len(items)), key=lambda i: (items[i].source, items[i].start))
    return [items[i] for i in order], np.ascontiguousarray(vecs[order], dtype=np.float32)
