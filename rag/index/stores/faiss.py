"""The FAISS vector index of the folder store: flat or HNSW, id i is chunk row i.

Owns building the index from vectors (exact below ``Settings.ann_threshold`` chunks,
HNSW from there on, parameters chosen in benchmarks/ann.py), the `VectorIndex`
implementation over it, and the search parameters the manifest records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import faiss
import numpy as np

from rag.config import DEFAULT_ANN_THRESHOLD
from rag.types import Vectors

# HNSW parameters (used from Settings.ann_threshold chunks on), chosen in benchmarks/ann.py.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128


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
        # One query: a second OpenMP thread only waits, far longer than the search takes
        # when the other core is busy (benchmarks/ann.py).
        faiss.omp_set_num_threads(1)
        scores, ids = self.faiss.search(_query(query), min(k, n))
        return [(int(i), float(s)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]

    def nearest(self, query: Vectors, k: int) -> list[int]:
        """A flat index is searched through a half-precision copy, made on first use and
        kept beside it (half as many bytes again): retrieval searches right after a model
        call has evicted the vectors from the caches, and reading half the bytes speeds
        it up with the same proposals (benchmarks/perf.py). HNSW searches itself."""
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


def build_faiss(
    vectors: Vectors, dimension: int, ann_threshold: int = DEFAULT_ANN_THRESHOLD
) -> Any:
    """An inner-product (cosine, for unit vectors) FAISS index over ``vectors``.

    Exact (``IndexFlatIP``) below ``ann_threshold`` vectors; from there on
    approximate (``IndexHNSWFlat``, parameters measured in benchmarks/ann.py),
    whose single-query search stays under a millisecond where exact search
    grows linearly. Both keep ``reconstruct``.

    Example:
        >>> build_faiss(np.eye(4, dtype=np.float32), 4, ann_threshold=2).hnsw.efSearch
        128
    """
    index: Any
    if len(vectors) >= ann_threshold:
        index = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        index = faiss.IndexFlatIP(dimension)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def faiss_params(index: Any) -> dict[str, Any]:
    """What the manifest records about a FAISS index: its type and search parameters."""
    return FaissVectors(index).params()


def apply_params(index: Any, params: Mapping[str, Any] | None) -> str | None:
    """Set the manifest's search parameters on a loaded index; a mismatch, or None."""
    have = faiss_params(index)["type"]
    if params is not None and params.get("type") != have:
        return f"manifest says a {params.get('type')!r} vector index, the file holds {have!r}"
    if have == "hnsw":
        index.hnsw.efSearch = int((params or {}).get("efSearch", HNSW_EF_SEARCH))
    return None
