"""The one place that names store implementations: `Settings` in, a `Store` out."""

from __future__ import annotations

from rag.config import Settings
from rag.index.stores.base import Store
from rag.index.stores.folder import FolderStore


def open_store(settings: Settings) -> Store:
    """The store ``settings`` select: the FAISS folder, or PostgreSQL + pgvector.

    Example:
        >>> from pathlib import Path
        >>> open_store(Settings(index_dir=Path("index"))).location
        'index'
    """
    if settings.store == "pgvector":
        from rag.index.stores.pgvector import PgvectorStore

        assert settings.pg_url is not None  # Settings checks it
        return PgvectorStore(settings.pg_url, settings.pg_schema, settings.ann_threshold)
    return FolderStore(settings.index_dir, settings.ann_threshold)
