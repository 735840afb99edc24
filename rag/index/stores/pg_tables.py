"""The tables of a pgvector index: their schema, and applying a refresh's rows to them.

Chunks and sentences share one layout (content-hash id, source, offsets, text, vector);
``manifest`` holds the generation's manifest and ``texts`` every source's text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

import numpy as np

from rag.index.stores.base import merge_rows
from rag.types import Chunk, Sentence, Vectors

ROWS = "id, source, start_char, end_char, body"
TEXTS_TABLE = "CREATE TABLE IF NOT EXISTS {table} (sha256 text PRIMARY KEY, body text NOT NULL)"
ORDER = 'ORDER BY source COLLATE "C", start_char, end_char, id'  # = Python's (source, start)


class SchemaTables(Protocol):
    """The schema that holds the tables."""

    @property
    def schema(self) -> str:
        """The schema's (validated) name."""
        ...

    def table(self, name: str) -> str:
        """The quoted, schema-qualified name of table ``name``."""
        ...


def create_tables(conn: Any, tables: SchemaTables, dimension: int) -> None:
    """Fresh tables for a full build (inside the commit's transaction)."""
    conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{tables.schema}"')
    for name in ("chunks", "sentences"):
        conn.execute(f"DROP TABLE IF EXISTS {tables.table(name)}")
        conn.execute(
            f"CREATE TABLE {tables.table(name)} (id text PRIMARY KEY, source text NOT NULL, "
            "start_char integer NOT NULL, end_char integer NOT NULL, body text NOT NULL, "
            f"embedding vector({int(dimension)}) NOT NULL)"
        )
        # Keep vectors in the row (not TOAST): an exact scan reads each one once.
        conn.execute(f"ALTER TABLE {tables.table(name)} ALTER COLUMN embedding SET STORAGE PLAIN")
        conn.execute(f'CREATE INDEX "{name}_source" ON {tables.table(name)} (source)')
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {tables.table('manifest')} (id integer PRIMARY KEY "
        "CHECK (id = 1), generation text NOT NULL, body jsonb NOT NULL)"
    )
    conn.execute(TEXTS_TABLE.format(table=tables.table("texts")))


def apply_rows(
    conn: Any,
    tables: SchemaTables,
    name: str,
    held: dict[str, str],
    new_rows: Sequence[Chunk | Sentence],
    new_ids: list[str],
    vectors: Vectors,
    kept: frozenset[str],
) -> None:
    """Delete rows of sources not kept, insert rows not stored yet: by content-hash id.

    ``held`` maps the ids the table holds now to their sources.
    """
    table = tables.table(name)
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


Row = TypeVar("Row", Chunk, Sentence)


def merged(old: Sequence[Row], kept: frozenset[str], new: list[Row]) -> list[Row]:
    """`merge_rows` without vectors (those stay in the database)."""
    none = np.zeros((len(old), 0), np.float32)
    return merge_rows(old, none, kept, new, np.zeros((len(new), 0), np.float32))[0]


def row_id(row: Chunk | Sentence) -> str:
    if isinstance(row, Chunk):
        return row.id
    from rag.text.chunk import chunk_id

    return chunk_id(row.source, row.start, row.end, row.text)
