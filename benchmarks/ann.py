"""Exact (FAISS flat) vs approximate (HNSW) vector search: latency, recall@10, build time.

Synthetic clustered unit vectors (384-d) at 10k, 100k and 1M, and real MiniLM embeddings of
SQuADShifts sentences queried with its questions. The numbers choose `Settings.ann_threshold`
and the HNSW parameters in rag/index/stores/folder.py; the tables go under "## Vector index"
in RESULTS.md.

Example:
    .venv/bin/python -m benchmarks.ann --sizes 10000,100000,1000000 --real 1000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from benchmarks.common import (
    add_eval_dir,
    add_output_options,
    argument_parser,
    missing,
    publish,
    question_texts,
    read_jsonl,
    stamp,
    timed,
)
from rag.config import DEFAULT_ANN_THRESHOLD
from rag.index.stores import faiss as faiss_store

Array = npt.NDArray[np.float32]
DIM = 384
K = 10


def synthetic(n: int, seed: int, rank: int = 64, clusters: int = 1000) -> Array:
    """Unit vectors from 1,000 Gaussian clusters in a 64-d subspace, plus isotropic noise.

    Low intrinsic dimension and shared cluster centres (the same for every seed, so queries
    land among the data) mimic sentence embeddings; purely random vectors would not.
    """
    fixed = np.random.default_rng(12345)
    basis = np.linalg.qr(fixed.standard_normal((DIM, rank)))[0].astype(np.float32)
    centres = fixed.standard_normal((clusters, rank)).astype(np.float32)
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), dtype=np.float32)
    for lo in range(0, n, 100_000):  # in blocks: 1M vectors are 1.5 GB already
        m = min(100_000, n - lo)
        z = centres[rng.integers(0, clusters, m)] + rng.standard_normal((m, rank), np.float32)
        noise = rng.standard_normal((m, DIM), np.float32) * np.float32(0.3 * np.sqrt(rank / DIM))
        block = z @ basis.T + noise
        out[lo : lo + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def real(eval_dir: Path, limit: int, n_queries: int) -> tuple[Array, Array]:
    """MiniLM vectors of the first ``limit`` sentences of SQuADShifts passages and of
    the questions about those passages (the model load is not timed anywhere)."""
    from rag.embedding.torch import SentenceTransformerEmbedder
    from rag.text.segment import sentence_spans

    folder = eval_dir / "squadshifts_wiki"
    sentences: list[str] = []
    passages: set[str] = set()
    for row in read_jsonl(folder / "passages.jsonl"):
        if len(sentences) >= limit:
            break
        passages.add(row["passage_id"])
        sentences += [row["text"][a:b] for a, b in sentence_spans(row["text"])]
    questions = question_texts(folder / "questions.jsonl", passages)
    embedder = SentenceTransformerEmbedder()
    return embedder.embed_documents(sentences[:limit]), embedder.embed_documents(
        questions[:n_queries]
    )


def p50_ms(index: Any, queries: Array, n: int) -> float:
    """Median wall time of one single-query top-10 search, over ``n`` queries."""
    times = []
    for q in queries[:n]:
        t = time.perf_counter()
        index.search(q.reshape(1, -1), K)
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def p50_ms_threads(index: Any, queries: Array, n: int, threads: int) -> float:
    """`p50_ms` with FAISS limited to ``threads`` OpenMP threads (restored afterwards)."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        return p50_ms(index, queries, n)
    finally:
        faiss.omp_set_num_threads(before)


def recall(ids: npt.NDArray[np.int64], truth: npt.NDArray[np.int64]) -> float:
    """Mean share of the exact top-10 that the approximate top-10 found."""
    return float(np.mean([len(set(a) & set(b)) / K for a, b in zip(ids, truth, strict=True)]))


