"""What the index keeps and reports: the manifest and its records of sources, one stored
generation (`StoredIndex`), the seams through which a store hands out vectors
(`VectorIndex`, `RowVectors`), and what a build or a status check reports. No behaviour
beyond (de)serialising the manifest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

from rag.types.documents import Chunk, Sentence, Vectors


@dataclass(frozen=True)
class IndexReport:
    """What a build or refresh did. Source counts, then chunk counts."""

    added: int
    updated: int
    unchanged: int
    deleted: int
    chunks_embedded: int
    chunks_total: int
    documents: int
    seconds: float
    skipped: tuple[str, ...] = ()
    full_rebuild_reason: str | None = None

    @property
    def changed(self) -> bool:
        """True when the index on disk was rewritten."""
        return bool(self.added or self.updated or self.deleted or self.full_rebuild_reason)

    def to_dict(self) -> dict[str, object]:
        """The JSON shape printed by ``rag index --json``."""
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "chunks_embedded": self.chunks_embedded,
            "chunks_total": self.chunks_total,
            "documents": self.documents,
            "seconds": round(self.seconds, 3),
            "skipped": list(self.skipped),
            "full_rebuild_reason": self.full_rebuild_reason,
        }


class VectorIndex(Protocol):
    """The chunk vectors of one generation of the index; row i is ``StoredIndex.chunks[i]``."""

    @property
    def dimension(self) -> int:
        """Length of each vector."""
        ...

    def count(self) -> int:
        """How many chunk vectors the index holds."""
        ...

    def search(self, query: Vectors, k: int) -> list[tuple[int, float]]:
        """``(row, cosine)`` of the ``k`` nearest chunks, best first."""
        ...

    def nearest(self, query: Vectors, k: int) -> list[int]:
        """Rows of the ``k`` nearest chunks, best first, for a caller that re-ranks them:
        a store may rank them from a compact copy of the vectors."""
        ...

    def scores(self, query: Vectors, rows: Sequence[int]) -> list[float]:
        """Cosine of ``query`` with each of ``rows``."""
        ...

    def vectors(self, rows: Sequence[int]) -> Vectors:
        """The stored vectors of ``rows``, in that order."""
        ...

    def params(self) -> dict[str, Any]:
        """What the manifest records about the index: type and search parameters."""
        ...


class RowVectors(Protocol):
    """Vectors read by row, ``[rows]`` or ``[a:b]``, without holding them all (pgvector)."""

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, dimension)."""
        ...

    def __getitem__(self, key: slice | Sequence[int]) -> Vectors:
        """The rows ``key`` names, as a float32 array."""
        ...


