"""A full disk or a read-only index folder: one line, nothing partial left, answers go on.

The failures are injected where the index is written (`numpy.save` of a generation's
sentence vectors; the index folder's lock file), since making a real disk full or a
real read-only mount needs root; the closing note of issue 20 describes a run on a
real full tmpfs.
"""

from __future__ import annotations

import errno
import json
import logging
from pathlib import Path
from typing import Any

import pytest

import rag.index.stores.folder as folder
from rag.embedding.fake import HashingEmbedder
from tests.conftest import FACTS
from tests.test_cli import fake_model, run  # noqa: F401  (fake_model: autouse)


def read_only(self: Any, *args: Any, **kwargs: Any) -> None:
    """`FileLock.acquire` on a read-only file system."""
    raise OSError(errno.EROFS, "Read-only file system")


def disk_full(monkeypatch: pytest.MonkeyPatch) -> None:
    real_save = folder.np.save

    def save(fh: Any, array: Any) -> None:
        real_save(fh, array[: len(array) // 2])  # part of the file reaches the disk
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(folder.np, "save", save)


def generation_files(index_dir: Path) -> set[str]:
    return {p.name for p in index_dir.iterdir() if p.name.split("-")[0] in folder.DATA_PREFIXES}


def test_a_full_disk_leaves_the_previous_index_answering(
    seeds: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    index_dir = tmp_path / "index"
    folders = ("--seeds", str(seeds), "--index", str(index_dir))
    assert run(capsys, "index", *folders)[0] == 0
    before = generation_files(index_dir)
    manifest = (index_dir / "manifest.json").read_text()
    (seeds / "notes.txt").write_text("The comet returns every seventy-six years.\n")

    disk_full(monkeypatch)
    code, _, err = run(capsys, "index", *folders)
    assert code == 1 and "No space left on device" in err and "`rag index`" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert generation_files(index_dir) == before  # nothing partial stays behind
    assert (index_dir / "manifest.json").read_text() == manifest
    assert not [p for p in index_dir.iterdir() if p.name.endswith(".tmp")]

    with caplog.at_level(logging.WARNING, logger="rag.api"):
        code, out, err = run(capsys, "ask", "Which booster lands on a drone ship?", *folders)
    assert code == 0 and "drone ship" in out  # answered from the previous index
    assert "No space left on device" in caplog.text and "Traceback" not in err

    monkeypatch.undo()
    monkeypatch.setattr("rag.api.make_embedder", lambda settings: HashingEmbedder())
    code, out, _ = run(capsys, "index", *folders, "--json")  # space freed: it succeeds
    assert code == 0 and json.loads(out)["added"] == 1


def test_a_read_only_index_folder_is_answered_but_not_refreshed(
    seeds: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    folders = ("--seeds", str(seeds), "--index", str(tmp_path / "index"))
    assert run(capsys, "index", *folders)[0] == 0
    (seeds / "rockets.txt").write_text(FACTS["rockets.txt"] + "\nBoosters fly again.\n")
    monkeypatch.setattr(folder.FileLock, "acquire", read_only)
    with caplog.at_level(logging.WARNING, logger="rag.api"):
        code, out, err = run(capsys, "ask", "Which booster lands on a drone ship?", *folders)
    assert code == 0 and "drone ship" in out
    assert "Read-only file system" in caplog.text and "Traceback" not in err
    code, _, err = run(capsys, "index", *folders)
    assert code == 1 and "Read-only file system" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_serve_starts_on_a_read_only_index_folder(
    seeds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folders = ("--seeds", str(seeds), "--index", str(tmp_path / "index"))
    assert run(capsys, "index", *folders)[0] == 0
    (seeds / "rockets.txt").write_text(FACTS["rockets.txt"] + "\nBoosters fly again.\n")
    served: list[Any] = []
    monkeypatch.setattr(folder.FileLock, "acquire", read_only)
    monkeypatch.setattr("ui.app.launch", lambda index, **kwargs: served.append(index))
    code, _, err = run(capsys, "serve", *folders)
    assert code == 0 and len(served) == 1 and "index ready: 2 documents" in err
    assert "drone ship" in served[0].answer("Which booster lands on a drone ship?").text
