"""Where an index lives: the `Backend` seam, and the default FAISS folder behind it.

Owns the contract every store keeps (load one generation whole, apply a
refresh atomically, serialise writers, keep extracted texts) and the choice of
store from `Settings`. `rag.index.build` decides what changed; a backend applies it.
The PostgreSQL store is `rag.index.stores.pgvector`, imported only when selected.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Hashable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
from filelock import FileLock, Timeout

from rag.config import Settings
from rag.embedding.base import Vectors
from rag.errors import RagError
from rag.index.stores import folder as store
from rag.index.stores.folder import Span, StoredIndex
from rag.index.stores.vectors import FaissVectors
from rag.types import Chunk, Document

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

    manifest: dict[str, Any]
    kept: frozenset[str]
    chunks: list[Chunk]
    chunk_vectors: Vectors
    sentences: list[Span]
    sentence_vectors: Vectors
    dimension: int


class Backend(Protocol):
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

    def save_manifest(self, manifest: dict[str, Any]) -> None:
        """Replace the manifest only (same chunks, new file stats)."""
        ...

    def save_text(self, doc: Document) -> dict[str, Any]:
        """Keep a non-plain source's extracted text; the manifest fields pointing at it."""
        ...

    def read_text(self, record: dict[str, Any]) -> str | None:
        """The extracted text a manifest record points at, or None."""
        ...


Row = TypeVar("Row", Chunk, Span)


def merge_rows(
    old: Sequence[Row], old_vecs: Vectors, kept: frozenset[str], new: list[Row], new_vecs: Vectors
) -> tuple[list[Row], Vectors]:
    """Kept old rows plus new rows, with their vectors, in (source, start) order."""
    rows = [i for i, x in enumerate(old) if x.source in kept]
    items = [old[i] for i in rows] + new
    vecs = np.concatenate([old_vecs[rows], new_vecs]) if len(old_vecs) else new_vecs
    order = sorted(range(len(items)), key=lambda i: (items[i].source, items[i].start))
    return [items[i] for i in order], np.ascontiguousarray(vecs[order], dtype=np.float32)


class FolderBackend:
    """The default store: a folder with a manifest and FAISS file (see `rag.index.stores.folder`)."""

    def __init__(self, index_dir: Path, ann_threshold: int) -> None:
        self.index_dir = Path(index_dir)
        self._manifest = str(self.index_dir / store.MANIFEST)
        self.ann_threshold = ann_threshold

    @property
    def location(self) -> str:
        return str(self.index_dir)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        self.index_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.index_dir / ".lock"))
        try:
            lock.acquire(timeout=LOCK_TIMEOUT_S)
        except Timeout:
            raise RagError(
                f"another process has held {self.index_dir / '.lock'} for "
                f"{LOCK_TIMEOUT_S:.0f}s; wait for it, or delete the lock file if no "
                f"`rag` process is running"
            ) from None
        try:
            yield
        finally:
            lock.release()

    @property
    def watch_folder(self) -> Path | None:
        return self.index_dir  # each commit replaces its manifest

    def stamp(self) -> Hashable | None:
        try:
            st = os.stat(self._manifest)  # per question: a str, not a Path, to stat
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns)

    def load(self) -> StoredIndex:
        return store.load_index(self.index_dir)

    def commit(self, old: StoredIndex | None, change: Change) -> StoredIndex:
        empty = np.zeros((0, change.dimension), np.float32)
        chunks, chunk_vecs = merge_rows(
            old.chunks if old else (),
            old.chunk_vectors() if old else empty,
            change.kept,
            change.chunks,
            change.chunk_vectors,
        )
        old_sent_vecs = old.sentence_vectors if old else empty
        assert isinstance(old_sent_vecs, np.ndarray)  # a folder index holds them all
        sents, sent_vecs = merge_rows(
            old.sentences if old else (),
            old_sent_vecs,
            change.kept,
            change.sentences,
            change.sentence_vectors,
        )
        index = store.build_faiss(chunk_vecs, change.dimension, self.ann_threshold)
        manifest = {**change.manifest, "faiss": store.faiss_params(index)}
        written = store.write_index(self.index_dir, manifest, chunks, index, sents, sent_vecs)
        return StoredIndex(written, tuple(chunks), FaissVectors(index), tuple(sents), sent_vecs)

    def save_manifest(self, manifest: dict[str, Any]) -> None:
        store.write_manifest(self.index_dir, manifest)

    def save_text(self, doc: Document) -> dict[str, Any]:
        return store.cache_text(self.index_dir, doc)

    def read_text(self, record: dict[str, Any]) -> str | None:
        return store.read_cached_text(self.index_dir, record)


def open_backend(settings: Settings) -> Backend:
    """The store ``settings`` select: the FAISS folder, or PostgreSQL + pgvector.

    Example:
        >>> open_backend(Settings(index_dir=Path("index"))).location
        'index'
    """
    if settings.store == "pgvector":
        from rag.index.stores.pgvector import PgBackend

        assert settings.pg_url is not None  # Settings checks it
        return PgBackend(settings.pg_url, settings.pg_schema, settings.ann_threshold)
    return FolderBackend(settings.index_dir, settings.ann_threshold)
