"""Tests for rag.ingest.trash: removed documents move out of the seeds folder, never deleted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rag.errors import DocumentError
from rag.ingest.scan import scan
from rag.ingest.trash import TRASH, move_to_trash, seed_path, trash_dir


def layout(tmp_path: Path) -> tuple[Path, Path]:
    seeds = tmp_path / "seeds"
    (seeds / "sub").mkdir(parents=True)
    (seeds / "a.md").write_text("alpha", encoding="utf-8")
    (seeds / "sub" / "b.txt").write_text("beta", encoding="utf-8")
    return seeds, trash_dir(tmp_path / "index")


def test_a_removed_document_lands_in_the_trash_with_its_bytes(tmp_path: Path) -> None:
    seeds, trash = layout(tmp_path)
    moved = move_to_trash(seeds, "sub/b.txt", trash)
    assert moved.source == "sub/b.txt"
    assert moved.path.read_text(encoding="utf-8") == "beta"
    assert moved.path.parent.parent.parent == trash == tmp_path / "index" / TRASH
    assert moved.path.relative_to(trash).parts[1:] == ("sub", "b.txt")
    assert not (seeds / "sub" / "b.txt").exists()
    assert [f.source for f in scan(seeds)[0]] == ["a.md"]


def test_removing_the_same_name_twice_keeps_both_copies(tmp_path: Path) -> None:
    seeds, trash = layout(tmp_path)
    first = move_to_trash(seeds, "a.md", trash)
    (seeds / "a.md").write_text("alpha again", encoding="utf-8")
    second = move_to_trash(seeds, "a.md", trash)
    assert first.path != second.path
    assert first.path.read_text(encoding="utf-8") == "alpha"
    assert second.path.read_text(encoding="utf-8") == "alpha again"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("../outside.md", "is not a document of the seeds folder"),
        ("/etc/passwd", "is not a document of the seeds folder"),
        ("sub/../a.md", "is not a document of the seeds folder"),
        (".hidden.md", "is not a document of the seeds folder"),
        ("", "is not a document of the seeds folder"),
        ("missing.md", "is no longer in the seeds folder"),
        ("sub", "is a folder"),
    ],
)
def test_only_documents_of_the_seeds_folder_can_be_removed(
    tmp_path: Path, source: str, message: str
) -> None:
    seeds, trash = layout(tmp_path)
    (tmp_path / "outside.md").write_text("keep me", encoding="utf-8")
    (seeds / ".hidden.md").write_text("hidden", encoding="utf-8")
    with pytest.raises(DocumentError, match=message):
        move_to_trash(seeds, source, trash)
    assert (tmp_path / "outside.md").exists() and (seeds / "a.md").exists()
    assert not trash.exists()


def test_a_folder_link_out_of_the_seeds_cannot_be_used(tmp_path: Path) -> None:
    seeds, _ = layout(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.md").write_text("secret", encoding="utf-8")
    os.symlink(elsewhere, seeds / "link")
    with pytest.raises(DocumentError, match="lies outside the seeds folder"):
        seed_path(seeds, "link/secret.md")
    assert (elsewhere / "secret.md").exists()


def test_a_file_link_is_moved_as_the_link(tmp_path: Path) -> None:
    seeds, trash = layout(tmp_path)
    os.symlink(seeds / "a.md", seeds / "alias.md")
    moved = move_to_trash(seeds, "alias.md", trash)
    assert moved.path.is_symlink() and (seeds / "a.md").read_text(encoding="utf-8") == "alpha"


def test_a_trash_the_scan_would_reach_is_refused(tmp_path: Path) -> None:
    seeds, _ = layout(tmp_path)
    for inside in (seeds, seeds / "trash"):
        with pytest.raises(
            DocumentError, match=r"put the index folder \(--index\) outside the seeds"
        ):
            move_to_trash(seeds, "a.md", inside)
    assert (seeds / "a.md").exists()
    moved = move_to_trash(seeds, "a.md", seeds / ".index" / "trash")  # hidden: never scanned
    assert moved.path.exists() and [f.source for f in scan(seeds)[0]] == ["sub/b.txt"]
