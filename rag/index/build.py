"""Bring the index in line with the seeds: full build or incremental refresh.

Owns change detection (size and mtime first, sha256 when they differ), vector
reuse by content hash, and the report. It does not answer questions; where
and how the index is stored (and locked) belongs to `rag.index.stores.base`.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

from rag.config import DEFAULT_MODEL_PASS, SUPPORTED_SUFFIXES, Settings
from rag.embedding.base import Embedder, SpanEmbedder
from rag.errors import EmptyCorpusError, IndexCorruptError, IndexNotFoundError, SettingsError
from rag.index.manifest import incompatibility
from rag.index.reuse import Progress as Progress  # re-exported: `rag.api` names it
from rag.index.reuse import VectorPool, new_vectors
from rag.index.stores.base import Change, Store
from rag.index.stores.factory import open_store
from rag.ingest.scan import TOO_LARGE, UNREADABLE, Skipped, SourceFile, read, scan
from rag.text.chunk import chunk_document
from rag.text.pages import label_fields, lacks_labels
from rag.text.segment import sentence_spans
from rag.types import (
    Chunk,
    Document,
    IndexReport,
    Manifest,
    Sentence,
    SourceRecord,
    StoredIndex,
    Vectors,
    sha256_text,
)

log = logging.getLogger(__name__)

SEGMENTER_VERSION = 1
RACY_NS = 2_000_000_000  # files modified this close to being read are hashed again


@dataclass(frozen=True)
class _Plan:
    keep: list[str]  # sources whose chunks are reused as they are
    changed: list[Document]  # added or updated sources, read
    checked_ns: dict[str, int]  # when each changed source was read
    updated_sources: frozenset[str]  # changed sources the old index held
    added: int
    updated: int
    deleted: int
    skipped: dict[str, SourceRecord]
    sources: dict[str, SourceRecord]  # manifest records of kept sources (mtime refreshed)


def _versions() -> dict[str, str]:
    return dict(_installed_versions())


@functools.cache
def _installed_versions() -> tuple[tuple[str, str], ...]:
    """Versions of the packages a manifest names, read once per process: reading them
    parses each package's metadata, a visible share of building a small index."""
    out = []
    for dist in ("seedrag", "faiss-cpu", "sentence-transformers", "langchain-text-splitters"):
        try:
            out.append((dist, metadata.version(dist)))
        except metadata.PackageNotFoundError:
            out.append((dist, "unknown"))
    return tuple(out)


def index_identity(settings: Settings, embedder: Embedder) -> dict[str, Any]:
    """The manifest fields that must match for an old index to be reused."""
    return {
        "model": {"name": embedder.name, "dimension": embedder.dimension},
        "splitter": settings.splitter_settings(),
        "segmenter_version": SEGMENTER_VERSION,
        # Vectors from another pass differ (pooled sentences, chunks from sentences).
        "model_pass": _model_pass(settings, embedder),
    }


def _model_pass(settings: Settings, embedder: Embedder) -> str:
    """``settings.model_pass`` (`DEFAULT_MODEL_PASS` where it is open).

    Raises:
        SettingsError: "chunks" is asked of an embedder that cannot pool sentences from
            the chunk pass (not a `SpanEmbedder`).
    """
    model_pass = settings.model_pass or DEFAULT_MODEL_PASS
    if model_pass == "chunks" and not isinstance(embedder, SpanEmbedder):
        raise SettingsError(
            f"model_pass 'chunks' pools sentence vectors from the chunk pass, which "
            f"{embedder.name!r} cannot do: use model_pass 'both' or 'sentences'"
        )
    return model_pass


def _same_stat(rec: SourceRecord | None, f: SourceFile) -> bool:
    """True when ``rec`` proves the file unchanged by its stat alone.

    As in git's "racy" check, a file modified within `RACY_NS` of being read may
    have changed again without a new mtime (coarse timestamps); it is hashed. A PDF
    recorded without its page labels is read again to add them (`rag.text.pages`).
    """
    if rec is None or rec.size != f.size or rec.mtime_ns != f.mtime_ns:
        return False
    if lacks_labels(rec):
        return False
    return rec.checked_ns - f.mtime_ns > RACY_NS


def stat_changes(old: Manifest, files: list[SourceFile]) -> bool:
    """True when the seeds may differ from what the manifest recorded (stat only)."""
    known = {**old.sources, **old.skipped}
    if len(files) != len(known):
        return True
    return not all(_same_stat(known.get(f.source), f) for f in files)


