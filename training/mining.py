"""Hard negatives as the answer path meets them: the chunks seedrag's own retrieval
returns for a training question that do not hold its answer.

The training articles are indexed with the default settings (hybrid retrieval, the
bundled embedder), each training question is searched, and the top chunks are mapped back
to the corpus' passages (same splitter, same sizes, so the same offsets). At question time
the model must rank the answering chunk above exactly these.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from rag.api import Index
from rag.config import Settings
from rag.embedding.factory import make_embedder
from rag.evaluation.sets import write_documents
from training.data import Corpus, Passage

log = logging.getLogger("training")


def retrieved(corpus: Corpus, titles: set[str], k: int) -> dict[str, list[Passage]]:
    """qid -> the passages of its top ``k`` retrieved chunks, best first, over an index of
    every document of ``titles`` (its own document included)."""
    docs = {d: t for d, t in corpus.texts.items() if corpus.titles[d] in titles}
    by_place = {(p.doc, p.start): p for d in docs for p in corpus.passages[d]}
    out: dict[str, list[Passage]] = {}
    with tempfile.TemporaryDirectory(prefix="rag-mine-") as tmp:
        root = Path(tmp)
        write_documents({f"{d}.txt": t for d, t in docs.items()}, root / "seeds")
        settings = Settings(seeds_dir=root / "seeds", index_dir=root / "index", reader="off")
        index = Index(settings, make_embedder(settings))
        index.refresh()
        missing = 0
        for q in corpus.questions:
            if q.doc not in docs:
                continue
            found = []
            for h in index.search(q.text, k):
                p = by_place.get((h.chunk.source.removesuffix(".txt"), h.chunk.start))
                if p is None:
                    missing += 1
                else:
                    found.append(p)
            out[q.qid] = found
    log.info("retrieved chunks for %d questions (%d not mapped to a passage)", len(out), missing)
    return out
