"""Files and folders that must not stop indexing: bad names, deep trees, unreadable folders."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

import rag.ingest.scan
from rag.api import Index
from rag.ingest.scan import MAX_DEPTH, scan
from rag.text.display import printable


def referenced(index_dir: Path) -> set[str]:
    manifest = json.loads((index_dir / "manifest.json").read_text("utf-8"))
    return {str(v) for v in manifest.get("files", {}).values()}


def test_a_name_that_is_not_utf8_is_skipped_and_the_rest_indexed(
    index: Index, seeds: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = os.path.join(os.fsencode(seeds), b"\xff\xfe.txt")
    with open(bad, "wb") as fh:
        fh.write(b"Bad names still hold text.\n")
    with caplog.at_level(logging.WARNING):
        report = index.refresh()
    assert report.documents == 2 and report.skipped == ("\\xff\\xfe.txt",)
    assert "the name is not valid UTF-8" in caplog.text
    (seeds / "later.txt").write_text("Later files are indexed too.\n")
    report = index.refresh()
    assert report.documents == 3 and report.added == 1
    assert index.answer("Which files are indexed too?").citations[0].source == "later.txt"
    assert all("\\x" not in name for name in referenced(index.settings.index_dir))


def test_a_tree_deeper_than_the_limit_is_cut_not_fatal(seeds: Path, index: Index) -> None:
    deep = seeds / "deep"
    path = str(deep)
    os.mkdir(path)
    for _ in range(1_100):  # os.makedirs recurses per level
        path += "/d"
        os.mkdir(path)
    with open(os.path.join(path, "bottom.txt"), "w") as fh:
        fh.write("The bottom is too deep.\n")
    (deep / "d" / "d" / "shallow.txt").write_text("The shallow file is found.\n")
    try:
        files, skipped = scan(seeds)
        assert "deep/d/d/shallow.txt" in [f.source for f in files]
        assert [s.reason for s in skipped] == [f"folder nested more than {MAX_DEPTH} levels deep"]
        assert index.refresh().documents == 3
    finally:  # bottom up: shutil.rmtree would recurse once per level
        os.remove(os.path.join(path, "bottom.txt"))
        os.remove(deep / "d" / "d" / "shallow.txt")
        while path != str(deep):
            os.rmdir(path)
            path = os.path.dirname(path)


def test_a_folder_that_cannot_be_read_is_listed(
    seeds: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (seeds / "secret").mkdir()
    (seeds / "secret" / "x.txt").write_text("hidden")
    real = os.scandir

    def refuse(path: str) -> object:
        if str(path).endswith("secret"):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(rag.ingest.scan.os, "scandir", refuse)
    with caplog.at_level(logging.WARNING):
        files, skipped = scan(seeds)
    assert [f.source for f in files] == ["garden/tomatoes.md", "rockets.txt"]
    assert [(s.source, s.reason) for s in skipped] == [
        ("secret", "cannot read the folder (Permission denied)")
    ]
    assert "skipping secret: cannot read the folder" in caplog.text


def test_names_with_control_characters_cannot_forge_log_lines(
    seeds: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (seeds / "innocent.bin\nERROR rag: forged").write_text("x")
    with caplog.at_level(logging.WARNING):
        _, skipped = scan(seeds)
    assert all("\n" not in r.getMessage() for r in caplog.records)
    assert skipped[0].source == "innocent.bin\\u000aERROR rag: forged"


def test_printable_escapes_bidi_controls_and_keeps_plain_text() -> None:
    assert printable("report\u202eTXT.exe") == "report\\u202eTXT.exe"
    assert printable("Ünïcödé “quotes” 🚀") == "Ünïcödé “quotes” 🚀"


@pytest.mark.parametrize(
    "question", ["\ud800", "\u200b\u200b", "🚀🚀", "?!", "\ud800\u200d", "\x00\ufeff"]
)
def test_questions_without_words_are_refused_in_one_line(index: Index, question: str) -> None:
    from rag.errors import QuestionError

    with pytest.raises(QuestionError) as caught:
        index.answer(question)
    assert "\n" not in str(caught.value)


def test_lone_surrogates_are_dropped_from_real_questions(index: Index) -> None:
    answer = index.answer("Where does the Falcon booster land?\ud800")
    assert answer.citations and "drone ship" in answer.citations[0].quote


@pytest.mark.parametrize("history", [[1], "not a list", [None, "x"]])
def test_a_history_that_is_not_text_is_refused(index: Index, history: object) -> None:
    from rag.errors import QuestionError

    with pytest.raises(QuestionError, match="history"):
        index.answer("Why?", history=history)  # type: ignore[arg-type]


def test_rag_ask_with_undecodable_argument_bytes_answers_or_says_one_line(
    seeds: Path, tmp_path: Path
) -> None:
    """Undecodable bytes reach Python as lone surrogates: a real process must neither print
    a traceback nor fail to print its answer."""
    import subprocess
    import sys

    from tests.conftest import REPO

    def ask(question: bytes) -> subprocess.CompletedProcess[bytes]:
        code = (
            "import sys; import rag.api; from rag.embedding.fake import HashingEmbedder; "
            "rag.api.make_embedder = lambda s: HashingEmbedder(); from rag.cli import main; "
            "sys.exit(main(sys.argv[1:]))"
        )
        argv = [b"ask", question, b"--json", b"--reader", b"off"]
        argv += [b"--seeds", bytes(seeds), b"--index", bytes(tmp_path / "index")]
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "LC_ALL": "C.UTF-8"}
        return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, env=env)

    done = ask(b"Where does the Falcon booster land?\xff\xfe")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["question"] == "Where does the Falcon booster land?"
    done = ask(b"\xff\xfe")
    assert done.returncode == 1 and b"Traceback" not in done.stderr
    assert done.stderr.decode().count("\n") == 1 and b"question" in done.stderr
