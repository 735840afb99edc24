"""Hostile seeds folders: each bad file is skipped with a logged reason or indexed verbatim.

Covers huge files, one very long line, symlinks (to a file, dangling, loops), unreadable
files, folders with no supported file, files that change while being read, and random
bytes or unicode documents. The rest of the corpus must stay indexed and answerable.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rag.api import Index
from rag.config import DEFAULT_MAX_FILE_BYTES, SUPPORTED_SUFFIXES, Settings
from rag.embedding.fake import HashingEmbedder
from rag.errors import EmptyCorpusError, QuestionError, SettingsError
from rag.index.stores.folder import load_index
from rag.ingest.scan import Skipped, SourceFile, read, scan
from rag.query.question import clean_question
from rag.types import Document
from tests.conftest import FACTS, write_seeds

ROCKETS = "What do rockets need?"


def assert_verbatim(index: Index) -> None:
    """Every chunk, sentence and citation of ``index`` indexes its source text exactly."""
    stored = index.current()
    for item in (*stored.chunks, *stored.sentences):
        assert index.source_text(item.source)[item.start : item.end] == item.text


def assert_rockets_answerable(index: Index) -> None:
    """The untouched part of the corpus still answers, with verbatim quotes."""
    answer = index.answer(ROCKETS)
    assert answer.citations and answer.citations[0].source == "rockets.txt"
    for c in answer.citations:
        assert index.source_text(c.source)[c.start : c.end] == c.quote


def skip_reason(index: Index, source: str) -> str:
    return str(index.current().manifest.skipped[source].reason)


def write_big_file(path: Path, size: int) -> None:
    """Write ``size`` bytes of repeated text lines, a megabyte at a time."""
    line = b"This line repeats again and again to fill a very large text file.\n"
    block = line * (1_000_000 // len(line))
    with path.open("wb") as fh:
        for _ in range(size // len(block)):
            fh.write(block)
        fh.write(line * ((size % len(block)) // len(line) + 1))


def test_a_100_mb_file_is_skipped_with_a_reason(
    index: Index, seeds: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_big_file(seeds / "huge.txt", 100_000_000)
    assert (seeds / "huge.txt").stat().st_size > 100_000_000
    with caplog.at_level(logging.WARNING):
        report = index.refresh()
    reason = f"larger than max_file_bytes ({DEFAULT_MAX_FILE_BYTES} bytes)"
    assert report.skipped == ("huge.txt",) and report.documents == 2
    assert skip_reason(index, "huge.txt") == reason
    assert "huge.txt" in caplog.text and "max_file_bytes" in caplog.text
    assert_rockets_answerable(index)


def test_the_size_limit_also_catches_a_file_that_grew_after_the_scan(tmp_path: Path) -> None:
    path = tmp_path / "grows.txt"
    path.write_text("small")
    (scanned,), _ = scan(tmp_path)
    small = read(scanned, max_bytes=10)
    assert isinstance(small, Document) and small.text == "small"
    path.write_text("now much larger than ten bytes")
    grown = read(scanned, max_bytes=10)
    assert grown == Skipped("grows.txt", "larger than max_file_bytes (10 bytes)")
    big = SourceFile("big.txt", tmp_path / "absent.txt", 11, 0)  # judged by size, never opened
    assert read(big, max_bytes=10) == Skipped("big.txt", "larger than max_file_bytes (10 bytes)")


@pytest.mark.parametrize("bad", [0, -5, 1.5, True])
def test_max_file_bytes_is_validated(bad: object) -> None:
    with pytest.raises(
        SettingsError, match=rf"max_file_bytes must be .* is {re.escape(repr(bad))}"
    ):
        Settings(max_file_bytes=bad)  # type: ignore[arg-type]


def test_one_5_mb_line_is_indexed_and_quoted_verbatim(index: Index, seeds: Path) -> None:
    filler = "filler words repeat here without meaning at all, " * 52_000
    text = filler + "the zebra sleeps under the old bridge, " + filler
    assert len(text) > 5_000_000 and "\n" not in text
    (seeds / "long.txt").write_bytes(text.encode("utf-8"))
    report = index.refresh()
    assert report.skipped == () and report.documents == 3
    assert index.source_text("long.txt") == text
    assert_verbatim(index)
    answer = index.answer("Where does the zebra sleep?")
    top = answer.citations[0]
    assert top.source == "long.txt" and "the zebra sleeps" in top.quote
    assert text[top.start : top.end] == top.quote
    assert_rockets_answerable(index)


def test_symlinks_inside_the_seeds_are_indexed_outside_ones_and_dangling_ones_skipped(
    index: Index, seeds: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outside = tmp_path / "elsewhere" / "moons.txt"
    outside.parent.mkdir()
    outside.write_text("Jupiter has many moons. Europa hides an ocean under ice.\n")
    (seeds / "linked.txt").symlink_to(outside)
    (seeds / "dangling.txt").symlink_to(tmp_path / "no-such-file.txt")
    (seeds / "notes").mkdir()
    (seeds / "notes" / "comets.txt").write_text("Comets grow tails near the sun.\n")
    (seeds / "alias.txt").symlink_to(seeds / "notes" / "comets.txt")
    with caplog.at_level(logging.WARNING):
        report = index.refresh()
    assert report.skipped == ("dangling.txt", "linked.txt") and report.documents == 4
    assert "skipping dangling.txt: cannot stat" in caplog.text
    assert "skipping linked.txt: a link to a file outside the seeds folder" in caplog.text
    assert "Europa" not in index.answer("Which moon hides an ocean?").text
    assert index.source_text("alias.txt") == "Comets grow tails near the sun.\n"
    assert_rockets_answerable(index)


def test_links_outside_the_seeds_are_followed_only_when_asked(
    index: Index, seeds: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere" / "moons.txt"
    outside.parent.mkdir()
    outside.write_text("Jupiter has many moons. Europa hides an ocean under ice.\n")
    (seeds / "linked.txt").symlink_to(outside)
    follow = Index(index.settings.with_(follow_external_links=True), index.embedder)
    report = follow.refresh()
    assert report.skipped == () and report.documents == 3
    assert follow.source_text("linked.txt") == outside.read_text()
    answer = follow.answer("Which moon hides an ocean?")
    assert answer.citations[0].source == "linked.txt" and "Europa" in answer.citations[0].quote
    assert_verbatim(follow)


def test_a_directory_symlink_loop_does_not_trap_the_scan(index: Index, seeds: Path) -> None:
    (seeds / "garden" / "loop").symlink_to(seeds, target_is_directory=True)
    (seeds / "self").symlink_to(".", target_is_directory=True)
    files, skipped = scan(seeds)
    assert [f.source for f in files] == ["garden/tomatoes.md", "rockets.txt"]
    assert skipped == []
    assert index.refresh().documents == 2
    assert_rockets_answerable(index)


def test_an_unreadable_file_is_skipped_with_a_reason(
    index: Index, seeds: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (seeds / "secret.txt").write_text("Nobody may read this.")
    real_read_bytes = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "secret.txt":
            raise PermissionError(13, "Permission denied", str(self))
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    with caplog.at_level(logging.WARNING):
        report = index.refresh()
    assert report.skipped == ("secret.txt",)
    assert skip_reason(index, "secret.txt") == "cannot read: Permission denied"
    assert "secret.txt" in caplog.text
    assert_rockets_answerable(index)


def _index_as_nobody(seeds: Path, index_dir: Path) -> dict[str, object]:
    """Index ``seeds`` and ask one question in a forked child running as ``nobody``; the
    modules it needs are loaded by the parent first (the checkout may be root's only)."""
    warm = Index(
        Settings(seeds_dir=seeds.parent / "warm", index_dir=index_dir.parent / "w"),
        HashingEmbedder(),
    )
    write_seeds(warm.settings.seeds_dir, FACTS)
    warm.answer("Which booster lands on a drone ship?")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to nobody, do the work, report through the pipe
        code = 1
        try:
            os.setgid(65534)
            os.setuid(65534)
            index = Index(Settings(seeds_dir=seeds, index_dir=index_dir), warm.embedder)
            index._reader = warm.reader
            report = index.refresh()
            answer = index.answer("Which booster lands on a drone ship?")
            result = {
                "skipped": list(report.skipped),
                "reason": index.current().manifest.skipped["secret.txt"].reason,
                "quotes": [c.quote for c in answer.citations],
            }
            os.write(write_end, json.dumps(result).encode())
            code = 0
        except BaseException as exc:  # reported to the parent, never raised in the fork
            os.write(write_end, json.dumps({"error": repr(exc)}).encode())
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as fh:
        out = fh.read()
    os.waitpid(pid, 0)
    return dict(json.loads(out))


def test_a_chmod_000_file_is_skipped() -> None:
    """A real unreadable file. Root reads any file whatever its mode, so as root the
    indexing runs in a child process as the unprivileged user ``nobody`` (in a folder of
    the system's temp folder, which nobody can reach)."""
    with tempfile.TemporaryDirectory(prefix="seedrag-chmod-") as shared:
        root = Path(shared)
        seeds = write_seeds(root / "seeds", FACTS)
        secret = seeds / "secret.txt"
        secret.write_text("Nobody may read this.")
        for path in (root, *root.rglob("*")):
            path.chmod(0o777 if path.is_dir() else 0o644)
        secret.chmod(0)
        result = _index_unreadable(seeds, root / "index")
    assert "error" not in result, result
    assert result["skipped"] == ["secret.txt"]
    assert str(result["reason"]).startswith("cannot read")
    assert "The Falcon booster lands on a drone ship." in result["quotes"]  # type: ignore[operator]


def _index_unreadable(seeds: Path, index_dir: Path) -> dict[str, object]:
    if os.geteuid() == 0:
        return _index_as_nobody(seeds, index_dir)
    idx = Index(Settings(seeds_dir=seeds, index_dir=index_dir), HashingEmbedder())
    report = idx.refresh()
    answer = idx.answer("Which booster lands on a drone ship?")
    return {
        "skipped": list(report.skipped),
        "reason": idx.current().manifest.skipped["secret.txt"].reason,
        "quotes": [c.quote for c in answer.citations],
    }


def test_only_unsupported_files_name_the_folder_and_the_types(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for name in ("photo.png", "data.csv", "report.docx"):
        (seeds / name).write_bytes(b"not indexable")
    index = Index(Settings(seeds_dir=seeds, index_dir=tmp_path / "index"), HashingEmbedder())
    with pytest.raises(EmptyCorpusError) as exc:
        index.refresh()
    message = str(exc.value)
    assert repr(str(seeds)) in message
    assert " or ".join(SUPPORTED_SUFFIXES) in message
    assert "photo.png" in message


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_indexed_as(index: Index, source: str, data: bytes) -> None:
    """The index on disk took its hash, size and chunks of ``source`` from ``data``.

    It is loaded as written: `Index.current` would refresh it if the file changed.
    """
    stored = load_index(index.settings.index_dir)
    record = stored.sources[source]
    assert record.sha256 == sha256(data) and record.size == len(data)
    text = data.decode("utf-8")
    chunks = [c for c in stored.chunks if c.source == source]
    assert chunks and all(text[c.start : c.end] == c.text for c in chunks)


NEW_ROCKETS = b"Rockets need oxidiser as well as fuel. Staging drops empty tanks on the way up.\n"


def test_a_file_rewritten_between_scan_and_read_is_indexed_as_read(
    index: Index, seeds: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag.index.build

    real_scan = rag.index.build.scan

    def scan_then_rewrite(
        seeds_dir: Path, **options: bool
    ) -> tuple[list[SourceFile], list[Skipped]]:
        found = real_scan(seeds_dir, **options)
        (seeds / "rockets.txt").write_bytes(NEW_ROCKETS)  # stat says old size, bytes are new
        return found

    monkeypatch.setattr(rag.index.build, "scan", scan_then_rewrite)
    index.refresh()
    monkeypatch.undo()
    assert_indexed_as(index, "rockets.txt", NEW_ROCKETS)
    answer = index.answer("What does staging drop?")
    assert answer.citations[0].source == "rockets.txt" and "Staging" in answer.citations[0].quote
    assert_verbatim(index)


def test_a_file_rewritten_just_after_it_was_read_is_hashed_as_read_then_refreshed(
    index: Index, seeds: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = seeds / "rockets.txt"
    before = target.read_bytes()
    real_read_bytes = Path.read_bytes
    seen: list[bytes] = []

    def read_then_rewrite(self: Path) -> bytes:
        data = real_read_bytes(self)
        if self == target and not seen:
            seen.append(data)
            target.write_bytes(NEW_ROCKETS)  # lands after the read, before the hash
        return data

    monkeypatch.setattr(Path, "read_bytes", read_then_rewrite)
    index.refresh()
    monkeypatch.undo()
    assert seen == [before]
    assert_indexed_as(index, "rockets.txt", before)  # never the hash of the new bytes
    # The next question notices the change (size and racy mtime) and indexes the new text.
    assert index.answer(ROCKETS).citations
    assert_indexed_as(index, "rockets.txt", NEW_ROCKETS)
    assert_verbatim(index)


PARAGRAPHS = st.lists(
    st.sampled_from(
        ["Launch fuel valve.", "Same paragraph again.", "Fuel “curly” café 🚀.", "שלום עולם.", ""]
    ),
    max_size=8,
).map("\n\n".join)
DOCUMENTS = st.one_of(
    st.binary(max_size=400),
    st.text(max_size=600).map(lambda t: t.encode("utf-8")),
    PARAGRAPHS.map(lambda t: t.encode("utf-8")),
    st.tuples(st.text(max_size=300), st.booleans(), st.booleans())
    .map(lambda x: ("\ufeff" if x[1] else "") + (x[0].replace("\n", "\r\n") if x[2] else x[0]))
    .map(lambda t: t.encode("utf-8")),
)


def _askable(question: str) -> bool:
    """Whether `Index.answer` takes ``question`` (empty ones raise `QuestionError`)."""
    try:
        clean_question(question)
    except QuestionError:
        return False
    return True


def questions_for(index: Index, extra: str) -> list[str]:
    """Questions made of the first words of some indexed sentences, plus ``extra``."""
    stored = index.current()
    firsts = [" ".join(s.text.split()[:6]) for s in stored.sentences[:20:4]]
    return [q for q in [*firsts, extra] if _askable(q)]


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(DOCUMENTS, min_size=1, max_size=5), st.text(max_size=40))
@example([b"x"], "\x00")  # only a NUL: empty once cleaned, so not asked (it raises)
def test_random_documents_give_only_verbatim_citations(docs: list[bytes], extra: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        seeds = Path(tmp) / "seeds"
        seeds.mkdir()
        (seeds / "anchor.txt").write_text("Anchor text about the launch and its fuel.")
        for i, data in enumerate(docs):
            (seeds / f"doc{i}.{'md' if i % 2 else 'txt'}").write_bytes(data)
        cfg = Settings(
            seeds_dir=seeds,
            index_dir=Path(tmp) / "index",
            min_score=-1.0,
            chunk_size=120,
            chunk_overlap=20,
        )
        index = Index(cfg, HashingEmbedder())
        assert_verbatim(index)
        assert index.answer("launch fuel").citations  # min_score=-1: something is cited
        for question in questions_for(index, extra):
            for c in index.answer(question).citations:
                assert index.source_text(c.source)[c.start : c.end] == c.quote


def test_max_file_bytes_setting_is_honoured(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "small.txt").write_text("The small file mentions pelicans.")
    (seeds / "big.txt").write_text("The big file mentions pelicans. " * 100)
    s = Settings(seeds_dir=seeds, index_dir=tmp_path / "index", max_file_bytes=500)
    report = Index(s, HashingEmbedder()).refresh()
    assert report.skipped == ("big.txt",) and report.documents == 1
