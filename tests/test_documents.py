"""Tests for rag.ingest.documents: each document's status from the manifest and the seeds folder."""

from __future__ import annotations

from pathlib import Path

from rag.api import Index
from rag.config import Settings
from rag.embedding.fake import HashingEmbedder
from rag.ingest.documents import (
    CHANGED,
    GONE,
    NOT_YET,
    DocumentEntry,
    counts,
    list_documents,
    matching,
)
from rag.types import Manifest
from tests.conftest import FACTS


def by_name(entries: list[DocumentEntry]) -> dict[str, DocumentEntry]:
    return {e.source: e for e in entries}


def built(seeds: Path, tmp_path: Path) -> Index:
    index = Index(
        Settings(seeds_dir=seeds, index_dir=tmp_path / "index", reader="off"), HashingEmbedder()
    )
    index.refresh()
    return index


def test_indexed_documents_carry_size_chunks_and_time(seeds: Path, tmp_path: Path) -> None:
    index = built(seeds, tmp_path)
    manifest = index.current().manifest
    entries = list_documents(manifest, seeds)
    assert [e.source for e in entries] == sorted(FACTS)
    rockets = by_name(entries)["rockets.txt"]
    rec = manifest.sources["rockets.txt"]
    assert rockets.status == "indexed" and rockets.reason == ""
    assert rockets.size == len(FACTS["rockets.txt"].encode()) == rec.size
    assert rockets.chunks == rec.chunks >= 1
    assert rockets.indexed_ns == rec.checked_ns > 0
    assert rockets.on_disk


def test_new_changed_removed_and_refused_files(seeds: Path, tmp_path: Path) -> None:
    index = built(seeds, tmp_path)
    manifest = index.current().manifest
    (seeds / "new.md").write_text("A new note about comets.\n", encoding="utf-8")
    changed = seeds / "rockets.txt"
    changed.write_text(FACTS["rockets.txt"] + "More fuel.\n", encoding="utf-8")
    (seeds / "garden" / "tomatoes.md").unlink()
    (seeds / "slides.pptx").write_bytes(b"PK\x03\x04")
    (seeds / ".hidden.md").write_text("never listed", encoding="utf-8")
    entries = by_name(list_documents(manifest, seeds))
    assert set(entries) == {"new.md", "rockets.txt", "garden/tomatoes.md", "slides.pptx"}
    assert (entries["new.md"].status, entries["new.md"].reason) == ("pending", NOT_YET)
    assert entries["new.md"].chunks is None and entries["new.md"].on_disk
    assert (entries["rockets.txt"].status, entries["rockets.txt"].reason) == ("pending", CHANGED)
    gone = entries["garden/tomatoes.md"]
    assert (gone.status, gone.reason, gone.on_disk) == ("pending", GONE, False)
    refused = entries["slides.pptx"]
    assert (refused.status, refused.reason) == ("skipped", "unsupported file type")
    assert refused.on_disk and refused.size == 4
    index.refresh()
    after = by_name(list_documents(index.current().manifest, seeds))
    assert {e.status for e in after.values() if e.source != "slides.pptx"} == {"indexed"}
    assert "garden/tomatoes.md" not in after


def test_files_skipped_when_indexing_show_the_reason(seeds: Path, tmp_path: Path) -> None:
    (seeds / "empty.txt").write_text("   \n", encoding="utf-8")
    (seeds / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    index = built(seeds, tmp_path)
    entries = by_name(list_documents(index.current().manifest, seeds))
    assert (entries["empty.txt"].status, entries["empty.txt"].reason) == ("skipped", "empty")
    assert entries["latin1.txt"].status == "skipped"
    assert "UTF-8" in entries["latin1.txt"].reason
    assert entries["empty.txt"].size == 4 and entries["empty.txt"].chunks is None


def test_a_replica_lists_the_manifest_without_the_seeds(seeds: Path, tmp_path: Path) -> None:
    (seeds / "empty.txt").write_text("", encoding="utf-8")
    manifest = built(seeds, tmp_path).current().manifest
    entries = list_documents(manifest, None)
    assert [(e.source, e.status) for e in entries] == [
        ("empty.txt", "skipped"),
        ("garden/tomatoes.md", "indexed"),
        ("rockets.txt", "indexed"),
    ]
    assert not any(e.on_disk for e in entries)


def test_an_empty_manifest_lists_every_file_as_pending(seeds: Path) -> None:
    entries = list_documents(Manifest(), seeds)
    assert [(e.source, e.status, e.reason) for e in entries] == [
        ("garden/tomatoes.md", "pending", NOT_YET),
        ("rockets.txt", "pending", NOT_YET),
    ]


def test_matching_needs_every_word_in_name_status_or_reason() -> None:
    docs = [
        DocumentEntry("reports/q1.pdf", "indexed"),
        DocumentEntry("reports/q2.pdf", "skipped", "encrypted PDF"),
        DocumentEntry("notes.md", "pending", NOT_YET),
    ]
    assert [e.source for e in matching(docs, "")] == [e.source for e in docs]
    assert [e.source for e in matching(docs, "REPORTS")] == ["reports/q1.pdf", "reports/q2.pdf"]
    assert [e.source for e in matching(docs, "reports encrypted")] == ["reports/q2.pdf"]
    assert [e.source for e in matching(docs, "pending")] == ["notes.md"]
    assert matching(docs, "nothing-like-this") == []
    assert counts(docs) == {"indexed": 1, "skipped": 1, "pending": 1}
