"""rag.ingest.uploads: safe names, indexing's limits, atomic placement in the seeds folder."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import BinaryIO

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag.config import SUPPORTED_SUFFIXES
from rag.errors import DocumentError, RagError
from rag.ingest import uploads
from rag.ingest.scan import scan
from rag.ingest.uploads import TEMP_PREFIX, check_upload, safe_name, save_upload


@pytest.mark.parametrize(
    ("given_name", "expected"),
    [
        ("notes.md", "notes.md"),
        ("../evil.txt", "evil.txt"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\windows\\evil.txt", "evil.txt"),
        ("/abs/path/report.pdf", "report.pdf"),
        (".hidden.md", "hidden.md"),
        ("...dots.md", "dots.md"),
        ("a..b.txt", "a.b.txt"),
        ("tab\there\n.md", "tabhere.md"),
        ("evil\u202etxt.md", "eviltxt.md"),
        ("zero\u200bwidth.md", "zerowidth.md"),
        ("  spaced   out .txt ", "spaced out .txt"),
        ("trailing.md.", "trailing.md"),
        ("Re\u0301sume\u0301.md", "R\u00e9sum\u00e9.md"),
        ("Report 2024.PDF", "Report 2024.PDF"),
    ],
)
def test_safe_name(given_name: str, expected: str) -> None:
    assert safe_name(given_name) == expected


@pytest.mark.parametrize("bad", ["", "..", ".", "../", "dir/", "\x00\x01", " . ", "..."])
def test_names_with_nothing_left_are_refused(bad: str) -> None:
    with pytest.raises(DocumentError, match="no usable file name: rename it"):
        safe_name(bad)


def test_a_name_too_long_for_the_file_system_is_refused() -> None:
    with pytest.raises(DocumentError, match="shorten it"):
        safe_name("\u00e9" * 200 + ".md")


@given(st.text(max_size=80))
def test_any_name_is_refused_or_made_plain(name: str) -> None:
    try:
        safe = safe_name(name)
    except DocumentError:
        return
    assert "/" not in safe and "\\" not in safe and ".." not in safe
    assert not safe.startswith((".", " ")) and safe == safe.strip()
    assert all(c.isprintable() or c == " " for c in safe)
    assert len(safe.encode("utf-8")) <= uploads.MAX_NAME_BYTES


def test_check_upload_takes_what_indexing_takes() -> None:
    for suffix in SUPPORTED_SUFFIXES:
        assert check_upload(f"doc{suffix.upper()}", 10, 100) == f"doc{suffix.upper()}"
    with pytest.raises(DocumentError) as exc:
        check_upload("tool.exe", 10, 100)
    assert str(exc.value) == (
        "tool.exe: .exe files are not indexed; upload .txt, .md, .html, .htm or .pdf files"
    )
    with pytest.raises(DocumentError, match="files without a type suffix are not indexed"):
        check_upload("README", 10, 100)
    with pytest.raises(
        DocumentError, match=r"^big\.txt is 101 bytes, larger than the 100-byte limit"
    ):
        check_upload("big.txt", 101, 100)
    with pytest.raises(DocumentError, match="empty"):
        check_upload("nothing.txt", 0, 100)
    assert issubclass(DocumentError, RagError)


def upload_file(tmp_path: Path, name: str, data: bytes) -> Path:
    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    path = spool / name
    path.write_bytes(data)
    return path


def everything(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_save_places_the_exact_bytes_under_the_safe_name(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    data = "Caf\u00e9 notes\r\nline two\n".encode()
    saved = save_upload(seeds, "../caf\u00e9.md", upload_file(tmp_path, "x", data), max_bytes=1000)
    assert (saved.given, saved.source, saved.size, saved.replaced) == (
        "../caf\u00e9.md",
        "caf\u00e9.md",
        len(data),
        False,
    )
    assert saved.renamed
    assert (seeds / "caf\u00e9.md").read_bytes() == data
    assert everything(seeds) == ["caf\u00e9.md"]  # no temporary file left
    assert everything(tmp_path) == ["seeds", "seeds/caf\u00e9.md", "spool", "spool/x"]


def test_an_existing_name_is_kept_unless_replace_is_confirmed(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "notes.md").write_text("old", encoding="utf-8")
    new = upload_file(tmp_path, "notes.md", b"new")
    with pytest.raises(DocumentError) as exc:
        save_upload(seeds, "notes.md", new, max_bytes=100)
    assert str(exc.value) == (
        "notes.md already exists in the seeds folder: confirm a replace to overwrite it"
    )
    assert (seeds / "notes.md").read_text(encoding="utf-8") == "old"
    saved = save_upload(seeds, "notes.md", new, max_bytes=100, replace=True)
    assert saved.replaced and (seeds / "notes.md").read_bytes() == b"new"
    assert everything(seeds) == ["notes.md"]


def test_a_name_taken_while_copying_is_not_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    real = uploads._copy_bounded

    def racing(src: BinaryIO, out: BinaryIO, max_bytes: int, source: str) -> int:
        (seeds / source).write_text("another writer", encoding="utf-8")
        return real(src, out, max_bytes, source)

    monkeypatch.setattr(uploads, "_copy_bounded", racing)
    with pytest.raises(DocumentError, match="already exists"):
        save_upload(seeds, "a.txt", upload_file(tmp_path, "a.txt", b"mine"), max_bytes=100)
    assert (seeds / "a.txt").read_text(encoding="utf-8") == "another writer"
    assert everything(seeds) == ["a.txt"]


def test_refused_uploads_write_nothing(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    with pytest.raises(DocumentError, match="larger than the 10-byte limit"):
        save_upload(seeds, "big.txt", upload_file(tmp_path, "big", b"x" * 11), max_bytes=10)
    with pytest.raises(DocumentError, match="are not indexed"):
        save_upload(seeds, "a.docx", upload_file(tmp_path, "a", b"PK"), max_bytes=10)
    with pytest.raises(DocumentError, match="empty"):
        save_upload(seeds, "e.txt", upload_file(tmp_path, "e", b""), max_bytes=10)
    with pytest.raises(DocumentError, match="could not be read"):
        save_upload(seeds, "gone.txt", tmp_path / "missing", max_bytes=10)
    assert everything(seeds) == []


def test_a_file_that_grows_past_the_limit_while_copied_is_refused() -> None:
    out = io.BytesIO()
    with pytest.raises(DocumentError, match="larger than the 4-byte limit"):
        uploads._copy_bounded(io.BytesIO(b"12345"), out, 4, "grew.txt")
    assert uploads._copy_bounded(io.BytesIO(b"1234"), io.BytesIO(), 4, "ok.txt") == 4


def test_a_half_copied_upload_is_never_seen_by_a_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    seen: list[list[str]] = []

    def failing(src: BinaryIO, out: BinaryIO, max_bytes: int, source: str) -> int:
        out.write(src.read(3))
        out.flush()
        temps = [p.name for p in seeds.iterdir()]
        assert len(temps) == 1 and temps[0].startswith(TEMP_PREFIX)  # hidden while written
        seen.append([f.source for f in scan(seeds)[0]])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(uploads, "_copy_bounded", failing)
    with pytest.raises(DocumentError, match="could not be saved: No space left on device"):
        save_upload(seeds, "doc.txt", upload_file(tmp_path, "d", b"abcdef"), max_bytes=100)
    assert seen == [[]]
    assert everything(seeds) == []


def test_stale_temporary_files_are_swept(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    stale, fresh = seeds / f"{TEMP_PREFIX}old.part", seeds / f"{TEMP_PREFIX}new.part"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    old = time.time() - uploads.STALE_TEMP_S - 10
    os.utime(stale, (old, old))
    save_upload(seeds, "a.txt", upload_file(tmp_path, "a", b"hello"), max_bytes=100)
    assert everything(seeds) == sorted(["a.txt", fresh.name])
