"""The vector index: exact below `Settings.ann_threshold` chunks, HNSW from there on.

Golden checks against brute-force NumPy, the switch itself, and HNSW through a
save/load round trip and a whole refresh (answers still verbatim).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from rag.api import Index
from rag.config import Settings
from rag.embedding.fake import HashingEmbedder
from rag.errors import IndexCorruptError, SettingsError
from rag.index import manifest as manifest_io
from rag.index.build import refresh
from rag.index.stores import faiss as faiss_store
from rag.index.stores import folder as store

Array = npt.NDArray[np.float32]


def clustered(n: int, seed: int, dim: int = 64, clusters: int = 30) -> Array:
    """Unit vectors around shared cluster centres (the same centres for every seed)."""
    centres = np.random.default_rng(0).standard_normal((clusters, dim))
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(0, clusters, n)] + rng.standard_normal((n, dim))
    unit: Array = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return unit


def numpy_top_k(base: Array, queries: Array, k: int) -> tuple[Array, npt.NDArray[np.int64]]:
    scores = queries @ base.T
    ids = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, ids, axis=1), ids


def test_flat_top_k_equals_numpy() -> None:
    base, queries = clustered(2000, seed=1), clustered(50, seed=2)
    index = faiss_store.build_faiss(base, 64, ann_threshold=len(base) + 1)
    assert faiss_store.faiss_params(index) == {"type": "flat"}
    scores, ids = index.search(queries, 10)
    want_scores, want_ids = numpy_top_k(base, queries, 10)
    assert (ids == want_ids).all()
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)


def test_hnsw_recall_at_10_against_numpy() -> None:
    base, queries = clustered(3000, seed=1), clustered(200, seed=2)
    index = faiss_store.build_faiss(base, 64, ann_threshold=1)
    assert faiss_store.faiss_params(index)["type"] == "hnsw"
    scores, ids = index.search(queries, 10)
    _, want_ids = numpy_top_k(base, queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, want_ids, strict=True)])
    assert recall >= 0.95, recall
    # Scores are inner products (larger is closer), exactly as the flat index gives them.
    np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", queries, base[ids]), atol=1e-5)
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    np.testing.assert_array_equal(index.reconstruct(7), base[7])


def test_the_index_type_switches_at_the_threshold() -> None:
    base = clustered(100, seed=3)
    assert (
        faiss_store.faiss_params(faiss_store.build_faiss(base, 64, ann_threshold=101))["type"]
        == "flat"
    )
    params = faiss_store.faiss_params(faiss_store.build_faiss(base, 64, ann_threshold=100))
    assert params == {
        "type": "hnsw",
        "M": faiss_store.HNSW_M,
        "efConstruction": faiss_store.HNSW_EF_CONSTRUCTION,
        "efSearch": faiss_store.HNSW_EF_SEARCH,
    }


@pytest.mark.parametrize("value", [0, -5, 2.5, True])
def test_ann_threshold_is_validated(value: object) -> None:
    with pytest.raises(SettingsError, match="ann_threshold"):
        Settings(ann_threshold=value)  # type: ignore[arg-type]


def test_hnsw_index_saves_and_loads_with_ef_search(settings: Settings) -> None:
    settings = settings.with_(ann_threshold=1)
    refresh(settings, HashingEmbedder())
    manifest = manifest_io.read_manifest(settings.index_dir)
    assert manifest.store["type"] == "hnsw"
    assert manifest.store["efSearch"] == faiss_store.HNSW_EF_SEARCH
    loaded = store.load_index(settings.index_dir)
    assert loaded.chunk_index.faiss.hnsw.efSearch == faiss_store.HNSW_EF_SEARCH
    # The manifest's value is the one applied on load, whatever the file holds.
    path = settings.index_dir / manifest_io.MANIFEST
    raw = json.loads(path.read_text())
    path.write_text(json.dumps({**raw, "faiss": {**raw["faiss"], "efSearch": 77}}))
    assert store.load_index(settings.index_dir).chunk_index.faiss.hnsw.efSearch == 77


def test_a_manifest_naming_another_index_type_is_caught(settings: Settings) -> None:
    refresh(settings.with_(ann_threshold=1), HashingEmbedder())
    path = settings.index_dir / manifest_io.MANIFEST
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "faiss": {"type": "flat"}}))
    with pytest.raises(IndexCorruptError, match=r"'flat' vector index.*'hnsw'"):
        store.load_index(settings.index_dir)


def test_refresh_with_hnsw_answers_verbatim_like_flat(settings: Settings, tmp_path: Path) -> None:
    hnsw = Index(settings.with_(ann_threshold=1), HashingEmbedder())
    flat = Index(settings.with_(index_dir=tmp_path / "flat-index"), HashingEmbedder())
    hnsw.refresh()
    flat.refresh()
    assert manifest_io.read_manifest(settings.index_dir).store["type"] == "hnsw"
    assert manifest_io.read_manifest(tmp_path / "flat-index").store == {"type": "flat"}
    for question in ("How many hours of sun do tomatoes need?", "Where does the booster land?"):
        answer = hnsw.answer(question)
        assert answer.citations, question
        for c in answer.citations:
            assert hnsw.source_text(c.source)[c.start : c.end] == c.quote
        assert answer == flat.answer(question)  # HNSW is exact on an index this small
