"""`HashingEmbedder`: a deterministic lexical stand-in for the model, for fast tests and demos."""

from __future__ import annotations

import hashlib
import itertools
import re

import numpy as np
import numpy.typing as npt

from rag.embedding.base import SpanVectors, normalise
from rag.types import Vectors

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
