"""Questions are answered from the current generation while a new one is built.

The embedder here blocks inside `embed_documents` until the test lets it go, so a
refresh is held mid-build for as long as the test needs: a question that had to wait
for it would never return while it is held.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.api import Index
from rag.config import Settings
from rag.embedding.fake import HashingEmbedder
from rag.types import Vectors
from tests.conftest import FACTS, write_seeds

WAIT_S = 30.0  # only reached when the behaviour under test is broken


class HeldEmbedder(HashingEmbedder):
    """Embeds documents only while ``release`` is set; questions are never held."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.release.set()
        self.holding = threading.Event()

    def embed_documents(self, texts: list[str]) -> Vectors:
        if not self.release.is_set():
            self.holding.set()
            assert self.release.wait(WAIT_S), "the test never released the refresh"
        return super().embed_documents(texts)


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[Index, HeldEmbedder]]:
    seeds = write_seeds(tmp_path / "seeds", FACTS)
    embedder = HeldEmbedder()
    index = Index(Settings(seeds_dir=seeds, index_dir=tmp_path / "index"), embedder)
    index.current()
    yield index, embedder
    embedder.release.set()


def hold_a_refresh(index: Index, embedder: HeldEmbedder, *, rebuild: bool) -> threading.Thread:
    embedder.release.clear()
    worker = threading.Thread(target=lambda: index.refresh(rebuild=rebuild), daemon=True)
    worker.start()
    assert embedder.holding.wait(WAIT_S), "the refresh never reached the model"
    return worker


def answer_in_time(index: Index, question: str) -> list[str]:
    quotes: list[str] = []
    asker = threading.Thread(
        target=lambda: quotes.extend(c.quote for c in index.answer(question).citations)
    )
    asker.start()
    asker.join(WAIT_S)
    assert not asker.is_alive(), "the question waited for the refresh"
    return quotes


def test_questions_are_answered_during_a_full_rebuild(held: tuple[Index, HeldEmbedder]) -> None:
    index, embedder = held
    worker = hold_a_refresh(index, embedder, rebuild=True)
    assert index.refreshing
    quotes = answer_in_time(index, "Which booster lands on a drone ship?")
    assert "The Falcon booster lands on a drone ship." in quotes
    for c in index.answer("How much sun do tomatoes need?").citations:
        assert index.source_text(c.source)[c.start : c.end] == c.quote
    embedder.release.set()
    worker.join(WAIT_S)
    assert not worker.is_alive() and not index.refreshing


def test_an_edit_seen_during_a_refresh_is_indexed_when_it_ends(
    held: tuple[Index, HeldEmbedder],
) -> None:
    index, embedder = held
    worker = hold_a_refresh(index, embedder, rebuild=True)
    notes = index.settings.seeds_dir / "notes.txt"
    notes.write_text("The comet returns every seventy-six years.\n", "utf-8")
    # This question sees the new file while the rebuild is held: it is answered from the
    # current generation at once, and the running refresh takes the change in after.
    answer_in_time(index, "When does the comet return?")
    embedder.release.set()
    worker.join(WAIT_S)
    assert not worker.is_alive()
    assert "notes.txt" in index.current().sources  # without a new look at the seeds
    quotes = [c.quote for c in index.answer("When does the comet return?").citations]
    assert quotes and quotes[0] == "The comet returns every seventy-six years."


def test_the_page_says_the_index_is_updating(held: tuple[Index, HeldEmbedder]) -> None:
    from ui.app import UPDATING, ChatApp

    index, embedder = held
    app = ChatApp(index)
    assert UPDATING not in app.status_line()
    worker = hold_a_refresh(index, embedder, rebuild=True)
    assert app.status_line().startswith(UPDATING)
    embedder.release.set()
    worker.join(WAIT_S)
    assert UPDATING not in app.status_line()


def test_a_change_noted_during_a_refresh_gets_one_more_pass() -> None:
    from rag.index.gate import RefreshGate

    gate, passes = RefreshGate(), []

    def refresh() -> int:
        passes.append(gate.running)
        if len(passes) == 1:  # a question sees a change while this refresh runs
            assert gate.try_run(lambda: None) is False
        return len(passes)

    assert gate.run(refresh) == 1 and passes == [True, True] and not gate.running
    assert gate.try_run(lambda: None) is True  # released after the last pass
