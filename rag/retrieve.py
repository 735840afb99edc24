"""Find the chunks most relevant to a question.

Owns ranking over the stored index: exact inner-product search in FAISS over
unit vectors (cosine similarity). It does not pick quotes or decide whether
the documents answer; that is `rag.quotes`' job.
"""

from __future__ import annotations

import numpy as np

from rag.embed import Vectors
from rag.store import StoredIndex
from rag.types import Hit


def search(index: StoredIndex, query_vector: Vectors, k: int) -> list[Hit]:
    """The ``k`` chunks nearest to ``query_vector``, best first.

    Example:
        >>> hits = search(stored, embedder.embed_query("Why did Musk leave?"), 5)  # doctest: +SKIP
    """
    n = int(index.chunk_index.ntotal)
    if n == 0 or k < 1:
        return []
    q = np.ascontiguousarray(query_vector, dtype=np.float32).reshape(1, -1)
    scores, ids = index.chunk_index.search(q, min(k, n))
    return [
        Hit(index.chunks[int(i)], float(s), rank)
        for rank, (s, i) in enumerate(zip(scores[0], ids[0], strict=True))
        if i >= 0
    ]
