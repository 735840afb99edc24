"""The one place that names embedder implementations: `Settings` in, an `Embedder` out.

It also owns the one fallback: where the settings leave the runtime open and ONNX
Runtime cannot run here, the torch model is used, with a warning. A runtime asked for
explicitly is used or refused, never swapped.
"""

from __future__ import annotations

import logging

from rag.config import DEFAULT_RUNTIME, Runtime, Settings
from rag.embedding.base import Embedder
from rag.embedding.torch import SentenceTransformerEmbedder
from rag.errors import ModelLoadError

log = logging.getLogger(__name__)


def runtime_of(settings: Settings) -> Runtime:
    """The runtime ``settings`` ask for: theirs, or the default for their device.

    Example:
        >>> runtime_of(Settings()), runtime_of(Settings(device="cuda"))
        ('onnx-int8', 'torch')
    """
    if settings.runtime is not None:
        return settings.runtime
    return "torch" if settings.device == "cuda" else DEFAULT_RUNTIME


def runtime_in(model_name: str) -> Runtime:
    """The runtime an index's recorded model name says built it ("+onnx-int8" etc.).

    Example:
        >>> runtime_in("all-MiniLM-L6-v2+onnx-int8"), runtime_in("all-MiniLM-L6-v2")
        ('onnx-int8', 'torch')
    """
    suffix = model_name.rpartition("+")[2] if "+" in model_name else "torch"
    return "onnx" if suffix == "onnx" else "onnx-int8" if suffix == "onnx-int8" else "torch"


def make_embedder(settings: Settings) -> Embedder:
    """The embedder ``settings`` ask for (`runtime_of`), ready to embed.

    An ONNX runtime is prepared here (the cached file found, or exported unless
    ``settings.read_only``); the torch model itself loads on first use.

    Raises:
        ModelLoadError: the runtime was asked for explicitly and cannot run here.
    """
    runtime = runtime_of(settings)
    if runtime == "torch":
        return SentenceTransformerEmbedder(settings.model, settings.batch_size, settings.device)
    from rag.embedding.onnx import OnnxEmbedder

    embedder = OnnxEmbedder(
        settings.model,
        settings.batch_size,
        quantized=runtime == "onnx-int8",
        cache_dir=settings.onnx_cache_dir,
        allow_export=not settings.read_only,
    )
    try:
        embedder.prepare()
    except ModelLoadError as exc:
        if settings.runtime is not None:
            raise
        log.warning("%s: using the torch model instead", exc)
        return SentenceTransformerEmbedder(settings.model, settings.batch_size, settings.device)
    return embedder
