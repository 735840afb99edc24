"""The index folder: consistency checks on load, atomic switch, old files collected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.config import Settings
from rag.embedding.fake import HashingEmbedder
from rag.errors import IndexCorruptError, IndexNotFoundError
from rag.index import manifest as manifest_io
from rag.index.build import refresh
from rag.index.stores import folder as store


def test_missing_index_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="rag index"):
        store.load_index(tmp_path)


def test_roundtrip_preserves_chunks_vectors_and_sentences(settings: Settings) -> None:
    stored, _ = refresh(settings, HashingEmbedder())
    loaded = store.load_index(settings.index_dir)
    assert loaded.chunks == stored.chunks and loaded.sentences == stored.sentences
    assert (loaded.chunk_vectors() == stored.chunk_vectors()).all()
    assert (loaded.sentence_vectors == stored.sentence_vectors).all()


@pytest.mark.parametrize(
    "damage", ["truncate_chunks", "drop_vectors", "future_version", "bad_json"]
)
def test_damage_is_detected_with_the_fix(settings: Settings, damage: str) -> None:
    refresh(settings, HashingEmbedder())
    d = settings.index_dir
    manifest = manifest_io.read_manifest(d)
    if damage == "truncate_chunks":
        path = d / manifest.files["chunks"]
        path.write_text(path.read_text().splitlines()[0] + "\n")
    elif damage == "drop_vectors":
        (d / manifest.files["vectors"]).unlink()
    elif damage == "future_version":
        (d / "manifest.json").write_text(json.dumps({**manifest.to_json(), "format_version": 99}))
    else:
        (d / "manifest.json").write_text("{")
    with pytest.raises(IndexCorruptError, match="rag index --rebuild"):
        store.load_index(d)


def test_a_new_generation_replaces_the_old_and_old_files_are_collected(
    settings: Settings,
) -> None:
    refresh(settings, HashingEmbedder())
    first = manifest_io.read_manifest(settings.index_dir).files
    (settings.seeds_dir / "more.txt").write_text("More text here.")
    refresh(settings, HashingEmbedder())
    second = manifest_io.read_manifest(settings.index_dir).files
    assert set(first.values()).isdisjoint(second.values())
    # Old files stay for a grace period (a reader may still be loading them) ...
    assert all((settings.index_dir / f).exists() for f in first.values())
    store._collect_garbage(settings.index_dir, keep=set(second.values()), grace_s=-1)
    assert not any((settings.index_dir / f).exists() for f in first.values())
    assert all((settings.index_dir / f).exists() for f in second.values())