def _may_read_now(skipped: SourceRecord, f: SourceFile, max_bytes: int) -> bool:
    """Whether a file skipped with its present stat may be readable now: it was too large
    for a limit since raised, or could not be read (its permissions may have changed)."""
    reason = skipped.reason or ""
    too_large = reason.startswith(TOO_LARGE) and f.size <= max_bytes
    return too_large or reason.startswith(UNREADABLE)


def _plan(old: Manifest | None, files: list[SourceFile], max_bytes: int) -> _Plan:
    old_sources: Mapping[str, SourceRecord] = old.sources if old else {}
    old_skipped: Mapping[str, SourceRecord] = old.skipped if old else {}
    keep, changed, sources, skipped, checked = [], [], {}, {}, {}
    updated_sources: set[str] = set()
    added = updated = 0
    for f in files:
        rec = old_sources.get(f.source)
        if rec is not None and _same_stat(rec, f):
            keep.append(f.source)
            sources[f.source] = rec
            continue
        srec = old_skipped.get(f.source)
        if srec is not None and _same_stat(srec, f) and not _may_read_now(srec, f, max_bytes):
            skipped[f.source] = srec
            continue
        checked_ns = time.time_ns()
        doc = read(f, max_bytes)
        if isinstance(doc, Skipped):
            skipped[f.source] = SourceRecord(
                f.size, f.mtime_ns, checked_ns=checked_ns, reason=doc.reason
            )
            continue
        if rec and rec.sha256 == doc.sha256:  # touched, not changed
            keep.append(f.source)
            sources[f.source] = replace(
                rec,
                size=doc.size,
                mtime_ns=doc.mtime_ns,
                checked_ns=checked_ns,
                **label_fields(doc),
            )
            continue
        changed.append(doc)
        checked[doc.source] = checked_ns
        if rec:
            updated += 1
            updated_sources.add(doc.source)
        else:
            added += 1
    present = set(keep) | {d.source for d in changed}
    deleted = sum(1 for s in old_sources if s not in present)
    return _Plan(
        keep,
        changed,
        checked,
        frozenset(updated_sources),
        added,
        updated,
        deleted,
        skipped,
        sources,
    )


def _rows_by_content(texts: list[str]) -> dict[str, int]:
    return {sha256_text(t): i for i, t in enumerate(texts)}


def _load_old(
    store: Store, identity: dict[str, Any], rebuild: bool
) -> tuple[StoredIndex | None, str | None]:
    """The reusable old index, and why it cannot be reused when it cannot."""
    if rebuild:
        return None, "full rebuild requested"
    try:
        old = store.load()
    except IndexNotFoundError:
        return None, None
    except IndexCorruptError as exc:
        log.warning("rebuilding index from scratch: %s", exc)
        return None, f"damaged index: {exc}"
    reason = incompatibility(old.manifest, identity)
    if reason:
        log.warning("rebuilding index from scratch: %s", reason)
        return None, reason
    return old, None


def refresh(
    settings: Settings,
    embedder: Embedder,
    *,
    rebuild: bool = False,
    progress: Progress | None = None,
    store: Store | None = None,
) -> tuple[StoredIndex, IndexReport]:
    """Build or incrementally refresh the index; the store's lock serialises writers.

    Unchanged sources keep their chunks and vectors; changed sources are
    re-chunked and only text never embedded before is sent to the model.
    ``store`` defaults to the store ``settings`` select.

    Usage (not a doctest: it needs a built index, a model or a server)::

        from rag.embedding.fake import HashingEmbedder
        idx, report = refresh(Settings(), HashingEmbedder())
    """
    store = store or open_store(settings)
    with store.lock():
        return _refresh_locked(settings, store, embedder, rebuild, progress)


