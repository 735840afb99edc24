"""The index in PostgreSQL + pgvector, for app replicas that share one index.

Owns the schema (manifest, chunks, sentences and the text of every source in
one database schema, so app replicas need nothing but the URL), applying a
refresh in one transaction (deletes and inserts by content-hash id, so readers
see the old index or the new one), the advisory lock that serialises writers
across machines, and turning database failures into one-line errors that name
the URL with its password redacted. What changed is decided by `rag.index.build`,
as for the FAISS folder.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Hashable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from rag.embedding.base import Vectors
from rag.errors import (
    IndexCorruptError,
    IndexNotFoundError,
    RagError,
    StoreUnavailableError,
    redact_url,
)
from rag.index.stores.base import LOCK_TIMEOUT_S, Change, merge_rows
from rag.index.stores.folder import FORMAT_VERSION, Span, StoredIndex, new_generation
from rag.types import Chunk, Document

log = logging.getLogger(__name__)

# pgvector's HNSW build parameters (its defaults) and the search depth FAISS HNSW uses.
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
HNSW_EF_SEARCH = 128
CONNECT_TIMEOUT_S = 5
_ROWS = "id, source, start_char, end_char, body"
_TEXTS_TABLE = "CREATE TABLE IF NOT EXISTS {table} (sha256 text PRIMARY KEY, body text NOT NULL)"
_ORDER = 'ORDER BY source COLLATE "C", start_char, end_char, id'  # = Python's (source, start)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class PgVectors:
    """Chunk vectors in the ``chunks`` table, searched in SQL.

    Exact (a scan) below the ANN threshold, as FAISS flat is; pgvector's HNSW
    index (``vector_ip_ops``) from there on.
    """

    def __init__(self, backend: PgBackend, ids: Sequence[str], dimension: int, exact: bool):
        self._backend = backend
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
        table, n = self._backend.table("chunks"), min(k, len(self._ids))
        with self._backend.connection() as conn:
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
        with self._backend.connection() as conn:
            found = dict(
                conn.execute(
                    f"SELECT id, embedding <#> %s FROM {self._backend.table('chunks')} "
                    "WHERE id = ANY(%s)",
                    (q, ids),
                ).fetchall()
            )
        return [-float(found[i]) if i in found else -1.0 for i in ids]

    def vectors(self, rows: Sequence[int]) -> Vectors:
        if not len(rows):
            return np.zeros((0, self._dimension), dtype=np.float32)
        ids = [self._ids[r] for r in rows]
        with self._backend.connection() as conn:
            found = dict(
                conn.execute(
                    f"SELECT id, embedding FROM {self._backend.table('chunks')} WHERE id = ANY(%s)",
                    (ids,),
                ).fetchall()
            )
        missing = [i for i in ids if i not in found]
        if missing:
            raise IndexCorruptError(
                f"{len(missing)} chunk vectors missing from {self._backend.location}; "
                "run `rag index --rebuild` to rebuild it from the seeds"
            )
        return np.stack([_array(found[i]) for i in ids])

    def params(self) -> dict[str, Any]:
        return _params(self.exact)


class PgSentenceVectors:
    """Sentence vectors read from the ``sentences`` table on demand, by row.

    Quote selection reads the few dozen sentences of the retrieved chunks, so a
    process keeps no other sentence vector in memory (a bounded cache aside).
    ``[rows]`` and ``[a:b]`` return float32 arrays, as NumPy indexing does.
    """

    CACHE_ROWS = 20_000

    def __init__(self, backend: PgBackend, ids: Sequence[str], dimension: int) -> None:
        self._backend = backend
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
        with self._backend.connection() as conn:
            found = dict(
                conn.cursor(binary=True)
                .execute(
                    f"SELECT id, embedding FROM {self._backend.table('sentences')} "
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
                    "sentence %s left %s since this process loaded it", i, self._backend.location
                )
                self._cache[r] = np.zeros(self._dimension, dtype=np.float32)


def _array(value: Any) -> Vectors:
    """A vector column as float32 (binary cursors give pgvector's `Vector`)."""
    if hasattr(value, "to_numpy"):
        value = value.to_numpy()
    return np.asarray(value, dtype=np.float32)


def _params(exact: bool) -> dict[str, Any]:
    return {
        "type": "pgvector",
        "search": "exact" if exact else "hnsw",
        "m": HNSW_M,
        "ef_construction": HNSW_EF_CONSTRUCTION,
        "ef_search": HNSW_EF_SEARCH,
    }


class PgBackend:
    """One index in one schema of a PostgreSQL database with pgvector.

    Example:
        >>> PgBackend("postgresql://app:pw@db/rag", "seedrag", 50_000).location
        "postgresql://app:***@db/rag (schema 'seedrag')"
    """

    def __init__(self, url: str, schema: str, ann_threshold: int) -> None:
        self.url = url
        self.schema = schema
        self.ann_threshold = ann_threshold
        self._conn: Any = None
        self._conn_lock = threading.Lock()
        self._writer: Any = None  # the connection holding the advisory lock
        self._texts_ready = False  # the texts table is known to exist

    @property
    def location(self) -> str:
        return f"{redact_url(self.url)} (schema {self.schema!r})"

    def table(self, name: str) -> str:
        """A table name qualified by this index's schema (validated by `Settings`)."""
        return f'"{self.schema}"."{name}"'

    # -- connections ---------------------------------------------------------

    def _connect(self) -> Any:
        import psycopg
        from pgvector.psycopg import register_vector

        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.Error as exc:
            raise StoreUnavailableError(
                f"cannot connect to PostgreSQL at {redact_url(self.url)}: "
                f"{redact_url(_first_line(exc))}; check that the server is running and that "
                "--pg-url (or SEEDRAG_PG_URL) is right"
            ) from None
        try:
            if (
                conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone()
                is None
            ):
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            register_vector(conn)
        except psycopg.Error as exc:
            conn.close()
            raise StoreUnavailableError(
                f"pgvector is not available in the database at {redact_url(self.url)} "
                f"({_first_line(exc)}); install pgvector on the server "
                "(https://github.com/pgvector/pgvector) and run `CREATE EXTENSION vector;` "
                "as a superuser"
            ) from None
        return conn

    @contextlib.contextmanager
    def connection(self) -> Iterator[Any]:
        """The shared reading connection (reconnected when the server dropped it)."""
        import psycopg

        with self._conn_lock:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = self._connect()
            try:
                yield self._conn
            except psycopg.OperationalError as exc:
                with contextlib.suppress(psycopg.Error):
                    self._conn.close()
                self._conn = None
                raise StoreUnavailableError(
                    f"lost the connection to PostgreSQL at {redact_url(self.url)}: "
                    f"{redact_url(_first_line(exc))}"
                ) from None

    def close(self) -> None:
        """Close the reading connection (a later call opens a new one)."""
        with self._conn_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Database errors of a write as one-line errors; the transaction is rolled back."""
        import psycopg

        try:
            yield
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(
                f"lost PostgreSQL at {redact_url(self.url)} while writing the index "
                f"({redact_url(_first_line(exc))}); the index is unchanged"
            ) from None
        except psycopg.Error as exc:
            raise RagError(
                f"PostgreSQL at {redact_url(self.url)} refused the refresh "
                f"({redact_url(_first_line(exc))}); the index is unchanged"
            ) from None

    # -- the Backend contract -----------------------------------------------

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        conn = self._connect()
        key = f"seedrag:{self.schema}"
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        try:
            while not conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (key,)).fetchone()[
                0
            ]:
                if time.monotonic() > deadline:
                    raise RagError(
                        f"another process has been refreshing the index in {self.location} for "
                        f"{LOCK_TIMEOUT_S:.0f}s; wait for it (the lock is freed when its "
                        "connection closes)"
                    )
                time.sleep(0.2)
            self._writer = conn
            yield
        finally:
            self._writer = None
            conn.close()  # also releases the session's advisory lock

    @property
    def watch_folder(self) -> Path | None:
        return None  # a commit changes the database, not a local folder

    def stamp(self) -> Hashable | None:
        import psycopg

        with self.connection() as conn:
            try:
                row = conn.execute(
                    f"SELECT generation FROM {self.table('manifest')} WHERE id = 1"
                ).fetchone()
            except psycopg.errors.UndefinedTable:
                return None
        return None if row is None else str(row[0])

    def load(self) -> StoredIndex:
        import psycopg

        try:
            return self._load()
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
            raise IndexCorruptError(
                f"index in {self.location} is missing a table or column ({_first_line(exc)}); "
                "run `rag index --rebuild` to rebuild it from the seeds"
            ) from None

    def _load(self) -> StoredIndex:
        with self.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            found = conn.execute(
                "SELECT to_regclass(%s)", (f'"{self.schema}"."manifest"',)
            ).fetchone()[0]
            head = None
            if found is not None:
                head = conn.execute(
                    f"SELECT body FROM {self.table('manifest')} WHERE id = 1"
                ).fetchone()
            if head is None:
                raise IndexNotFoundError(
                    f"no index in {self.location}: run `rag index --store pgvector` to build it"
                )
            manifest = head[0]
            if manifest.get("format_version") != FORMAT_VERSION:
                raise IndexCorruptError(
                    f"index format version {manifest.get('format_version')!r} in "
                    f"{self.location} is not {FORMAT_VERSION}; run `rag index --rebuild`"
                )
            chunk_rows = conn.execute(f"SELECT {_ROWS} FROM {self.table('chunks')} {_ORDER}")
            chunks = tuple(Chunk(*r) for r in chunk_rows.fetchall())
            sent_rows = conn.execute(
                f"SELECT {_ROWS} FROM {self.table('sentences')} {_ORDER}"
            ).fetchall()
        dimension = int(manifest["model"]["dimension"])
        sentences = tuple(Span(r[1], r[2], r[3], r[4]) for r in sent_rows)
        sent_vecs = PgSentenceVectors(self, [r[0] for r in sent_rows], dimension)
        counts = manifest.get("counts", {})
        if counts.get("chunks") != len(chunks) or counts.get("sentences") != len(sentences):
            raise IndexCorruptError(
                f"index in {self.location} is inconsistent: {len(chunks)} chunks and "
                f"{len(sentences)} sentences, manifest says {counts}; run `rag index --rebuild`"
            )
        exact = manifest.get("store", {}).get("search") != "hnsw"
        return StoredIndex(
            manifest,
            chunks,
            PgVectors(self, [c.id for c in chunks], dimension, exact),
            sentences,
            sent_vecs,
        )

    def commit(self, old: StoredIndex | None, change: Change) -> StoredIndex:
        kept = change.kept
        chunks = _merged(old.chunks if old else (), kept, change.chunks)
        sents = _merged(old.sentences if old else (), kept, change.sentences)
        # Ids of every row involved, computed once (a sentence's id hashes its text).
        sent_ids = {x: _row_id(x) for x in (*(old.sentences if old else ()), *change.sentences)}
        exact = len(chunks) < self.ann_threshold
        manifest = {
            **change.manifest,
            "store": _params(exact),
            "format_version": FORMAT_VERSION,
            "generation": new_generation(),
            "counts": {"chunks": len(chunks), "sentences": len(sents)},
        }
        with self._write_transaction() as conn:
            if old is None:
                self._create(conn, change.dimension)
            self._apply(
                conn,
                "chunks",
                {c.id: c.source for c in (old.chunks if old else ())},
                change.chunks,
                [c.id for c in change.chunks],
                change.chunk_vectors,
                kept,
            )
            self._apply(
                conn,
                "sentences",
                {sent_ids[x]: x.source for x in (old.sentences if old else ())},
                change.sentences,
                [sent_ids[x] for x in change.sentences],
                change.sentence_vectors,
                kept,
            )
            if old is None:  # built after the rows are in: much faster than row by row
                conn.execute(
                    f'CREATE INDEX "chunks_embedding" ON {self.table("chunks")} '
                    f"USING hnsw (embedding vector_ip_ops) "
                    f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"
                )
            self._write_manifest(conn, manifest)
            texts = [r["sha256"] for r in manifest["sources"].values() if r.get("text")]
            conn.execute(f"DELETE FROM {self.table('texts')} WHERE sha256 <> ALL(%s)", (texts,))
        log.info("committed generation %s to %s", manifest["generation"], self.location)
        return StoredIndex(
            manifest,
            tuple(chunks),
            PgVectors(self, [c.id for c in chunks], change.dimension, exact),
            tuple(sents),
            PgSentenceVectors(self, [sent_ids[x] for x in sents], change.dimension),
        )

    @contextlib.contextmanager
    def _write_transaction(self) -> Iterator[Any]:
        """One transaction on the lock holder's connection (or a connection of its own)."""
        conn = self._writer or self._connect()
        try:
            with self._writing(), conn.transaction():
                yield conn
        finally:
            if conn is not self._writer:
                conn.close()

    def _create(self, conn: Any, dimension: int) -> None:
        """Fresh tables for a full build (inside the commit's transaction)."""
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
        for name in ("chunks", "sentences"):
            conn.execute(f"DROP TABLE IF EXISTS {self.table(name)}")
            conn.execute(
                f"CREATE TABLE {self.table(name)} (id text PRIMARY KEY, source text NOT NULL, "
                "start_char integer NOT NULL, end_char integer NOT NULL, body text NOT NULL, "
                f"embedding vector({int(dimension)}) NOT NULL)"
            )
            # Keep vectors in the row (not TOAST): an exact scan reads each one once.
            conn.execute(f"ALTER TABLE {self.table(name)} ALTER COLUMN embedding SET STORAGE PLAIN")
            conn.execute(f'CREATE INDEX "{name}_source" ON {self.table(name)} (source)')
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table('manifest')} (id integer PRIMARY KEY "
            "CHECK (id = 1), generation text NOT NULL, body jsonb NOT NULL)"
        )
        conn.execute(_TEXTS_TABLE.format(table=self.table("texts")))

    def _apply(
        self,
        conn: Any,
        name: str,
        held: dict[str, str],
        new_rows: Sequence[Chunk | Span],
        new_ids: list[str],
        vectors: Vectors,
        kept: frozenset[str],
    ) -> None:
        """Delete rows of sources not kept, insert rows not stored yet: by content-hash id.

        ``held`` maps the ids the table holds now to their sources.
        """
        table = self.table(name)
        wanted = set(new_ids)
        present = kept | {r.source for r in new_rows}
        removed = sorted({src for src in held.values() if src not in present})
        if removed:
            conn.execute(f"DELETE FROM {table} WHERE source = ANY(%s)", (removed,))
        gone = [i for i, src in held.items() if src in present and src not in kept]
        gone = [i for i in gone if i not in wanted]
        if gone:
            conn.execute(f"DELETE FROM {table} WHERE id = ANY(%s)", (gone,))
        todo = [i for i, cid in enumerate(new_ids) if cid not in held]
        if todo:
            with conn.cursor().copy(
                f"COPY {table} (id, source, start_char, end_char, body, embedding) "
                "FROM STDIN WITH (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["text", "text", "int4", "int4", "text", "vector"])
                for i in todo:
                    r = new_rows[i]
                    copy.write_row([new_ids[i], r.source, r.start, r.end, r.text, vectors[i]])

    def _write_manifest(self, conn: Any, manifest: dict[str, Any]) -> None:
        from psycopg.types.json import Jsonb

        conn.execute(
            f"INSERT INTO {self.table('manifest')} (id, generation, body) VALUES (1, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET generation = EXCLUDED.generation, body = EXCLUDED.body",
            (manifest["generation"], Jsonb(manifest)),
        )

    def save_manifest(self, manifest: dict[str, Any]) -> None:
        with self._write_transaction() as conn:
            self._write_manifest(conn, {**manifest, "generation": new_generation()})

    def save_text(self, doc: Document) -> dict[str, Any]:
        """Keep every source's text, plain text included: replicas need no seeds folder."""
        with self.connection() as conn:
            if not self._texts_ready:  # once per process, not once per document
                conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                conn.execute(_TEXTS_TABLE.format(table=self.table("texts")))
                self._texts_ready = True
            conn.execute(
                f"INSERT INTO {self.table('texts')} (sha256, body) VALUES (%s, %s) "
                "ON CONFLICT (sha256) DO NOTHING",
                (doc.sha256, doc.text),
            )
        fields: dict[str, Any] = {"text": f"pg:{doc.sha256}"}
        if doc.pages:
            fields["pages"] = [list(p) for p in doc.pages]
        return fields

    def read_text(self, record: dict[str, Any]) -> str | None:
        if not record.get("text"):
            return None
        with self.connection() as conn:
            row = conn.execute(
                f"SELECT body FROM {self.table('texts')} WHERE sha256 = %s", (record["sha256"],)
            ).fetchone()
        return None if row is None else str(row[0])


Row = TypeVar("Row", Chunk, Span)


def _merged(old: Sequence[Row], kept: frozenset[str], new: list[Row]) -> list[Row]:
    """`merge_rows` without vectors: those stay in the database."""
    none = np.zeros((len(old), 0), np.float32)
    return merge_rows(old, none, kept, new, np.zeros((len(new), 0), np.float32))[0]


def _row_id(row: Chunk | Span) -> str:
    if isinstance(row, Chunk):
        return row.id
    from rag.text.chunk import chunk_id

    return chunk_id(row.source, row.start, row.end, row.text)
