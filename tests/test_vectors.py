"""Inner products over a store's rows, and the proposals of a flat FAISS index."""

from __future__ import annotations

import itertools

import faiss
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.index.stores.faiss import FaissVectors
from rag.index.vectors import inner_products, pair_products
from tests.test_retrieve import Rows

DIM = 16


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 30), st.integers(0, 60), st.integers(0, 2**32 - 1), st.booleans())
def test_products_by_row_match_numpy(n: int, pairs: int, seed: int, by_row: bool) -> None:
    """FAISS's kernels (in memory) and the read-rows path (other stores) give numpy's
    products, repeats and any order included."""
    rng = np.random.default_rng(seed)
    vectors = _unit(rng, n)
    store = Rows(vectors) if by_row else vectors
    a = rng.integers(0, n, pairs).astype(np.int64)
    b = rng.integers(0, n, pairs).astype(np.int64)
    query = _unit(rng, 1)[0]
    assert np.allclose(pair_products(store, a, b), (vectors[a] * vectors[b]).sum(axis=1), atol=1e-6)
    assert np.allclose(inner_products(store, query, a), vectors[a] @ query, atol=1e-6)


@pytest.mark.parametrize("n", [0, 1, 5, 300])
def test_nearest_proposes_the_exact_top_k(n: int) -> None:
    """The half-precision copy a flat index is searched through finds the rows the exact
    search finds (well-separated scores: half precision only blurs near ties)."""
    rng = np.random.default_rng(n)
    vectors = _unit(rng, n)
    flat = faiss.IndexFlatIP(DIM)
    flat.add(vectors)
    index = FaissVectors(flat)
    for query in _unit(rng, 20):
        exact = index.search(query, 10)
        got = index.nearest(query, 10)
        assert len(got) == len(exact) == min(10, n)
        scores = vectors @ query if n else np.zeros(0)
        if exact:  # only rows within half precision's error of the 10th may swap in
            assert all(scores[r] >= exact[-1][1] - 2e-3 for r in got)
        ranked = [s for _, s in exact]
        if all(x - y > 1e-2 for x, y in itertools.pairwise(ranked)):
            assert got == [row for row, _ in exact]
    assert index.nearest(_unit(rng, 1)[0], 0) == []


def _at_scores(query: np.ndarray, scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unit rows whose inner products with the unit ``query`` are ``scores``."""
    noise = rng.normal(size=(len(scores), DIM))
    noise -= np.outer(noise @ query, query)  # orthogonal to the query
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    rows = scores[:, None] * query + np.sqrt(1 - scores**2)[:, None] * noise
    return rows.astype(np.float32)


@pytest.mark.parametrize("n", [12, 300, 3000])
def test_nearest_keeps_the_exact_order_of_well_separated_rows(n: int) -> None:
    """With the top scores 0.02 apart (far above half precision's error), the proposals
    are the exact top 10 in the exact order, however many rows there are."""
    rng = np.random.default_rng(n)
    query = _unit(rng, 1)[0].astype(np.float64)
    top = 0.9 - 0.02 * np.arange(10)
    rest = rng.uniform(-0.5, 0.6, n - 10)
    order = rng.permutation(n)
    vectors = _at_scores(query, np.concatenate([top, rest])[order], rng)
    flat = faiss.IndexFlatIP(DIM)
    flat.add(vectors)
    want = [int(np.flatnonzero(order == i)[0]) for i in range(10)]
    assert [row for row, _ in FaissVectors(flat).search(query.astype(np.float32), 10)] == want
    assert FaissVectors(flat).nearest(query.astype(np.float32), 10) == want


def test_nearest_follows_rows_added_after_its_copy() -> None:
    rng = np.random.default_rng(7)
    flat = faiss.IndexFlatIP(DIM)
    flat.add(_unit(rng, 50))
    index = FaissVectors(flat)
    query = _unit(rng, 1)[0]
    index.nearest(query, 5)  # makes the half-precision copy
    flat.add(query[None, :])  # a row equal to the query: the nearest of all
    assert index.nearest(query, 5)[0] == 50


def test_hnsw_proposes_what_it_finds() -> None:
    rng = np.random.default_rng(3)
    hnsw = faiss.IndexHNSWFlat(DIM, 8, faiss.METRIC_INNER_PRODUCT)
    hnsw.add(_unit(rng, 200))
    index = FaissVectors(hnsw)
    query = _unit(rng, 1)[0]
    assert index.nearest(query, 7) == [row for row, _ in index.search(query, 7)]
