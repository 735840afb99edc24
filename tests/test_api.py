"""The public Python surface: free import, defaults, errors, staleness noticed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import rag
from rag.api import Index
from rag.config import Settings
from rag.embedding.fake import HashingEmbedder
from rag.errors import EmptyCorpusError, QuestionError, SeedsNotFoundError, SourceNotFoundError
from rag.query.question import clean_question


def test_import_is_free() -> None:
    code = (
        "import sys; import rag; "
        "heavy = [m for m in ('torch', 'sentence_transformers', 'faiss', 'gradio', "
        "'langchain_text_splitters', 'onnxruntime', 'transformers') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.strip() == "[]"  # how long imports take is measured in benchmarks/
    assert out.stderr == ""


def test_public_names() -> None:
    assert set(rag.__all__) >= {
        "answer",
        "open_index",
        "source_text",
        "Settings",
        "Answer",
        "Citation",
    }
    assert rag.Settings is Settings
    with pytest.raises(AttributeError):
        _ = rag.nope  # type: ignore[attr-defined]


def test_open_index_builds_then_answers(seeds: Path, tmp_path: Path) -> None:
    idx = rag.open_index(
        seeds, tmp_path / "ix", embedder=HashingEmbedder(), settings=Settings(min_score=0.05)
    )
    assert (tmp_path / "ix" / "manifest.json").exists()
    a = idx.answer("How many hours of sun do tomatoes need?")
    c = a.citations[0]
    assert c.source == "garden/tomatoes.md"
    assert idx.source_text(c.source)[c.start : c.end] == c.quote
    status = idx.status()
    assert (status.documents, status.chunks) == (2, len(idx.current().chunks))


def test_default_folders_are_relative_to_cwd(
    seeds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(seeds.parent)
    monkeypatch.setattr("rag.api.make_embedder", lambda settings: HashingEmbedder())
    monkeypatch.setattr("rag.api._OPEN", {})
    a = rag.answer("Where does the Falcon booster land?")
    assert a.citations and (seeds.parent / "index" / "manifest.json").exists()
    assert rag.source_text(a.citations[0].source)[a.citations[0].start :].startswith(
        a.citations[0].quote
    )


@pytest.mark.parametrize("question", ["", "   \n\t "])
def test_empty_question_is_a_clear_error(index: Index, question: str) -> None:
    with pytest.raises(QuestionError, match="empty"):
        index.answer(question)


def test_huge_and_odd_questions_are_answered_not_crashed(index: Index) -> None:
    assert len(clean_question("x" * 100_000)) == 2000
    for q in ["fuel\x00\x01 🚀 ‏שלום‏", "tomatoes " * 20_000]:
        result = index.answer(q)
        assert result.question == q
        assert result.citations  # both name a word the seeds hold
        for c in result.citations:
            assert index.source_text(c.source)[c.start : c.end] == c.quote


def test_missing_and_empty_seeds(tmp_path: Path) -> None:
    with pytest.raises(SeedsNotFoundError):
        Index(
            Settings(seeds_dir=tmp_path / "no", index_dir=tmp_path / "i"), HashingEmbedder()
        ).answer("q")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmptyCorpusError, match="no readable document"):
        Index(
            Settings(seeds_dir=tmp_path / "empty", index_dir=tmp_path / "i"), HashingEmbedder()
        ).answer("q")


def test_source_text_refuses_unknown_and_escaping_paths(index: Index) -> None:
    index.current()
    for bad in ["nope.txt", "../../etc/passwd", "/etc/passwd"]:
        with pytest.raises(SourceNotFoundError, match="not an indexed source"):
            index.source_text(bad)


def test_running_index_follows_add_edit_delete(index: Index, settings: Settings) -> None:
    assert index.answer("penguins antarctic colony").citations == () or all(
        "enguin" not in c.quote for c in index.answer("penguins antarctic colony").citations
    )
    new = settings.seeds_dir / "birds.txt"
    new.write_text("Emperor penguins breed in an antarctic colony in winter.")
    cited = index.answer("penguins antarctic colony").citations
    assert cited[0].source == "birds.txt"
    new.write_text("Emperor penguins breed on sea ice in the antarctic winter.")
    c = index.answer("penguins antarctic colony").citations[0]
    assert c.quote == "Emperor penguins breed on sea ice in the antarctic winter."
    new.unlink()
    assert all(c.source != "birds.txt" for c in index.answer("penguins antarctic").citations)


def test_another_process_refresh_is_picked_up(
    index: Index, settings: Settings, embedder: HashingEmbedder
) -> None:
    index.current()
    (settings.seeds_dir / "x.txt").write_text("Quokkas smile on Rottnest island.")
    other = Index(settings, embedder)
    other.refresh()
    assert index.answer("quokkas rottnest").citations[0].source == "x.txt"


def test_watch_refreshes_on_change_until_stopped(index: Index, settings: Settings) -> None:
    import threading

    index.current()
    reports: list[object] = []
    stop = threading.Event()
    thread = threading.Thread(
        target=index.watch, args=(reports.append,), kwargs={"interval": 0.05, "stop": stop}
    )
    thread.start()
    try:
        (settings.seeds_dir / "late.txt").write_text("A wombat arrived late.")
        for _ in range(200):
            if reports:
                break
            threading.Event().wait(0.05)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert reports and reports[0].added == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("check", ["notify", "stat"])
def test_answers_stat_cited_files_only_without_notifications(
    settings: Settings, embedder: HashingEmbedder, monkeypatch: pytest.MonkeyPatch, check: str
) -> None:
    """While inotify reports no change, an answer quotes the text it read before; with
    ``seeds_check="stat"`` (or no inotify) every answer stats the files it quotes. An
    edit is quoted at once either way."""
    import dataclasses
    import os

    from rag.index import texts

    idx = Index(dataclasses.replace(settings, seeds_check=check), embedder)
    question = "Which booster lands on a drone ship?"
    assert idx.answer(question).citations[0].source == "rockets.txt"
    stats: list[str] = []
    real_stat = os.stat

    def counting_stat(path: str, *args: object, **kwargs: object) -> os.stat_result:
        stats.append(str(path))
        return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(texts.os, "stat", counting_stat)
    assert idx.answer(question).citations[0].source == "rockets.txt"
    watched = check == "notify" and idx._freshness.watching
    quoted = [p for p in stats if p.endswith("rockets.txt")]
    assert (quoted == []) if watched else quoted
    rockets = settings.seeds_dir / "rockets.txt"
    rockets.write_text("The Falcon booster lands on a drone ship at sea.\n", "utf-8")
    c = idx.answer(question).citations[0]
    assert c.quote == "The Falcon booster lands on a drone ship at sea."
    assert rockets.read_text("utf-8")[c.start : c.end] == c.quote


def test_read_only_answers_check_cited_files_every_time(
    index: Index, settings: Settings, embedder: HashingEmbedder
) -> None:
    """A read-only process does not watch the seeds: each answer looks at the files it
    quotes, so an edit nobody re-indexed drops the quote instead of quoting old text."""
    import dataclasses

    index.current()
    reader = Index(dataclasses.replace(settings, read_only=True), embedder)
    question = "Which booster lands on a drone ship?"
    assert reader.answer(question).citations[0].source == "rockets.txt"
    rockets = settings.seeds_dir / "rockets.txt"
    rockets.write_text("Rockets need oxygen. The Falcon booster lands at sea.\n", "utf-8")
    now = rockets.read_text("utf-8")
    after = reader.answer(question).citations
    for c in after:
        assert c.source != "rockets.txt" or now[c.start : c.end] == c.quote
    # Both indexed sentences of rockets.txt changed: none of them may be quoted now.
    assert all(c.source != "rockets.txt" for c in after)
