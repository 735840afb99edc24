"""Products of a query vector with stored vectors, wherever the store keeps them.

Sentence vectors are a NumPy array (folder store) or rows read on demand (pgvector,
`RowVectors`); these helpers read only the rows asked for, once.
"""

from __future__ import annotations

import faiss
import numpy as np

from rag.types import RowVectors, Vectors


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
    (a numpy gather and product is several times slower right after a model call has
    evicted the caches). Other stores read each row once.
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