def hnsw_index(base: Array, ef_construction: int) -> Any:
    """What `rag.index.stores.folder.build_faiss` builds from its threshold on, with
    this efConstruction."""
    if ef_construction == faiss_store.HNSW_EF_CONSTRUCTION:
        return faiss_store.build_faiss(base, DIM, ann_threshold=1)
    index = faiss.IndexHNSWFlat(DIM, faiss_store.HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    index.add(base)
    return index


@dataclass(frozen=True)
class Result:
    data: str
    vectors: int
    flat_build_s: float
    flat_p50_ms: float
    flat_1t_p50_ms: float
    ef_construction: int
    hnsw_build_s: float
    sweep: dict[int, tuple[float, float]]  # efSearch -> (recall@10, p50 ms)


def measure(data: str, base: Array, queries: Array, ef_c: int, ef_s: list[int]) -> Result:
    """Flat and HNSW over ``base``: build time, latency, and recall against flat."""
    flat, flat_s = timed(lambda: faiss_store.build_faiss(base, DIM, ann_threshold=len(base) + 1))
    _, truth = flat.search(queries, K)
    reps = 30 if len(base) > 200_000 else 100
    flat_ms, flat_1t_ms = p50_ms(flat, queries, reps), p50_ms_threads(flat, queries, reps, 1)
    del flat
    hnsw, hnsw_s = timed(lambda: hnsw_index(base, ef_c))
    sweep = {}
    for ef in ef_s:
        hnsw.hnsw.efSearch = ef
        _, ids = hnsw.search(queries, K)
        sweep[ef] = (recall(ids, truth), p50_ms(hnsw, queries, len(queries)))
    return Result(data, len(base), flat_s, flat_ms, flat_1t_ms, ef_c, hnsw_s, sweep)


def main_table(results: list[Result]) -> str:
    """One row per data set and efConstruction, at the efSearch rag/index/stores/folder.py ships."""
    ef = faiss_store.HNSW_EF_SEARCH
    rows = [
        f"| data | vectors | flat build s | flat p50 ms | flat p50 ms, 1 thread "
        f"| HNSW efConstruction | HNSW build s | HNSW p50 ms (efSearch {ef}) | recall@10 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        rec, ms = r.sweep[ef]
        rows.append(
            f"| {r.data} | {r.vectors:,} | {r.flat_build_s:.2f} | {r.flat_p50_ms:.2f} | "
            f"{r.flat_1t_p50_ms:.2f} | {r.ef_construction} | {r.hnsw_build_s:.1f} | {ms:.2f} | "
            f"{rec:.3f} |"
        )
    return "\n".join(rows)


def sweep_table(results: list[Result]) -> str:
    """Recall@10 and p50 latency for every efSearch measured."""
    efs = sorted(results[0].sweep)
    rows = [
        "| data | vectors | efConstruction | "
        + " | ".join(f"efSearch {e}: recall / ms" for e in efs)
        + " |",
        "|---|---:|---:|" + "---:|" * len(efs),
    ]
    for r in results:
        cells = " | ".join(f"{r.sweep[e][0]:.3f} / {r.sweep[e][1]:.2f}" for e in efs)
        rows.append(f"| {r.data} | {r.vectors:,} | {r.ef_construction} | {cells} |")
    return "\n".join(rows)


def crossing(results: list[Result], budget_ms: float = 10.0) -> int | None:
    """Vectors at which 1-thread flat search reaches ``budget_ms`` (linear in the vectors,
    scaled from the largest synthetic size)."""
    synth = [r for r in results if r.data == "synthetic"]
    if not synth:
        return None
    big = max(synth, key=lambda r: r.vectors)
    return int(budget_ms * big.vectors / big.flat_1t_p50_ms)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args() -> argparse.Namespace:
    p = argument_parser(__doc__)
    p.add_argument("--sizes", type=_ints, default=[10_000, 100_000, 1_000_000])
    p.add_argument("--ef-construction", type=_ints, default=[40, 80])
    p.add_argument("--ef-search", type=_ints, default=[16, 32, 64, 128, 256])
    p.add_argument("--queries", type=int, default=200, help="queries per data set")
    p.add_argument(
        "--shipped-only-from",
        type=int,
        default=500_000,
        metavar="N",
        help="from N vectors on, build only the shipped efConstruction (a 1M build takes minutes)",
    )
    p.add_argument("--real", type=int, default=2000, help="real sentences (0 skips them)")
    add_eval_dir(p)
    add_output_options(p, "Vector index")
    args = p.parse_args()
    if faiss_store.HNSW_EF_SEARCH not in args.ef_search:
        args.ef_search.append(faiss_store.HNSW_EF_SEARCH)
    return args


def run(args: argparse.Namespace) -> list[Result]:
    results = []
    for n in args.sizes:
        base, queries = synthetic(n, seed=0), synthetic(args.queries, seed=1)
        builds = (
            args.ef_construction
            if n < args.shipped_only_from
            else [faiss_store.HNSW_EF_CONSTRUCTION]
        )
        for ef_c in builds:
            results.append(measure("synthetic", base, queries, ef_c, args.ef_search))
            print(main_table(results[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
        del base
    if args.real:
        base, queries = real(args.eval_dir, args.real, args.queries)
        for ef_c in args.ef_construction:
            results.append(measure("MiniLM sentences", base, queries, ef_c, args.ef_search))
    return results


def report(results: list[Result]) -> str:
    cross = crossing(results)
    where = f" (1-thread flat search reaches 10 ms at about {cross:,} vectors)" if cross else ""
    return (
        stamp()
        + "\nSingle-query top-10 search, one query at a time, p50 over the queries; recall@10 "
        "is the share of the exact (flat) top-10 that HNSW (M "
        f"{faiss_store.HNSW_M}) returns. Synthetic data: 1,000 Gaussian clusters in a 64-d "
        "subspace of 384-d plus noise, queries from the same clusters. MiniLM: the bundled model's "
        "vectors of SQuADShifts sentences, queried with the questions about those passages. "
        "`flat p50 ms` uses FAISS's default OpenMP threads; with the "
        "other core busy, 2 threads wait on each other: `1 thread` is the same search with "
        "`faiss.omp_set_num_threads(1)`, which seedrag uses for single queries. HNSW "
        "single-query search is single-threaded.\n\n"
        + main_table(results)
        + "\n\n"
        + sweep_table(results)
        + f"\n\nShipped: `Settings.ann_threshold = {DEFAULT_ANN_THRESHOLD:,}` chunks{where}; "
        f"HNSW M {faiss_store.HNSW_M}, efConstruction {faiss_store.HNSW_EF_CONSTRUCTION}, efSearch "
        f"{faiss_store.HNSW_EF_SEARCH} (rag/index/stores/faiss.py). Why: "
        f"{_shipped_summary(results)}, but every refresh rebuilds the FAISS index "
        f"from all vectors, and HNSW's build costs {build_ms_per_vector(results)} where flat's "
        "costs next to nothing; flat is kept while its search stays a small part of a warm "
        'answer (mostly the query embedding: see "Performance").'
        + _ef_construction_note(results)
        + "\n"
        + _shipped_only_note(results)
    )


def _shipped_only_note(results: list[Result]) -> str:
    sizes = {r.vectors for r in results if r.data == "synthetic"}
    big = [
        n
        for n in sizes
        if all(
            r.ef_construction == faiss_store.HNSW_EF_CONSTRUCTION
            for r in results
            if r.vectors == n and r.data == "synthetic"
        )
    ]
    multi = len({r.ef_construction for r in results}) > 1
    if not (multi and big):
        return ""
    return (
        f"At {', '.join(f'{n:,}' for n in sorted(big))} vectors only the shipped "
        f"efConstruction ({faiss_store.HNSW_EF_CONSTRUCTION}) was built, to bound the run time.\n"
    )


def _ef_construction_note(results: list[Result]) -> str:
    """How recall at the shipped efSearch moved with efConstruction, per size built twice."""
    ef, parts = faiss_store.HNSW_EF_SEARCH, []
    for n in sorted({r.vectors for r in results if r.data == "synthetic"}):
        rows = sorted(
            (r for r in results if r.vectors == n and r.data == "synthetic"),
            key=lambda r: r.ef_construction,
        )
        if len(rows) > 1:
            lo, hi = rows[0], rows[-1]
            parts.append(
                f"{lo.sweep[ef][0]:.3f} to {hi.sweep[ef][0]:.3f} at {n:,} vectors "
                f"(build {lo.hnsw_build_s:.0f} s to {hi.hnsw_build_s:.0f} s)"
            )
    if not parts:
        return ""
    return (
        f" Raising efConstruction moved recall@10 at efSearch {ef} from " + "; ".join(parts) + "."
    )


def _shipped_summary(results: list[Result]) -> str:
    """Latency and recall range of HNSW at the shipped efSearch, over every row."""
    at = [r.sweep[faiss_store.HNSW_EF_SEARCH] for r in results]
    recalls, times = [x for x, _ in at], [y for _, y in at]
    return (
        f"HNSW answers in {min(times):.1f}-{max(times):.1f} ms at every size measured, with "
        f"recall@10 {min(recalls):.3f}-{max(recalls):.3f} at efSearch {faiss_store.HNSW_EF_SEARCH}"
    )


def build_ms_per_vector(results: list[Result]) -> str:
    """HNSW build time per vector at the largest synthetic size with the shipped efConstruction."""
    rows = [
        r
        for r in results
        if r.data == "synthetic" and r.ef_construction == faiss_store.HNSW_EF_CONSTRUCTION
    ]
    if not rows:
        return "(not measured)"
    big = max(rows, key=lambda r: r.vectors)
    per = 1000 * big.hnsw_build_s / big.vectors
    return f"{per:.2f} ms per vector ({big.hnsw_build_s:.0f} s at {big.vectors:,})"


def main() -> int:
    args = parse_args()
    if args.real and missing(args.eval_dir / "squadshifts_wiki"):
        return 2
    body = report(run(args))
    print(body)
    publish(body, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
