"""The folder store: the index as files on disk, read whole, written atomically.

Owns the file layout: ``manifest.json`` (human-readable, written last) names
the generation's data files: a FAISS file whose id i is row i of the chunk
table, the sentence table and its vectors. It does not decide what to embed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import time
from collections.abc import Hashable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from filelock import FileLock, Timeout

from rag.errors import IndexCorruptError, IndexWriteError, RagError
from rag.index.manifest import (
    FIX,
    FORMAT_VERSION,
    MANIFEST,
    fsync_path,
    new_generation,
    read_manifest,
    write_manifest,
)
from rag.index.stores.base import LOCK_TIMEOUT_S, Change, merge_rows
from rag.index.stores.faiss import FaissVectors, apply_params, build_faiss, faiss_params
from rag.ingest.extract import is_plain
from rag.types import Chunk, Document, Manifest, Sentence, SourceRecord, StoredIndex, Vectors

log = logging.getLogger(__name__)

DATA_PREFIXES = ("chunks", "vectors", "sentences", "sentence")  # a generation's data files


def _write_json_lines(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def write_index(
    index_dir: Path,
    manifest: Manifest,
    chunks: list[Chunk],
    chunk_index: Any,
    sentences: list[Sentence],
    sentence_vectors: Vectors,
) -> Manifest:
    """Write a new generation beside the old one, then switch to it by replacing the manifest.

    Data files get fresh generation names and are fsynced before the manifest
    names them, so a reader (or a crash at any moment) sees the old index or
    the new one, never a mix. Returns the manifest as written.
    """
    gen = new_generation()
    files = {
        "chunks": f"chunks-{gen}.jsonl",
        "vectors": f"vectors-{gen}.faiss",
        "sentences": f"sentences-{gen}.jsonl",
        "sentence_vectors": f"sentence-vectors-{gen}.npy",
    }
    with writing(index_dir, [index_dir / name for name in files.values()]):
        _write_json_lines(
            index_dir / files["chunks"],
            [
                {"id": c.id, "source": c.source, "start": c.start, "end": c.end, "text": c.text}
                for c in chunks
            ],
        )
        faiss.write_index(chunk_index, str(index_dir / files["vectors"]))
        fsync_path(index_dir / files["vectors"])
        _write_json_lines(
            index_dir / files["sentences"],
            [
                {"source": s.source, "start": s.start, "end": s.end, "text": s.text}
                for s in sentences
            ],
        )
        with (index_dir / files["sentence_vectors"]).open("wb") as fh:
            np.save(fh, np.ascontiguousarray(sentence_vectors, dtype=np.float32))
            fh.flush()
            os.fsync(fh.fileno())
        full = replace(
            manifest,
            format_version=FORMAT_VERSION,
            generation=gen,
            files=files,
            counts={"chunks": len(chunks), "sentences": len(sentences)},
        )
        write_manifest(index_dir, full)
    _collect_garbage(index_dir, keep=set(files.values()))
    _collect_texts(index_dir, full)
    return full


@contextlib.contextmanager
def writing(index_dir: Path, paths: list[Path]) -> Iterator[None]:
    """Write ``paths``; when that fails (disk full, read-only folder) remove what was
    written and raise `IndexWriteError`: the previous generation stays as it was."""
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        yield
    except (OSError, RuntimeError) as exc:  # faiss reports I/O failures as RuntimeError
        for path in paths:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise IndexWriteError(
            f"could not write the index in {str(index_dir)!r} ({reason}); the previous "
            "index keeps answering: free disk space or make the folder writable, then run "
            "`rag index`"
        ) from exc


def _collect_garbage(index_dir: Path, keep: set[str], grace_s: float = 60.0) -> None:
    """Delete data files of older generations once no fresh reader can still want them."""
    now = time.time()
    for path in index_dir.iterdir():
        name = path.name
        stale_tmp = name.startswith(f".{MANIFEST}.") and name.endswith(".tmp")
        data = name.startswith(tuple(f"{prefix}-" for prefix in DATA_PREFIXES))
        if (data and name not in keep) or stale_tmp:
            with contextlib.suppress(OSError):
                if now - path.stat().st_mtime > grace_s:
                    path.unlink()


TEXTS = "texts"


def cache_text(index_dir: Path, doc: Document) -> str | None:
    """Keep the extracted text of a non-plain source (HTML, PDF) beside the index.

    Returns the name the manifest records for it, or None for plain text, whose file
    already is its text. The cache is keyed by the source's sha256, so extraction is
    never repeated for the same bytes.
    """
    if is_plain(Path(doc.source).suffix):
        return None
    name = f"{TEXTS}/{doc.sha256}.txt"
    path = index_dir / name
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        with writing(index_dir, [tmp]):
            path.parent.mkdir(parents=True, exist_ok=True)
            with tmp.open("w", encoding="utf-8", newline="") as fh:
                fh.write(doc.text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
    return name


def read_cached_text(index_dir: Path, record: SourceRecord) -> str | None:
    """The cached extracted text a manifest record points at, or None."""
    name = record.text
    if not name:
        return None
    try:
        with (index_dir / str(name)).open(encoding="utf-8", newline="") as fh:
            return fh.read()
    except (OSError, ValueError):  # missing, unreadable or not UTF-8: extracted again
        return None


def _collect_texts(index_dir: Path, manifest: Manifest, grace_s: float = 60.0) -> None:
    """Delete cached texts no source of ``manifest`` points at (after a grace period)."""
    folder = index_dir / TEXTS
    if not folder.is_dir():
        return
    keep = {rec.text for rec in manifest.sources.values()}
    now = time.time()
    for path in folder.iterdir():
        if f"{TEXTS}/{path.name}" not in keep:
            with contextlib.suppress(OSError):
                if now - path.stat().st_mtime > grace_s:
                    path.unlink()


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


def load_vectors(path: Path, rows: int, dimension: int) -> Vectors:
    """The ``rows`` x ``dimension`` float32 array of the ``.npy`` file at ``path``, read
    only after its header and size agree with them (a damaged header must not make the
    reader allocate what it claims).

    Raises:
        ValueError: the file is not exactly such an array.
    """
    with path.open("rb") as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        size = os.fstat(fh.fileno()).st_size - fh.tell()
        if (
            shape != (rows, dimension)
            or fortran
            or dtype != np.float32
            or size != rows * dimension * 4
        ):
            raise ValueError(
                f"{path.name} holds a {shape} {dtype} array in {size} bytes, not "
                f"{rows} x {dimension} float32"
            )
        data = np.fromfile(fh, dtype=np.float32, count=rows * dimension)
    return np.ascontiguousarray(data.reshape(rows, dimension))


def _load_generation(index_dir: Path, manifest: Manifest) -> StoredIndex:
    try:
        files, counts, dimension = manifest.files, manifest.counts, manifest.dimension
        chunks = tuple(
            Chunk(r["id"], r["source"], int(r["start"]), int(r["end"]), r["text"])
            for r in _read_rows(index_dir / files["chunks"])
        )
        sentences = tuple(
            Sentence(r["source"], int(r["start"]), int(r["end"]), r["text"])
            for r in _read_rows(index_dir / files["sentences"])
        )
        chunk_index = faiss.read_index(str(index_dir / files["vectors"]))
        mismatch = apply_params(chunk_index, manifest.store or None)
        sentence_vectors = load_vectors(
            index_dir / files["sentence_vectors"], int(counts["sentences"]), dimension
        )
    except FileNotFoundError:
        raise
    except (
        KeyError,
        TypeError,
        ValueError,
        RuntimeError,
        OSError,
        AttributeError,
        EOFError,
        MemoryError,
    ) as exc:
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


class FolderStore:
    """The default `Store`: a folder with a manifest, a FAISS file and the row tables."""

    def __init__(self, index_dir: Path, ann_threshold: int) -> None:
        self.index_dir = Path(index_dir)
        self._manifest = str(self.index_dir / MANIFEST)
        self.ann_threshold = ann_threshold

    @property
    def location(self) -> str:
        return str(self.index_dir)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        lock = FileLock(str(self.index_dir / ".lock"))
        try:
            with writing(self.index_dir, []):
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
        return load_index(self.index_dir)

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
        index = build_faiss(chunk_vecs, change.dimension, self.ann_threshold)
        manifest = replace(change.manifest, store=faiss_params(index))
        written = write_index(self.index_dir, manifest, chunks, index, sents, sent_vecs)
        return StoredIndex(written, tuple(chunks), FaissVectors(index), tuple(sents), sent_vecs)

    def save_manifest(self, manifest: Manifest) -> None:
        with writing(self.index_dir, []):
            write_manifest(self.index_dir, manifest)

    def save_text(self, doc: Document) -> str | None:
        return cache_text(self.index_dir, doc)

    def read_text(self, record: SourceRecord) -> str | None:
        return read_cached_text(self.index_dir, record)
