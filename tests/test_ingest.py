"""Which files are sources, and their exact text."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rag.errors import SeedsNotFoundError
from rag.ingest.scan import Skipped, read, read_text, scan


def test_scan_is_recursive_sorted_and_skips_hidden_and_unsupported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "b" / "z.md").write_text("z")
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / ".secret.txt").write_text("s")
    (tmp_path / ".hidden" / "x.txt").write_text("x")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    with caplog.at_level(logging.WARNING):
        files, skipped = scan(tmp_path)
    assert [f.source for f in files] == ["a.txt", "b/z.md"]
    assert skipped == [Skipped("photo.png", "unsupported file type")]
    assert "photo.png" in caplog.text


def test_missing_or_non_folder_seeds_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(SeedsNotFoundError, match=r"does not exist.*--seeds DIR"):
        scan(tmp_path / "nope")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(SeedsNotFoundError, match="not a folder"):
        scan(tmp_path / "file.txt")


def test_text_is_the_exact_bytes_decoded(tmp_path: Path) -> None:
    raw = "\ufeffBOM, CRLF\r\nand “curly” quotes\r\n".encode()
    (tmp_path / "a.txt").write_bytes(raw)
    files, _ = scan(tmp_path)
    doc = read(files[0])
    assert not isinstance(doc, Skipped)
    assert doc.text == raw.decode("utf-8") == read_text(tmp_path, "a.txt")
    assert doc.size == len(raw)


def test_non_utf8_binary_and_empty_files_are_skipped_with_a_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    (tmp_path / "binary.txt").write_bytes(b"abc\x00def")
    (tmp_path / "empty.txt").write_bytes(b"")
    files, _ = scan(tmp_path)
    with caplog.at_level(logging.INFO):
        results = {f.source: read(f) for f in files}
    assert results["latin1.txt"] == Skipped("latin1.txt", "not valid UTF-8")
    assert results["binary.txt"] == Skipped("binary.txt", "binary content (NUL bytes)")
    assert results["empty.txt"] == Skipped("empty.txt", "empty")
    assert "latin1.txt" in caplog.text and "UTF-8" in caplog.text
