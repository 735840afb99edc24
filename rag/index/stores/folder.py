"""The index folder on disk: read it whole, write it atomically.

Owns the file layout: ``manifest.json`` (human-readable, written last) names
the generation's data files: a FAISS file whose id i is row i of the chunk
table, the sentence table and its vectors. It does not decide what to embed.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import logging
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from rag.config import DEFAULT_ANN_THRESHOLD
from rag.embedding.base import Vectors
from rag.errors import IndexCorruptError, IndexNotFoundError
from rag.index.stores.vectors import FaissVectors, RowVectors, VectorIndex
from rag.ingest.extract import is_plain
from rag.types import Chunk, Document

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
FIX = "run `rag index --rebuild` to rebuild it from the seeds"
# HNSW parameters (used from Settings.ann_threshold chunks on), chosen in benchmarks/ann.py.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128


@dataclass(frozen=True)
class Span:
    """A sentence: ``source_text[start:end] == text``."""

    source: str
    start: int
    end: int
    text: str


class SpanLookup:
    """Which of a list of sentences overlap a character range of one source.

    The sentences of each source must be contiguous in the list, in order and disjoint, as
    a build writes them.
    """

    def __init__(self, sentences: Sequence[Span]) -> None:
        self.ranges: dict[str, tuple[int, int]] = {}
        for i, s in enumerate(sentences):
            lo, _ = self.ranges.get(s.source, (i, i))
            self.ranges[s.source] = (lo, i + 1)
        self.starts = [s.start for s in sentences]
        self.ends = [s.end for s in sentences]

    def overlapping(self, source: str, start: int, end: int) -> range:
        """Indices of the sentences of ``source`` that overlap ``[start, end)``."""
        lo, hi = self.ranges.get(source, (0, 0))
        first = bisect.bisect_right(self.ends, start, lo, hi)
        last = bisect.bisect_left(self.starts, end, first, hi)
        return range(first, last)


@dataclass(frozen=True)
class StoredIndex:
    """Everything one generation of the index holds; chunk vectors behind the seam."""

    manifest: dict[str, Any]
    chunks: tuple[Chunk, ...]
    chunk_index: VectorIndex  # row i is chunks[i]
    sentences: tuple[Span, ...]
    sentence_vectors: Vectors | RowVectors  # row i is sentences[i]

    @property
    def sources(self) -> dict[str, dict[str, Any]]:
        """Per-source record: sha256, size, mtime_ns, chunk and sentence counts."""
        return dict(self.manifest.get("sources", {}))

    def chunk_vectors(self) -> Vectors:
        """All chunk vectors, row i for chunk i."""
        if isinstance(self.chunk_index, FaissVectors):
            return self.chunk_index.all_vectors()
        return self.chunk_index.vectors(range(len(self.chunks)))


def build_faiss(
    vectors: Vectors, dimension: int, ann_threshold: int = DEFAULT_ANN_THRESHOLD
) -> Any:
    """An inner-product (cosine, for unit vectors) FAISS index over ``vectors``.

    Exact (``IndexFlatIP``) below ``ann_threshold`` vectors; from there on
    approximate (``IndexHNSWFlat``, parameters measured in benchmarks/ann.py),
    whose single-query search stays under a millisecond where exact search
    grows linearly. Both keep ``reconstruct``.

    Example:
        >>> build_faiss(np.eye(4, dtype=np.float32), 4, ann_threshold=2).hnsw.efSearch
        128
    """
    index: Any
    if len(vectors) >= ann_threshold:
        index = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        index = faiss.IndexFlatIP(dimension)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def faiss_params(index: Any) -> dict[str, Any]:
    """What the manifest records about a FAISS index: its type and search parameters."""
    return FaissVectors(index).params()


def _apply_params(index: Any, params: dict[str, Any] | None) -> str | None:
    """Set the manifest's search parameters on a loaded index; a mismatch, or None."""
    have = faiss_params(index)["type"]
    if params is not None and params.get("type") != have:
        return f"manifest says a {params.get('type')!r} vector index, the file holds {have!r}"
    if have == "hnsw":
        index.hnsw.efSearch = int((params or {}).get("efSearch", HNSW_EF_SEARCH))
    return None


