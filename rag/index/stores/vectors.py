"""The vector-store seam: what retrieval and refresh need of the chunk vectors.

Owns the `VectorIndex` protocol (count, search top-k, score given rows, fetch
rows) and its FAISS implementation. Rows are positions in the stored chunk
table (``StoredIndex.chunks``), whatever the store keys its vectors by. Which
chunks to add or delete is decided by `rag.index.build`; stores only apply it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import faiss
import numpy as np

from rag.embedding.base import Vectors


class VectorIndex(Protocol):
    """The chunk vectors of one generation of the index."""

    @property
    def dimension(self) -> int:
        """Length of each vector."""
        ...

    def count(self) -> int:
        """How many chunk vectors the index holds."""
        ...

    def search(self, query: Vectors, k: int) -> list[tuple[int, float]]:
        """``(row, cosine)`` of the ``k`` nearest chunks, best first."""
        ...

    def nearest(self, query: Vectors, k: int) -> list[int]:
        """Rows of the ``k`` nearest chunks, best first, for a caller that re-ranks them:
        a store may rank them from a compact copy of the vectors."""
        ...

    def scores(self, query: Vectors, rows: Sequence[int]) -> list[float]:
        """Cosine of ``query`` with each of ``rows``."""
        ...

    def vectors(self, rows: Sequence[int]) -> Vectors:
        """The stored vectors of ``rows``, in that order."""
        ...

    def params(self) -> dict[str, Any]:
        """What the manifest records about the index: type and search parameters."""
        ...


class RowVectors(Protocol):
    """Vectors read by row, ``[rows]`` or ``[a:b]``, without holding them all (pgvector)."""

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, dimension)."""
        ...

    def __getitem__(self, key: slice | Sequence[int]) -> Vectors:
        """The rows ``key`` names, as a float32 array."""
        ...


def in_memory(vectors: Vectors | RowVectors) -> bool:
    """Whether FAISS's kernels can read ``vectors`` where they lie."""
    return (
        isinstance(vectors, np.ndarray)
        and vectors.dtype == np.float32
        and vectors.ndim == 2
        and vectors.flags.c_contiguous
    )


def _read_once(vectors: Vectors | RowVectors, ids: np.ndarray) -> tuple[Vectors, np.ndarray]:
    """Each distinct row of ``ids`` read once, and where each of ``ids`` lies among them."""
    unique, where = np.unique(ids, return_inverse=True)
    return np.asarray(vectors[unique.tolist()], dtype=np.float32), where


def inner_products(vectors: Vectors | RowVectors, query: Vectors, ids: np.ndarray) -> Vectors:
    """``vectors[i] . query`` for each ``i`` in ``ids`` (int64; repeats allowed).

    In-memory vectors go through FAISS's by-index kernel: one pass, no copy of the rows
    (on pydocs, after a model call had evicted the caches, a numpy gather and product
    of the same rows took 0.62 ms, the kernel 0.12 ms). Other stores read each row once.
    """
    q = np.ascontiguousarray(query, dtype=np.float32).reshape(-1)
    if in_memory(vectors):
        assert isinstance(vectors, np.ndarray)
        out = np.empty(len(ids), dtype=np.float32)
        faiss.fvec_inner_products_by_idx(  # type: ignore[attr-defined]  # not in the stubs
            faiss.swig_ptr(out),
            faiss.swig_ptr(q),
            faiss.swig_ptr(vectors),
            faiss.swig_ptr(ids),
            vectors.shape[1],
            1,
            len(ids),
        )
        return out
    rows, where = _read_once(vectors, ids)
    return np.asarray(np.einsum("ij,j->i", rows, q)[where], dtype=np.float32)


def pair_products(vectors: Vectors | RowVectors, a: np.ndarray, b: np.ndarray) -> Vectors:
    """``vectors[a[i]] . vectors[b[i]]`` for each ``i`` (int64 rows; repeats allowed).

    In-memory vectors go through FAISS's indexed-pairs kernel, single-threaded as in
    `FaissVectors.search`: no copy of the rows. Other stores read each row once.
    """
    if in_memory(vectors):
        assert isinstance(vectors, np.ndarray)
        out = np.empty(len(a), dtype=np.float32)
        faiss.omp_set_num_threads(1)
        faiss.pairwise_indexed_inner_product(  # type: ignore[attr-defined]  # not in the stubs
            vectors.shape[1],
            len(a),
            faiss.swig_ptr(vectors),
            faiss.swig_ptr(a),
            faiss.swig_ptr(vectors),
            faiss.swig_ptr(b),
            faiss.swig_ptr(out),
        )
        return out
    rows, where = _read_once(vectors, np.concatenate((a, b)))
    products = np.einsum("ij,ij->i", rows[where[: len(a)]], rows[where[len(a) :]])
    return np.asarray(products, dtype=np.float32)


