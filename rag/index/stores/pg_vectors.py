"""The vectors of a pgvector index, read and searched in SQL: the `VectorIndex` of its
chunks (`PgVectors`) and the `RowVectors` of its sentences (`PgSentenceVectors`).

Both reach the database through a `Tables` (the store that made them), so they never
hold a connection of their own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import numpy as np

from rag.errors import IndexCorruptError
from rag.types import Vectors

log = logging.getLogger(__name__)

# pgvector's HNSW build parameters (its defaults), and the search depth FAISS HNSW uses.
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
HNSW_EF_SEARCH = 128


class Tables(Protocol):
    """What the vector readers need of their store."""

    @property
    def location(self) -> str:
        """The database and schema, for messages (password redacted)."""
        ...

    def connection(self) -> AbstractContextManager[Any]:
        """A pooled connection, returned when the block ends."""
        ...

    def table(self, name: str) -> str:
        """The quoted, schema-qualified name of table ``name``."""
        ...


class PgVectors:
    """Chunk vectors in the ``chunks`` table, searched in SQL.

    Exact (a scan) below the ANN threshold, as FAISS flat is; pgvector's HNSW
    index (``vector_ip_ops``) from there on.
    """

    def __init__(self, store: Tables, ids: Sequence[str], dimension: int, exact: bool):
        self._store = store
        self._ids = tuple(ids)
        self._row = {cid: row for row, cid in enumerate(self._ids)}
        self._dimension = dimension
        self.exact = exact

    @property
    def dimension(self) -> int:
        return self._dimension

    def count(self) -> int:
        return len(self._ids)

    def search(self, query: Vectors, k: int) -> list[tuple[int, float]]:
        if not self._ids or k < 1:
            return []
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(-1)
        table, n = self._store.table("chunks"), min(k, len(self._ids))
        with self._store.connection() as conn:
            if self.exact:
                # "+ 0" hides the ordering from the HNSW index: an exact scan, one round trip.
                rows = conn.execute(
                    f"SELECT id, embedding <#> %s FROM {table} ORDER BY (embedding <#> %s) + 0 "
                    "LIMIT %s",
                    (q, q, n),
                ).fetchall()
            else:
                with conn.pipeline(), conn.transaction():  # one round trip, settings local
                    conn.execute("SET LOCAL enable_seqscan = off")
                    conn.execute(f"SET LOCAL hnsw.ef_search = {max(HNSW_EF_SEARCH, k)}")
                    cur = conn.execute(
                        f"SELECT id, embedding <#> %s FROM {table} ORDER BY embedding <#> %s "
                        "LIMIT %s",
                        (q, q, n),
                    )
                rows = cur.fetchall()
        # A chunk committed after this process loaded its generation is not one of
        # its rows: skipped here, and the next question reloads the generation.
        return [(self._row[cid], -float(d)) for cid, d in rows if cid in self._row]

    def nearest(self, query: Vectors, k: int) -> list[int]:
        return [row for row, _ in self.search(query, k)]

    def scores(self, query: Vectors, rows: Sequence[int]) -> list[float]:
        if not len(rows):
            return []
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(-1)
        ids = [self._ids[r] for r in rows]
        with self._store.connection() as conn:
            found = dict(
                conn.execute(
                    f"SELECT id, embedding <#> %s FROM {self._store.table('chunks')} "
                    "WHERE id = ANY(%s)",
                    (q, ids),
                ).fetchall()
            )
        return [-float(found[i]) if i in found else -1.0 for i in ids]

    def vectors(self, rows: Sequence[int]) -> Vectors:
        if not len(rows):
            return np.zeros((0, self._dimension), dtype=np.float32)
        ids = [self._ids[r] for r in rows]
        with self._store.connection() as conn:
            found = dict(
                conn.execute(
                    f"SELECT id, embedding FROM {self._store.table('chunks')} WHERE id = ANY(%s)",
                    (ids,),
                ).fetchall()
            )
        missing = [i for i in ids if i not in found]
        if missing:
            raise IndexCorruptError(
                f"{len(missing)} chunk vectors missing from {self._store.location}; "
                "run `rag index --rebuild` to rebuild it from the seeds"
            )
        return np.stack([_array(found[i]) for i in ids])

    def params(self) -> dict[str, Any]:
        return search_params(self.exact)


class PgSentenceVectors:
    """Sentence vectors read from the ``sentences`` table on demand, by row.

    Quote selection reads the few dozen sentences of the retrieved chunks, so a
    process keeps no other sentence vector in memory (a bounded cache aside).
    ``[rows]`` and ``[a:b]`` return float32 arrays, as NumPy indexing does.
    """

    CACHE_ROWS = 20_000

    def __init__(self, store: Tables, ids: Sequence[str], dimension: int) -> None:
        self._store = store
        self._ids = tuple(ids)
        self._dimension = dimension
        self._cache: dict[int, Vectors] = {}
        self._lock = threading.Lock()

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self._ids), self._dimension)

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, key: slice | Sequence[int]) -> Vectors:
        rows = range(*key.indices(len(self._ids))) if isinstance(key, slice) else key
        rows = [int(r) for r in rows]
        if not rows:
            return np.zeros((0, self._dimension), dtype=np.float32)
        with self._lock:
            missing = sorted({r for r in rows if r not in self._cache})
            if len(self._cache) + len(missing) > self.CACHE_ROWS:
                self._cache.clear()  # bounded memory: start again from these rows
                missing = sorted(set(rows))
            if missing:
                self._fetch(missing)
            return np.stack([self._cache[r] for r in rows])

    def _fetch(self, rows: list[int]) -> None:
        ids = [self._ids[r] for r in rows]
        with self._store.connection() as conn:
            found = dict(
                conn.cursor(binary=True)
                .execute(
                    f"SELECT id, embedding FROM {self._store.table('sentences')} "
                    "WHERE id = ANY(%s)",
                    (ids,),
                )
                .fetchall()
            )
        for r, i in zip(rows, ids, strict=True):
            if i in found:
                self._cache[r] = _array(found[i])
            else:
                # Deleted by a refresh committed after this generation was loaded: the
                # sentence scores nothing now, and the next question reloads.
                log.info(
                    "sentence %s left %s since this process loaded it", i, self._store.location
                )
                self._cache[r] = np.zeros(self._dimension, dtype=np.float32)


def _array(value: Any) -> Vectors:
    """A vector column as float32 (binary cursors give pgvector's `Vector`)."""
    if hasattr(value, "to_numpy"):
        value = value.to_numpy()
    return np.asarray(value, dtype=np.float32)


def search_params(exact: bool) -> dict[str, Any]:
    """What the manifest records about the chunk vectors' search."""
    return {
        "type": "pgvector",
        "search": "exact" if exact else "hnsw",
        "m": HNSW_M,
        "ef_construction": HNSW_EF_CONSTRUCTION,
        "ef_search": HNSW_EF_SEARCH,
    }