@dataclass(frozen=True)
class SourceRecord:
    """The manifest's record of one source file, indexed or skipped.

    ``text`` names the cached extracted text of a non-plain source (HTML, PDF) in its
    store and ``text_sha256`` is that text's hash, checked when it is read; ``pages``
    holds a PDF's ``(page, start, end)`` spans and ``page_labels`` its labels (None where
    the index predates labels: the next refresh adds them); ``reason`` says why a
    skipped file was not indexed.
    """

    size: int
    mtime_ns: int
    checked_ns: int = 0
    sha256: str = ""
    chunks: int = 0
    sentences: int = 0
    text: str | None = None
    text_sha256: str | None = None
    pages: tuple[tuple[int, int, int], ...] = ()
    page_labels: tuple[str, ...] | None = None
    reason: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SourceRecord:
        """The record a manifest's JSON object holds (unknown keys are ignored)."""
        labels = data.get("page_labels")
        return cls(
            size=int(data.get("size", 0)),
            mtime_ns=int(data.get("mtime_ns", 0)),
            checked_ns=int(data.get("checked_ns", 0)),
            sha256=str(data.get("sha256", "")),
            chunks=int(data.get("chunks", 0)),
            sentences=int(data.get("sentences", 0)),
            text=str(data["text"]) if data.get("text") else None,
            text_sha256=str(data["text_sha256"]) if data.get("text_sha256") else None,
            pages=tuple((int(p[0]), int(p[1]), int(p[2])) for p in data.get("pages") or ()),
            page_labels=None if labels is None else tuple(str(x) for x in labels),
            reason=str(data["reason"]) if data.get("reason") else None,
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON object written to the manifest (empty optional fields left out)."""
        out: dict[str, Any] = {"size": self.size, "mtime_ns": self.mtime_ns}
        out["checked_ns"] = self.checked_ns
        if self.reason is not None:
            out["reason"] = self.reason
            return out
        out |= {"sha256": self.sha256, "chunks": self.chunks, "sentences": self.sentences}
        if self.text:
            out["text"] = self.text
        if self.text_sha256:
            out["text_sha256"] = self.text_sha256
        if self.pages:
            out["pages"] = [list(p) for p in self.pages]
        if self.page_labels is not None:
            out["page_labels"] = list(self.page_labels)
        return dict(sorted(out.items()))


@dataclass(frozen=True)
class Manifest:
    """What one generation of the index records about itself (``manifest.json``).

    The identity fields (``model``, ``splitter``, ``segmenter_version``, ``model_pass``,
    ``runtime``) must match the settings for the index to be extended incrementally;
    ``files`` and ``counts`` locate and size the generation's data; ``store`` holds what
    the store records about its vector index (type and search parameters).
    """

    generation: str = ""
    format_version: int = 1
    built_at: str = ""
    model: Mapping[str, Any] = field(default_factory=dict)  # name, dimension
    splitter: Mapping[str, Any] = field(default_factory=dict)
    segmenter_version: int = 0
    model_pass: str = ""
    seeds_dir: str = ""
    versions: Mapping[str, str] = field(default_factory=dict)
    sources: Mapping[str, SourceRecord] = field(default_factory=dict)
    skipped: Mapping[str, SourceRecord] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)
    counts: Mapping[str, int] = field(default_factory=dict)
    store: Mapping[str, Any] = field(default_factory=dict)

    @property
    def model_name(self) -> str:
        """The embedding model's name, as recorded (it names the runtime too)."""
        return str(self.model.get("name", ""))

    @property
    def dimension(self) -> int:
        """Length of the recorded vectors."""
        return int(self.model.get("dimension", 0))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Manifest:
        """The manifest a parsed ``manifest.json`` holds; ``faiss`` is the folder store's
        name for ``store``."""
        known = {f.name for f in fields(cls)} - {"sources", "skipped", "store"}
        plain = {k: v for k, v in data.items() if k in known}
        return cls(
            **plain,
            sources={k: SourceRecord.from_json(v) for k, v in (data.get("sources") or {}).items()},
            skipped={k: SourceRecord.from_json(v) for k, v in (data.get("skipped") or {}).items()},
            store=data.get("store") or data.get("faiss") or {},
        )

    def to_json(self, store_key: str = "store") -> dict[str, Any]:
        """The JSON object to write, keys sorted; ``store_key`` names the ``store`` field."""
        out: dict[str, Any] = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("sources", "skipped", "store")
        }
        out["sources"] = {k: v.to_json() for k, v in sorted(self.sources.items())}
        out["skipped"] = {k: v.to_json() for k, v in sorted(self.skipped.items())}
        if self.store:
            out[store_key] = dict(self.store)
        return {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in sorted(out.items())}


@dataclass(frozen=True)
class StoredIndex:
    """Everything one generation of the index holds; chunk vectors behind the seam."""

    manifest: Manifest
    chunks: tuple[Chunk, ...]
    chunk_index: VectorIndex  # row i is chunks[i]
    sentences: tuple[Sentence, ...]
    sentence_vectors: Vectors | RowVectors  # row i is sentences[i]

    @property
    def sources(self) -> Mapping[str, SourceRecord]:
        """Per-source record: sha256, size, mtime_ns, chunk and sentence counts."""
        return self.manifest.sources

    def chunk_vectors(self) -> Vectors:
        """All chunk vectors, row i for chunk i."""
        return self.chunk_index.vectors(range(len(self.chunks)))


@dataclass(frozen=True)
class IndexStatus:
    """What the index holds now, for status lines and the app."""

    documents: int
    chunks: int
    sentences: int
    built_at: str
    model: str
    index_dir: str  # the folder, or the database (password redacted) and schema
    seeds_dir: str
