"""The LangChain-tutorial RAG baseline, as a `rag.evaluation.evaluate.Pipeline`.

RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200), the same bundled
MiniLM model, FAISS inner product over unit vectors, the top 4 whole chunks cited; it never
abstains. Chunk offsets are found with `str.find` from a cursor, so citations are verbatim.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from langchain_text_splitters import RecursiveCharacterTextSplitter

from rag.embedding.torch import load_model
from rag.evaluation.evaluate import PipelineBuilder
from rag.evaluation.sets import EvalSet
from rag.types import Citation

log = logging.getLogger(__name__)

CHUNK_SIZE = 1000
CHUNK_OVERLAP = 200
TOP_K = 4  # LangChain's similarity_search default
BATCH_SIZE = 32


def chunk_offsets(text: str, pieces: Sequence[str]) -> list[tuple[int, int]]:
    """``(start, end)`` of each piece, searched from just after the previous start.

    Example:
        >>> chunk_offsets("ab ab", ["ab", "ab"])
        [(0, 2), (3, 5)]
    """
    spans, cursor = [], 0
    for piece in pieces:
        start = text.find(piece, cursor)
        if start < 0:
            raise ValueError(f"chunk is not a substring after offset {cursor}: {piece[:60]!r}")
        spans.append((start, start + len(piece)))
        cursor = start + 1
    return spans


def split(documents: Mapping[str, str]) -> list[Citation]:
    """The tutorial's chunks of every document, as citations with score 0."""
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP, add_start_index=False
    )
    chunks: list[Citation] = []
    for source in sorted(documents):
        text = documents[source]
        pieces = splitter.split_text(text)
        for piece, (start, end) in zip(pieces, chunk_offsets(text, pieces), strict=True):
            chunks.append(Citation(source, start, end, piece, 0.0))
    return chunks


class LangChainBaseline:
    """Top-4 whole chunks by cosine similarity: the answer of the LangChain RAG tutorial."""

    def __init__(self, documents: Mapping[str, str], *, progress: bool = False) -> None:
        self.model: Any = load_model()
        self.chunks = split(documents)
        vectors = self._embed([c.quote for c in self.chunks], progress)
        self.index = faiss.IndexFlatIP(vectors.shape[1])
        self.index.add(vectors)
        log.info("baseline: %d chunks from %d documents", len(self.chunks), len(documents))

    def _embed(self, texts: list[str], progress: bool = False) -> np.ndarray[Any, Any]:
        out = self.model.encode(
            texts,
            batch_size=BATCH_SIZE,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(out, dtype=np.float32).reshape(len(texts), -1)

    def _search(self, question: str, k: int) -> list[Citation]:
        scores, ids = self.index.search(self._embed([question]), min(k, len(self.chunks)))
        return [
            Citation(c.source, c.start, c.end, c.quote, float(s))
            for s, i in zip(scores[0], ids[0], strict=True)
            if i >= 0
            for c in [self.chunks[int(i)]]
        ]

    def answer(self, question: str) -> Sequence[Citation]:
        """The top 4 chunks, whole, as citations."""
        return self._search(question, TOP_K)

    def sources(self, question: str, k: int) -> list[str]:
        """Sources of the top ``k`` chunks."""
        return [c.source for c in self._search(question, k)]


def build_baseline(progress: bool = False) -> PipelineBuilder:
    """A `rag.evaluation.evaluate.PipelineBuilder` for the baseline (it reads the set's texts)."""

    def build(eval_set: EvalSet, seeds_dir: Path) -> LangChainBaseline:
        return LangChainBaseline(eval_set.documents, progress=progress)

    return build
