"""Build and incremental refresh: what is re-embedded, what is reported, what is on disk."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.embedding.fake import HashingEmbedder
from rag.errors import EmptyCorpusError, SettingsError
from rag.index import manifest as manifest_io
from rag.index.build import refresh
from rag.index.stores import folder as store
from tests.conftest import FACTS


class CountingEmbedder(HashingEmbedder):
    """Counts the texts it is asked to embed."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def embed_documents(self, texts: list[str]):  # type: ignore[no-untyped-def]
        self.texts += texts
        return super().embed_documents(texts)


def bump_mtime(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))


def test_first_build_reports_everything_added(settings: Settings) -> None:
    stored, report = refresh(settings, HashingEmbedder())
    assert (report.added, report.updated, report.unchanged, report.deleted) == (2, 0, 0, 0)
    assert report.documents == 2 and report.chunks_total == len(stored.chunks) > 0
    assert report.chunks_embedded == report.chunks_total
    manifest = json.loads((settings.index_dir / "manifest.json").read_text())
    assert manifest["model"] == {"name": "hashing-test-embedder", "dimension": 256}
    assert manifest["splitter"]["chunk_size"] == settings.chunk_size
    assert set(manifest["sources"]) == set(FACTS)
    assert all(len(r["sha256"]) == 64 for r in manifest["sources"].values())


def test_second_refresh_embeds_nothing(settings: Settings) -> None:
    refresh(settings, HashingEmbedder())
    emb = CountingEmbedder()
    _, report = refresh(settings, emb)
    assert (report.added, report.updated, report.unchanged, report.deleted) == (0, 0, 2, 0)
    assert report.chunks_embedded == 0 and emb.texts == []
    assert not report.changed


def test_touch_without_change_rehashes_but_embeds_nothing(settings: Settings) -> None:
    refresh(settings, HashingEmbedder())
    bump_mtime(settings.seeds_dir / "rockets.txt")
    emb = CountingEmbedder()
    _, report = refresh(settings, emb)
    assert report.unchanged == 2 and emb.texts == []


def test_edit_add_delete_are_followed(settings: Settings) -> None:
    refresh(settings, HashingEmbedder())
    (settings.seeds_dir / "rockets.txt").write_text("Rockets need fuel. Brand new fact here.\n")
    (settings.seeds_dir / "new.txt").write_text("Penguins live in the south.\n")
    (settings.seeds_dir / "garden" / "tomatoes.md").unlink()
    emb = CountingEmbedder()
    stored, report = refresh(settings, emb)
    assert (report.added, report.updated, report.unchanged, report.deleted) == (1, 1, 0, 1)
    assert {c.source for c in stored.chunks} == {"rockets.txt", "new.txt"}
    assert report.chunks_embedded == report.chunks_total == 2
    for c in stored.chunks:
        text = (settings.seeds_dir / c.source).read_text()
        assert text[c.start : c.end] == c.text


def test_rename_reuses_vectors(settings: Settings) -> None:
    refresh(settings, HashingEmbedder())
    (settings.seeds_dir / "rockets.txt").rename(settings.seeds_dir / "launches.txt")
    emb = CountingEmbedder()
    stored, report = refresh(settings, emb)
    assert (report.added, report.deleted) == (1, 1)
    assert report.chunks_embedded == 0 and emb.texts == []
    assert "launches.txt" in {c.source for c in stored.chunks}


def test_changed_settings_force_a_logged_full_rebuild(settings: Settings) -> None:
    refresh(settings, HashingEmbedder())
    _, report = refresh(settings.with_(chunk_size=50, chunk_overlap=5), HashingEmbedder())
    assert report.full_rebuild_reason and "splitter" in report.full_rebuild_reason
    _, report = refresh(settings, HashingEmbedder(dimension=64))
    assert report.full_rebuild_reason and "model" in report.full_rebuild_reason


def test_rebuild_flag_and_damaged_index(settings: Settings) -> None:
    stored, _ = refresh(settings, HashingEmbedder())
    _, report = refresh(settings, HashingEmbedder(), rebuild=True)
    assert report.full_rebuild_reason == "full rebuild requested"
    (settings.index_dir / manifest_io.read_manifest(settings.index_dir).files["chunks"]).write_text(
        "{not json"
    )
    _, report = refresh(settings, HashingEmbedder())
    assert report.full_rebuild_reason and "damaged" in report.full_rebuild_reason
    assert store.load_index(settings.index_dir).chunks == stored.chunks


def test_empty_corpus_names_the_folder_and_formats(tmp_path: Path) -> None:
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "bad.txt").write_bytes(b"\xff\xfe\xfa")
    s = Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index")
    with pytest.raises(EmptyCorpusError, match=r"seeds.*\.txt or \.md.*bad\.txt"):
        refresh(s, HashingEmbedder())