def _query(query: Vectors) -> Vectors:
    return np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)


class FaissVectors:
    """A FAISS index whose id i is row i (flat or HNSW, inner product on unit vectors).

    Example:
        >>> v = FaissVectors(faiss.IndexFlatIP(2))
        >>> v.count(), v.search(np.array([1.0, 0.0]), 3)
        (0, [])
    """

    def __init__(self, index: Any) -> None:
        self.faiss = index
        self._half: Any = None  # the half-precision copy `nearest` searches (flat only)

    @property
    def dimension(self) -> int:
        return int(self.faiss.d)

    def count(self) -> int:
        return int(self.faiss.ntotal)

    def _flat(self) -> Vectors | None:
        """A view of a flat index's vectors (no copy), None for HNSW.

        Taken per call, never kept: adding to the index may move its storage.
        """
        if not isinstance(self.faiss, faiss.IndexFlat):
            return None
        n, d = self.count(), self.dimension
        return faiss.rev_swig_ptr(self.faiss.get_xb(), n * d).reshape(n, d)

    def search(self, query: Vectors, k: int) -> list[tuple[int, float]]:
        n = self.count()
        if n == 0 or k < 1:
            return []
        # One query: a second OpenMP thread only waits (measured 16 ms vs 1.6 ms at 10k
        # vectors with the other core busy; benchmarks/ann.py).
        faiss.omp_set_num_threads(1)
        scores, ids = self.faiss.search(_query(query), min(k, n))
        return [(int(i), float(s)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]

    def nearest(self, query: Vectors, k: int) -> list[int]:
        """A flat index is searched through a half-precision copy, made on first use and
        kept beside it (half as many bytes again): retrieval searches right after a model
        call has evicted the vectors from the caches, and reading half the bytes speeds
        it up with the same proposals (benchmarks/perf.py, "Dense proposals": on pydocs'
        1,684 chunks 0.29 against 0.46 ms). HNSW searches itself."""
        if k < 1:
            return []
        half = self._half
        if half is None or half.ntotal != self.faiss.ntotal:
            flat = self._flat()
            if flat is None:
                return [row for row, _ in self.search(query, k)]
            half = faiss.IndexScalarQuantizer(
                self.dimension, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
            )
            half.add(flat)
            self._half = half
        if half.ntotal == 0:
            return []
        faiss.omp_set_num_threads(1)  # as in `search`
        _, ids = half.search(_query(query), min(k, half.ntotal))
        return ids[0][ids[0] >= 0].tolist()  # type: ignore[no-any-return]

    def scores(self, query: Vectors, rows: Sequence[int]) -> list[float]:
        if not rows:
            return []
        # Element-wise, not `@`: OpenBLAS threads wait on a busy core (see rag.query.quotes).
        return (self.vectors(rows) * _query(query)[0]).sum(axis=1).astype(float).tolist()  # type: ignore[no-any-return]

    def vectors(self, rows: Sequence[int]) -> Vectors:
        if not len(rows):
            return np.zeros((0, self.dimension), dtype=np.float32)
        flat = self._flat()
        if flat is not None:
            return np.array(flat[np.asarray(rows, dtype=np.int64)], dtype=np.float32)
        return np.stack([self.faiss.reconstruct(int(r)) for r in rows]).astype(np.float32)

    def all_vectors(self) -> Vectors:
        """Every vector, row i for chunk i (one call, for rebuilding the FAISS file)."""
        n = self.count()
        if n == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.ascontiguousarray(self.faiss.reconstruct_n(0, n), dtype=np.float32)

    def params(self) -> dict[str, Any]:
        if not isinstance(self.faiss, faiss.IndexHNSW):
            return {"type": "flat"}
        hnsw: Any = self.faiss.hnsw  # the stubs lack nb_neighbors
        return {
            "type": "hnsw",
            "M": int(hnsw.nb_neighbors(1)),
            "efConstruction": int(hnsw.efConstruction),
            "efSearch": int(hnsw.efSearch),
        }
