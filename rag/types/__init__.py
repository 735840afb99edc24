"""The data seedrag passes between stages: frozen dataclasses and protocols, nothing else.

Stored data (`Document`, `Chunk`, `Sentence`, `StoredIndex` and its `Manifest`) and
query-time data (`Hit`, `Citation`, `Answer`, `IndexReport`, `IndexStatus`) are separate
types; `VectorIndex` and `RowVectors` are the seams through which a store hands out
vectors. They live in `documents`, `answers` and `index` by what they describe; import them
from here.
"""

from rag.types.answers import Answer, Citation, Hit
from rag.types.documents import Chunk, Document, Sentence, Vectors, sha256_text
from rag.types.index import (
    IndexReport,
    IndexStatus,
    Manifest,
    RowVectors,
    SourceRecord,
    StoredIndex,
    VectorIndex,
)

__all__ = [
    "Answer",
    "Chunk",
    "Citation",
    "Document",
    "Hit",
    "IndexReport",
    "IndexStatus",
    "Manifest",
    "RowVectors",
    "Sentence",
    "SourceRecord",
    "StoredIndex",
    "VectorIndex",
    "Vectors",
    "sha256_text",
]