def test_skipped_files_are_remembered_not_reread(settings: Settings) -> None:
    (settings.seeds_dir / "bad.txt").write_bytes(b"\xff\xfe")
    old = time.time() - 3600  # not "racy": modified long before it was read
    for path in settings.seeds_dir.rglob("*.*"):
        os.utime(path, (old, old))
    _, first = refresh(settings, HashingEmbedder())
    assert "bad.txt" in first.skipped
    manifest = manifest_io.read_manifest(settings.index_dir)
    assert manifest.skipped["bad.txt"].reason == "not valid UTF-8"
    from rag.index.build import stat_changes
    from rag.ingest.scan import scan

    assert not stat_changes(manifest, scan(settings.seeds_dir)[0])


def test_a_file_modified_just_before_indexing_is_hashed_again(settings: Settings) -> None:
    from rag.index.build import stat_changes
    from rag.ingest.scan import scan

    refresh(settings, HashingEmbedder())
    manifest = manifest_io.read_manifest(settings.index_dir)
    # Just written: a same-size rewrite within the timestamp granularity could hide.
    assert stat_changes(manifest, scan(settings.seeds_dir)[0])
    old = time.time() - 3600
    for path in settings.seeds_dir.rglob("*.*"):
        os.utime(path, (old, old))
    refresh(settings, HashingEmbedder())
    assert not stat_changes(
        manifest_io.read_manifest(settings.index_dir), scan(settings.seeds_dir)[0]
    )


class PlainCountingEmbedder:
    """Counts texts, and cannot pool spans: sentences are embedded on their own."""

    def __init__(self) -> None:
        self.inner = CountingEmbedder()
        self.name, self.dimension = self.inner.name, self.inner.dimension
        self.texts = self.inner.texts
        self.embed_documents, self.embed_query = self.inner.embed_documents, self.inner.embed_query


@pytest.mark.parametrize(
    ("model_pass", "pools_spans"), [("chunks", True), ("both", False), ("sentences", False)]
)
def test_editing_one_of_many_files_embeds_exactly_its_chunks(
    tmp_path: Path, model_pass: str, pools_spans: bool
) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for i in range(100):
        paragraphs = [
            f"File {i} paragraph {p} says something about topic {i * p}." for p in range(40)
        ]
        (seeds / f"f{i:03}.txt").write_text("\n\n".join(paragraphs))
    s = Settings(seeds_dir=seeds, index_dir=tmp_path / "index", model_pass=model_pass)
    first = HashingEmbedder() if pools_spans else PlainCountingEmbedder()
    refresh(s, first)  # type: ignore[arg-type]
    target = seeds / "f042.txt"
    target.write_text(target.read_text() + "\n\nOne more paragraph at the end.")
    emb = CountingEmbedder() if pools_spans else PlainCountingEmbedder()
    stored, report = refresh(s, emb)  # type: ignore[arg-type]
    assert report.full_rebuild_reason is None
    file_chunks = stored.sources["f042.txt"].chunks
    assert file_chunks > 1
    assert (report.updated, report.unchanged) == (1, 99)
    assert report.chunks_embedded == file_chunks
    sentence_count = stored.sources["f042.txt"].sentences
    # Nothing from the other 99 files. The chunk pass gives sentences their vectors when it
    # can pool; the sentence pass gives chunks theirs; "both" embeds both on their own.
    expected = {
        ("chunks", True): file_chunks,
        ("both", False): file_chunks + sentence_count,
        ("sentences", False): sentence_count,
    }
    assert len(emb.texts) == expected[model_pass, pools_spans]
    rows = [i for i, x in enumerate(stored.sentences) if x.source == "f042.txt"]
    alone = HashingEmbedder().embed_documents([stored.sentences[i].text for i in rows])
    assert np.allclose(stored.sentence_vectors[rows], alone, atol=1e-6)


def test_changing_the_model_pass_rebuilds(settings: Settings) -> None:
    in_chunk = settings.with_(model_pass="chunks")
    with pytest.raises(SettingsError, match="'both' or 'sentences'"):  # it cannot pool
        refresh(in_chunk, PlainCountingEmbedder())  # type: ignore[arg-type]
    refresh(settings.with_(model_pass="both"), PlainCountingEmbedder())  # type: ignore[arg-type]
    _, report = refresh(in_chunk, HashingEmbedder())
    assert report.full_rebuild_reason and "model_pass" in report.full_rebuild_reason
    emb = CountingEmbedder()
    stored, report = refresh(settings.with_(model_pass="sentences"), emb)
    assert report.full_rebuild_reason and "model_pass" in report.full_rebuild_reason
    assert len(emb.texts) == len(stored.sentences)
    emb = CountingEmbedder()
    stored, report = refresh(settings.with_(model_pass="both"), emb)  # chunks and sentences
    assert report.full_rebuild_reason and "model_pass" in report.full_rebuild_reason
    assert len(emb.texts) == len(stored.chunks) + len(stored.sentences)
    _, report = refresh(settings, CountingEmbedder())  # the default is the sentence pass
    assert report.full_rebuild_reason and "model_pass" in report.full_rebuild_reason