def _write_json_lines(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def new_generation() -> str:
    """A fresh generation id: sortable time, then randomness against same-second writers."""
    return time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(4)


def write_index(
    index_dir: Path,
    manifest: dict[str, Any],
    chunks: list[Chunk],
    chunk_index: Any,
    sentences: list[Span],
    sentence_vectors: Vectors,
) -> dict[str, Any]:
    """Write a new generation beside the old one, then switch to it by replacing the manifest.

    Data files get fresh generation names and are fsynced before the manifest
    names them, so a reader (or a crash at any moment) sees the old index or
    the new one, never a mix. Returns the manifest as written.
    """
    index_dir.mkdir(parents=True, exist_ok=True)
    gen = new_generation()
    files = {
        "chunks": f"chunks-{gen}.jsonl",
        "vectors": f"vectors-{gen}.faiss",
        "sentences": f"sentences-{gen}.jsonl",
        "sentence_vectors": f"sentence-vectors-{gen}.npy",
    }
    _write_json_lines(
        index_dir / files["chunks"],
        [
            {"id": c.id, "source": c.source, "start": c.start, "end": c.end, "text": c.text}
            for c in chunks
        ],
    )
    faiss.write_index(chunk_index, str(index_dir / files["vectors"]))
    _fsync(index_dir / files["vectors"])
    _write_json_lines(
        index_dir / files["sentences"],
        [{"source": s.source, "start": s.start, "end": s.end, "text": s.text} for s in sentences],
    )
    with (index_dir / files["sentence_vectors"]).open("wb") as fh:
        np.save(fh, np.ascontiguousarray(sentence_vectors, dtype=np.float32))
        fh.flush()
        os.fsync(fh.fileno())
    full = {
        **manifest,
        "format_version": FORMAT_VERSION,
        "generation": gen,
        "files": files,
        "counts": {"chunks": len(chunks), "sentences": len(sentences)},
    }
    write_manifest(index_dir, full)
    _collect_garbage(index_dir, keep=set(files.values()))
    _collect_texts(index_dir, full)
    return full


def write_manifest(index_dir: Path, manifest: dict[str, Any]) -> None:
    """Atomically replace ``manifest.json`` (temp file, fsync, ``os.replace``)."""
    tmp = index_dir / f".{MANIFEST}.{secrets.token_hex(4)}.tmp"
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(manifest, fh, ensure_ascii=False, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, index_dir / MANIFEST)
    with contextlib.suppress(OSError):
        _fsync(index_dir)


def _collect_garbage(index_dir: Path, keep: set[str], grace_s: float = 60.0) -> None:
    """Delete data files of older generations once no fresh reader can still want them."""
    now = time.time()
    for path in index_dir.iterdir():
        name = path.name
        stale_tmp = name.startswith(f".{MANIFEST}.") and name.endswith(".tmp")
        data = name.startswith(("chunks-", "vectors-", "sentences-", "sentence-vectors-"))
        if (data and name not in keep) or stale_tmp:
            with contextlib.suppress(OSError):
                if now - path.stat().st_mtime > grace_s:
                    path.unlink()


TEXTS = "texts"


def cache_text(index_dir: Path, doc: Document) -> dict[str, Any]:
    """Keep the extracted text of a non-plain source (HTML, PDF) beside the index.

    Returns the manifest fields that point at it (and the PDF's page spans), or
    nothing for plain text, whose file already is its text. The cache is keyed
    by the source's sha256, so extraction is never repeated for the same bytes.
    """
    if is_plain(Path(doc.source).suffix):
        return {}
    folder = index_dir / TEXTS
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{TEXTS}/{doc.sha256}.txt"
    path = index_dir / name
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            fh.write(doc.text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    fields: dict[str, Any] = {"text": name}
    if doc.pages:
        fields["pages"] = [list(p) for p in doc.pages]
    return fields


def read_cached_text(index_dir: Path, record: dict[str, Any]) -> str | None:
    """The cached extracted text a manifest record points at, or None."""
    name = record.get("text")
    if not name:
        return None
    try:
        with (index_dir / str(name)).open(encoding="utf-8", newline="") as fh:
            return fh.read()
    except OSError:
        return None


def _collect_texts(index_dir: Path, manifest: dict[str, Any], grace_s: float = 60.0) -> None:
    """Delete cached texts no source of ``manifest`` points at (after a grace period)."""
    folder = index_dir / TEXTS
    if not folder.is_dir():
        return
    keep = {rec.get("text") for rec in manifest.get("sources", {}).values()}
    now = time.time()
    for path in folder.iterdir():
        if f"{TEXTS}/{path.name}" not in keep:
            with contextlib.suppress(OSError):
                if now - path.stat().st_mtime > grace_s:
                    path.unlink()


def read_manifest(index_dir: Path) -> dict[str, Any]:
    """The parsed manifest, or `IndexNotFoundError` / `IndexCorruptError`."""
    path = index_dir / MANIFEST
    if not path.exists():
        raise IndexNotFoundError(f"no index in {str(index_dir)!r}: run `rag index` to build it")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexCorruptError(f"unreadable manifest {path}: {exc}; {FIX}") from exc
    if not isinstance(manifest, dict):
        raise IndexCorruptError(f"manifest {path} is not a JSON object; {FIX}")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexCorruptError(
            f"index format version {version!r} in {path} is not {FORMAT_VERSION}, "
            f"the version this seedrag reads; {FIX}"
        )
    return manifest


def _read_rows(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_index(index_dir: Path, attempts: int = 3) -> StoredIndex:
    """Load the generation the manifest names, checking every file against it.

    Retries when a concurrent refresh switched generations mid-read.
    """
    for attempt in range(attempts):
        manifest = read_manifest(index_dir)
        try:
            return _load_generation(index_dir, manifest)
        except FileNotFoundError:
            if attempt == attempts - 1 or read_manifest(index_dir) == manifest:
                raise IndexCorruptError(
                    f"index files named by {index_dir / MANIFEST} are missing; {FIX}"
                ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _load_generation(index_dir: Path, manifest: dict[str, Any]) -> StoredIndex:
    try:
        files = manifest["files"]
        counts = manifest["counts"]
        dimension = int(manifest["model"]["dimension"])
        chunks = tuple(
            Chunk(r["id"], r["source"], int(r["start"]), int(r["end"]), r["text"])
            for r in _read_rows(index_dir / files["chunks"])
        )
        sentences = tuple(
            Span(r["source"], int(r["start"]), int(r["end"]), r["text"])
            for r in _read_rows(index_dir / files["sentences"])
        )
        chunk_index = faiss.read_index(str(index_dir / files["vectors"]))
        mismatch = _apply_params(chunk_index, manifest.get("faiss"))
        sentence_vectors = np.load(index_dir / files["sentence_vectors"], allow_pickle=False)
    except FileNotFoundError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, OSError, AttributeError) as exc:
        raise IndexCorruptError(f"index in {str(index_dir)!r} is damaged ({exc}); {FIX}") from exc
    problems = [mismatch] if mismatch else []
    if chunk_index.ntotal != len(chunks) or len(chunks) != counts.get("chunks"):
        problems.append(
            f"{chunk_index.ntotal} vectors for {len(chunks)} chunks "
            f"(manifest says {counts.get('chunks')})"
        )
    if chunk_index.d != dimension:
        problems.append(f"vectors have dimension {chunk_index.d}, manifest says {dimension}")
    if sentence_vectors.shape != (len(sentences), dimension) or len(sentences) != counts.get(
        "sentences"
    ):
        problems.append(
            f"sentence vectors of shape {sentence_vectors.shape} for {len(sentences)} sentences"
        )
    if problems:
        raise IndexCorruptError(
            f"index in {str(index_dir)!r} is inconsistent: {'; '.join(problems)}; {FIX}"
        )
    return StoredIndex(
        manifest,
        chunks,
        FaissVectors(chunk_index),
        sentences,
        np.ascontiguousarray(sentence_vectors, dtype=np.float32),
    )
