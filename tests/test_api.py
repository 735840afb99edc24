"""The public Python surface: free import, defaults, errors, staleness noticed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import rag
from rag.api import Index, clean_question
from rag.config import Settings
from rag.embed import HashingEmbedder
from rag.errors import EmptyCorpusError, QuestionError, SeedsNotFoundError, SourceNotFoundError


def test_import_is_free() -> None:
    code = (
        "import sys, time; t = time.perf_counter(); import rag; dt = time.perf_counter() - t; "
        "heavy = [m for m in ('torch', 'sentence_transformers', 'faiss', 'gradio', "
        "'langchain_text_splitters') if m in sys.modules]; print(dt, heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    seconds, heavy = out.stdout.split(" ", 1)
    assert heavy.strip() == "[]"
    assert float(seconds) < 0.5
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
