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
from collections.abc import Hashable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from rag.errors import (
    IndexCorruptError,
    IndexNotFoundError,
    IndexWriteError,
    RagError,
    StoreUnavailableError,
    redact_url,
)
from rag.index.manifest import FORMAT_VERSION, check_version, new_generation
from rag.index.stores.base import LOCK_TIMEOUT_S, Change
from rag.index.stores.pg_tables import (
    ORDER,
    ROWS,
    TEXTS_TABLE,
    apply_rows,
    create_tables,
    merged,
    row_id,
)
from rag.index.stores.pg_vectors import (
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    PgSentenceVectors,
    PgVectors,
    search_params,
)
from rag.types import Chunk, Document, Manifest, Sentence, SourceRecord, StoredIndex

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class PgvectorStore:
    """One index in one schema of a PostgreSQL database with pgvector.

    Example:
        >>> PgvectorStore("postgresql://app:pw@db/rag", "seedrag", 50_000).location
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
        except psycopg.errors.DiskFull as exc:
            raise IndexWriteError(
                f"PostgreSQL at {redact_url(self.url)} has no space left for the refresh "
                f"({redact_url(_first_line(exc))}); the index is unchanged and keeps "
                "answering: free space on the database server, then run `rag index`"
            ) from None
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(
                f"lost PostgreSQL at {redact_url(self.url)} while writing the index "
                f"({redact_url(_first_line(exc))}); the index is unchanged"
            ) from None
        except psycopg.Error as exc:
            raise IndexWriteError(
                f"PostgreSQL at {redact_url(self.url)} refused the refresh "
                f"({redact_url(_first_line(exc))}); the index is unchanged"
            ) from None

    # -- the Store contract -----------------------------------------------

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
            check_version(head[0].get("format_version"), self.location)
            manifest = Manifest.from_json(head[0])
            chunk_rows = conn.execute(f"SELECT {ROWS} FROM {self.table('chunks')} {ORDER}")
            chunks = tuple(Chunk(*r) for r in chunk_rows.fetchall())
            sent_rows = conn.execute(
                f"SELECT {ROWS} FROM {self.table('sentences')} {ORDER}"
            ).fetchall()
        dimension = manifest.dimension
        sentences = tuple(Sentence(r[1], r[2], r[3], r[4]) for r in sent_rows)
        sent_vecs = PgSentenceVectors(self, [r[0] for r in sent_rows], dimension)
        counts = manifest.counts
        if counts.get("chunks") != len(chunks) or counts.get("sentences") != len(sentences):
            raise IndexCorruptError(
                f"index in {self.location} is inconsistent: {len(chunks)} chunks and "
                f"{len(sentences)} sentences, manifest says {counts}; run `rag index --rebuild`"
            )
        exact = manifest.store.get("search") != "hnsw"
        return StoredIndex(
            manifest,
            chunks,
            PgVectors(self, [c.id for c in chunks], dimension, exact),
            sentences,
            sent_vecs,
        )

    def commit(self, old: StoredIndex | None, change: Change) -> StoredIndex:
        kept = change.kept
        chunks = merged(old.chunks if old else (), kept, change.chunks)
        sents = merged(old.sentences if old else (), kept, change.sentences)
        # Ids of every row involved, computed once (a sentence's id hashes its text).
        sent_ids = {x: row_id(x) for x in (*(old.sentences if old else ()), *change.sentences)}
        exact = len(chunks) < self.ann_threshold
        manifest = replace(
            change.manifest,
            store=search_params(exact),
            format_version=FORMAT_VERSION,
            generation=new_generation(),
            counts={"chunks": len(chunks), "sentences": len(sents)},
        )
        with self._write_transaction() as conn:
            if old is None:
                create_tables(conn, self, change.dimension)
            apply_rows(
                conn,
                self,
                "chunks",
                {c.id: c.source for c in (old.chunks if old else ())},
                change.chunks,
                [c.id for c in change.chunks],
                change.chunk_vectors,
                kept,
            )
            apply_rows(
                conn,
                self,
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
            texts = [r.sha256 for r in manifest.sources.values() if r.text]
            conn.execute(f"DELETE FROM {self.table('texts')} WHERE sha256 <> ALL(%s)", (texts,))
        log.info("committed generation %s to %s", manifest.generation, self.location)
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

    def _write_manifest(self, conn: Any, manifest: Manifest) -> None:
        from psycopg.types.json import Jsonb

        conn.execute(
            f"INSERT INTO {self.table('manifest')} (id, generation, body) VALUES (1, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET generation = EXCLUDED.generation, body = EXCLUDED.body",
            (manifest.generation, Jsonb(manifest.to_json())),
        )

    def save_manifest(self, manifest: Manifest) -> None:
        with self._write_transaction() as conn:
            self._write_manifest(conn, replace(manifest, generation=new_generation()))

    def save_text(self, doc: Document) -> str | None:
        """Keep every source's text, plain text included: replicas need no seeds folder."""
        with self.connection() as conn:
            if not self._texts_ready:  # once per process, not once per document
                conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                conn.execute(TEXTS_TABLE.format(table=self.table("texts")))
                self._texts_ready = True
            conn.execute(
                f"INSERT INTO {self.table('texts')} (sha256, body) VALUES (%s, %s) "
                "ON CONFLICT (sha256) DO NOTHING",
                (doc.sha256, doc.text),
            )
        return f"pg:{doc.sha256}"

    def read_text(self, record: SourceRecord) -> str | None:
        if not record.text:
            return None
        with self.connection() as conn:
            row = conn.execute(
                f"SELECT body FROM {self.table('texts')} WHERE sha256 = %s", (record.sha256,)
            ).fetchone()
        return None if row is None else str(row[0])
