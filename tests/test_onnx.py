"""The ONNX backends (`rag.embedding.onnx`): agreement with torch, the cache, the fallback."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rag.embedding.onnx as onnx_embed
import rag.embedding.onnx_export as onnx_export
from rag.api import Index
from rag.cli import _settings, build_parser
from rag.config import Settings
from rag.embedding.factory import make_embedder
from rag.embedding.onnx import OnnxEmbedder
from rag.embedding.onnx_export import cache_key
from rag.embedding.torch import SentenceTransformerEmbedder
from rag.errors import ModelLoadError, SettingsError
from rag.text.segment import sentence_spans
from tests.conftest import SEED_FILE, SEED_QUESTIONS

# ---- without the model -----------------------------------------------------------------------


def test_runtime_setting_is_validated_and_backend_is_its_deprecated_name() -> None:
    assert Settings().runtime is None  # as the index was built; onnx-int8 for a new one
    with pytest.raises(SettingsError, match="'tensorrt'"):
        Settings(runtime="tensorrt")
    with pytest.warns(DeprecationWarning, match="runtime"):
        assert Settings(backend="torch").runtime == "torch"
    with pytest.raises(SettingsError, match="disagree"), pytest.warns(DeprecationWarning):
        Settings(backend="torch", runtime="onnx")
    # The GPU path is torch's: ONNX Runtime here is the CPU build.
    with pytest.raises(SettingsError, match="--runtime torch"):
        Settings(runtime="onnx-int8", device="cuda")


def test_make_embedder_follows_the_runtime_and_never_exports_for_a_reader(
    tmp_path: Path,
) -> None:
    assert isinstance(make_embedder(Settings(runtime="torch")), SentenceTransformerEmbedder)
    gpu = make_embedder(Settings(device="cuda"))
    assert isinstance(gpu, SentenceTransformerEmbedder) and gpu.device == "cuda"
    empty = Settings(read_only=True, onnx_cache_dir=tmp_path / "cache")
    with pytest.raises(ModelLoadError, match="never exports"):
        make_embedder(empty.with_(runtime="onnx-int8"))
    assert not (tmp_path / "cache").exists()
    # Left open, the runtime falls back to torch, with a warning, where ONNX cannot run.
    assert isinstance(make_embedder(empty), SentenceTransformerEmbedder)
    assert OnnxEmbedder(quantized=False).name.endswith("+onnx")


def test_cli_takes_runtime_on_index_ask_and_serve(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    assert parser.parse_args(["index", "--runtime", "onnx"]).runtime == "onnx"
    assert parser.parse_args(["ask", "q", "--runtime", "onnx-int8"]).runtime == "onnx-int8"
    assert parser.parse_args(["serve", "--runtime", "torch"]).runtime == "torch"
    assert parser.parse_args(["ask", "q"]).runtime is None  # the Settings default applies
    with pytest.raises(SystemExit):
        parser.parse_args(["ask", "q", "--runtime", "tensorrt"])
    old = parser.parse_args(["ask", "q", "--backend", "torch"])  # the deprecated name
    assert _settings(old).runtime == "torch"
    assert "--backend is deprecated" in capsys.readouterr().err


def test_cache_key_changes_with_weights_and_precision(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    fp32, int8 = cache_key(str(tmp_path), False), cache_key(str(tmp_path), True)
    assert fp32 != int8 and "-fp32-" in fp32 and "-int8-" in int8
    assert cache_key(str(tmp_path), False) == fp32  # stable
    (tmp_path / "model.safetensors").write_bytes(b"other weights")
    assert cache_key(str(tmp_path), False) != fp32


def _no_torch(texts: list[str]) -> np.ndarray:
    return np.full((len(texts), 3), 0.5, dtype=np.float32)


def test_falls_back_to_torch_without_onnxruntime(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now fails
    monkeypatch.setattr(SentenceTransformerEmbedder, "embed_documents", lambda s, t: _no_torch(t))
    settings = Settings(onnx_cache_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="rag.embedding.factory"):
        e = make_embedder(settings)  # the runtime left open: the factory falls back
    assert e.name == "all-MiniLM-L6-v2"  # the torch model's name: its index is torch's
    assert "needs onnxruntime" in caplog.text and "torch" in caplog.text
    assert e.embed_documents(["a", "b"]).shape == (2, 3)  # served by the fallback
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ModelLoadError, match="--runtime torch"):
        make_embedder(settings.with_(runtime="onnx-int8"))  # asked for: refused, not swapped


def test_falls_back_to_torch_when_the_export_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(folder: str, out: Path) -> None:
        out.write_bytes(b"half a file")
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(onnx_export, "_torch_export", broken)
    with caplog.at_level(logging.WARNING, logger="rag.embedding.factory"):
        e = make_embedder(Settings(onnx_cache_dir=tmp_path))
    assert e.name == "all-MiniLM-L6-v2"
    assert "exporter exploded" in caplog.text
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone, nothing cached


# ---- with the real model ---------------------------------------------------------------------


def seed_sentences(n: int = 40) -> list[str]:
    text = SEED_FILE.read_text("utf-8")
    found = [text[a:b].strip() for a, b in sentence_spans(text)]
    return [s for s in found if len(s) > 30][:n]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def torch_vectors() -> np.ndarray:
    return SentenceTransformerEmbedder().embed_documents(seed_sentences())


@pytest.mark.model
@pytest.mark.parametrize(("quantized", "least"), [(False, 0.999), (True, 0.98)])
def test_onnx_embeddings_match_torch(
    cache: Path, torch_vectors: np.ndarray, quantized: bool, least: float
) -> None:
    e = OnnxEmbedder(quantized=quantized, cache_dir=cache)
    assert e.name == "all-MiniLM-L6-v2+" + ("onnx-int8" if quantized else "onnx")
    vectors = e.embed_documents(seed_sentences())
    assert vectors.shape == torch_vectors.shape and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosine = (vectors * torch_vectors).sum(axis=1)
    assert cosine.mean() >= 0.99, cosine
    assert cosine.min() >= least, cosine  # int8: one sentence may dip a little lower


@pytest.mark.model
@pytest.mark.parametrize("quantized", [False, True])
def test_onnx_top_k_agrees_with_torch(
    cache: Path, torch_vectors: np.ndarray, quantized: bool
) -> None:
    path = SEED_QUESTIONS
    questions = [json.loads(x)["question"] for x in path.read_text().splitlines() if x.strip()]
    reference = SentenceTransformerEmbedder()
    e = OnnxEmbedder(quantized=quantized, cache_dir=cache)
    docs = e.embed_documents(seed_sentences())
    same_top1 = 0
    for q in questions:
        want = np.argsort(-(torch_vectors @ reference.embed_query(q)))
        got = np.argsort(-(docs @ e.embed_query(q)))
        assert want[0] in got[:3], q  # torch's best sentence is among ONNX's top 3
        assert len(set(want[:5]) & set(got[:5])) >= 3, q
        same_top1 += int(want[0] == got[0])
    assert same_top1 >= len(questions) - (1 if quantized else 0)


@pytest.mark.model
def test_second_load_reuses_the_cached_file(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = OnnxEmbedder(quantized=True, cache_dir=cache)
    before = first.embed_query("Why did Musk leave OpenAI?")
    files = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    assert sorted(n.split("-")[2] for n in files) == ["fp32", "int8"]

    def no_export(*args: object) -> None:
        raise AssertionError("exported again although the cache holds the file")

    monkeypatch.setattr(onnx_export, "_torch_export", no_export)
    monkeypatch.setattr(onnx_embed, "_SESSIONS", {})  # as in a new process
    again = OnnxEmbedder(quantized=True, cache_dir=cache)
    assert again.name == "all-MiniLM-L6-v2+onnx-int8"
    assert np.array_equal(again.embed_query("Why did Musk leave OpenAI?"), before)
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == files


@pytest.mark.model
def test_answering_from_the_cache_imports_no_torch(cache: Path) -> None:
    OnnxEmbedder(quantized=True, cache_dir=cache).prepare()  # exported and cached here
    code = (
        "import sys; from pathlib import Path; from rag.embedding.onnx import OnnxEmbedder; "
        f"e = OnnxEmbedder(quantized=True, cache_dir=Path({str(cache)!r})); "
        "print(e.embed_query('hello').shape, e.name, "
        "'torch' in sys.modules, 'sentence_transformers' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["(384,)", "all-MiniLM-L6-v2+onnx-int8", "False", "False"]


@pytest.mark.model
def test_int8_index_passes_the_seed_acceptance_checks(
    cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = SEED_QUESTIONS
    root = tmp_path_factory.mktemp("onnx-seed")
    (root / "seeds").mkdir()
    shutil.copyfile(SEED_FILE, root / "seeds" / SEED_FILE.name)
    settings = Settings(seeds_dir=root / "seeds", index_dir=root / "index", runtime="onnx-int8")
    idx = Index(settings, OnnxEmbedder(quantized=True, cache_dir=cache))
    idx.refresh()
    manifest = json.loads((settings.index_dir / "manifest.json").read_text())
    assert manifest["model"]["name"] == "all-MiniLM-L6-v2+onnx-int8"
    for q in (json.loads(x) for x in path.read_text().splitlines() if x.strip()):
        result = idx.answer(q["question"])
        text = idx.source_text(SEED_FILE.name)
        assert all(text[c.start : c.end] == c.quote for c in result.citations)
        if q["answerable"]:
            assert any(k in c.quote for c in result.citations[:3] for k in q["answer_keys"]), q
        else:
            assert result.citations == (), q


def test_a_new_export_removes_only_its_own_stale_files(tmp_path: Path) -> None:
    from rag.embedding.onnx_export import _remove_stale

    model = tmp_path / "model"
    model.mkdir()
    cache = tmp_path / "cache"
    cache.mkdir()
    current = cache / cache_key(str(model), quantized=True)
    stem = current.name.rsplit("-", 1)[0]
    stale = cache / f"{stem}-0000000000000000.onnx"
    legacy = cache / "model-int8-1111111111111111.onnx"  # named before the folder id
    other_precision = cache / cache_key(str(model), quantized=False)
    other_folder = tmp_path / "elsewhere" / "model"
    other_folder.mkdir(parents=True)
    other_model = cache / cache_key(str(other_folder), quantized=True)
    for path in (current, stale, legacy, other_precision, other_model):
        path.write_bytes(b"onnx")
    _remove_stale(current)
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        p.name for p in (current, other_precision, other_model)
    )