def _refresh_locked(
    settings: Settings,
    store: Store,
    embedder: Embedder,
    rebuild: bool,
    progress: Progress | None,
) -> tuple[StoredIndex, IndexReport]:
    started = time.perf_counter()
    identity = index_identity(settings, embedder)
    old, reason = _load_old(store, identity, rebuild)
    files, scan_skipped = scan(
        settings.seeds_dir, follow_external_links=settings.follow_external_links
    )
    plan = _plan(old.manifest if old else None, files, settings.max_file_bytes)
    skipped_names = tuple(sorted([*plan.skipped, *(s.source for s in scan_skipped)]))
    if not plan.keep and not plan.changed:
        raise EmptyCorpusError(
            f"no readable document in {str(settings.seeds_dir)!r}: add "
            f"{' or '.join(SUPPORTED_SUFFIXES)} files (UTF-8)"
            + (f"; skipped: {', '.join(skipped_names[:5])}" if skipped_names else "")
        )
    if old is not None and not (plan.changed or plan.deleted):
        if plan.sources != old.sources or plan.skipped != old.manifest.skipped:
            manifest = replace(old.manifest, sources=plan.sources, skipped=plan.skipped)
            store.save_manifest(manifest)  # same chunks and vectors, new stats
            old = StoredIndex(
                manifest, old.chunks, old.chunk_index, old.sentences, old.sentence_vectors
            )
        return old, IndexReport(
            0,
            0,
            len(plan.keep),
            0,
            0,
            len(old.chunks),
            len(plan.keep),
            time.perf_counter() - started,
            skipped_names,
        )
    new_index, embedded = _assemble(settings, store, embedder, old, plan, identity, progress)
    report = IndexReport(
        added=plan.added,
        updated=plan.updated,
        unchanged=len(plan.keep),
        deleted=plan.deleted,
        chunks_embedded=embedded,
        chunks_total=len(new_index.chunks),
        documents=len(new_index.sources),
        seconds=time.perf_counter() - started,
        skipped=skipped_names,
        full_rebuild_reason=reason,
    )
    log.info("index %s: %s", settings.index_dir, report.to_dict())
    return new_index, report


def _split(
    settings: Settings, store: Store, plan: _Plan
) -> tuple[list[Chunk], list[Sentence], dict[str, SourceRecord]]:
    """Chunks, sentences and manifest records of the changed sources."""
    chunks: list[Chunk] = []
    sentences: list[Sentence] = []
    records: dict[str, SourceRecord] = {}
    for doc in plan.changed:
        doc_chunks = chunk_document(doc, settings.chunk_size, settings.chunk_overlap)
        doc_sents = [
            Sentence(doc.source, a, b, doc.text[a:b])
            for lo, hi in doc.regions
            for a, b in sentence_spans(doc.text[lo:hi], offset=lo)
        ]
        chunks += doc_chunks
        sentences += doc_sents
        records[doc.source] = SourceRecord(
            size=doc.size,
            mtime_ns=doc.mtime_ns,
            checked_ns=plan.checked_ns[doc.source],
            sha256=doc.sha256,
            chunks=len(doc_chunks),
            sentences=len(doc_sents),
            text=(cached := store.save_text(doc)),
            text_sha256=sha256_text(doc.text) if cached else None,
            **label_fields(doc),
        )
    return chunks, sentences, records


def _assemble(
    settings: Settings,
    store: Store,
    embedder: Embedder,
    old: StoredIndex | None,
    plan: _Plan,
    identity: dict[str, Any],
    progress: Progress | None,
) -> tuple[StoredIndex, int]:
    new_chunks, new_sents, records = _split(settings, store, plan)
    old_chunks, old_sents = (old.chunks, old.sentences) if old else ((), ())
    pools = (
        VectorPool(
            embedder,
            _rows_by_content([x.text for x in old_chunks]),
            old.chunk_index.vectors if old else _nothing,
        ),
        VectorPool(
            embedder,
            _rows_by_content([x.text for x in old_sents]),
            (lambda rows: old.sentence_vectors[rows]) if old else _nothing,
        ),
    )
    # Only texts of added sources may reuse a vector (a renamed or copied file costs
    # nothing); an updated source is embedded afresh, all of it, as the report says.
    reusable = (
        [x.source not in plan.updated_sources for x in new_chunks],
        [x.source not in plan.updated_sources for x in new_sents],
    )
    vecs = new_vectors(
        embedder,
        pools,
        new_chunks,
        new_sents,
        reusable,
        settings.batch_size * 8,
        progress,
        model_pass=_model_pass(settings, embedder),
    )
    manifest = Manifest(
        **identity,
        built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        versions=_versions(),
        seeds_dir=str(Path(settings.seeds_dir)),
        sources=dict(sorted({**plan.sources, **records}.items())),
        skipped=plan.skipped,
    )
    change = Change(
        manifest,
        frozenset(plan.keep),
        new_chunks,
        vecs[0],
        new_sents,
        vecs[1],
        embedder.dimension,
    )
    return store.commit(old, change), pools[0].embedded


def _nothing(rows: list[int]) -> Vectors:
    raise AssertionError(f"no old index to reuse rows {rows[:3]} from")  # pragma: no cover
