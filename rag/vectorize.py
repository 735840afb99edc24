"""Vectors for the new chunks and sentences of a refresh: reused, or from one model pass.

Owns what is sent to the model: text the index already holds (by content hash) is reused;
each remaining chunk goes through the model once and, when the embedder can pool spans
(`rag.embed.SpanEmbedder`), every sentence inside it takes its vector from that pass (from
the chunk where it lies most centrally). Sentences no embedded chunk saw whole (truncation,
or reused chunks) are embedded on their own. It does not decide which sources changed.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rag.embed import Embedder, SpanEmbedder, Vectors
from rag.store import Span
from rag.types import Chunk, sha256_text

Progress = Callable[[int, int], None]  # (texts embedded so far, texts to embed)
Fetch = Callable[[list[int]], Vectors]  # stored vectors of old rows


class VectorPool:
    """Embeds texts, reusing the vector already stored for the same content where allowed.

    ``embedded`` counts the rows that came from the model.
    """

    def __init__(self, embedder: Embedder, known: dict[str, int], fetch: Fetch) -> None:
        self.embedder = embedder
        self.known = known
        self.fetch = fetch  # stored vectors of old rows, fetched only for reused content
        self.embedded = 0

    def split(self, texts: list[str], reusable: list[bool]) -> tuple[Vectors, dict[str, list[int]]]:
        """Rows filled with reused vectors, and the rows still to embed, by content hash."""
        out = np.zeros((len(texts), self.embedder.dimension), dtype=np.float32)
        todo: dict[str, list[int]] = {}
        reused: dict[int, int] = {}  # new row -> old row
        for i, (text, reuse) in enumerate(zip(texts, reusable, strict=True)):
            key = sha256_text(text)
            row = self.known.get(key) if reuse else None
            if row is not None:
                reused[i] = row
            else:
                todo.setdefault(key, []).append(i)
        if reused:
            out[list(reused)] = self.fetch(list(reused.values()))
        return out, todo

    def embed(
        self,
        out: Vectors,
        texts: list[str],
        todo: dict[str, list[int]],
        step: int,
        progress: Callable[[int], None] | None,
    ) -> None:
        """Fill the ``todo`` rows of ``out``, each distinct text embedded once.

        Longest first across the whole refresh, so every batch holds texts of similar length
        (little padding); ``step`` texts per model call keep progress moving.
        """
        pending = sorted(todo.values(), key=lambda rows: -len(texts[rows[0]]))
        for b in range(0, len(pending), step):
            part = pending[b : b + step]
            vecs = self.embedder.embed_documents([texts[rows[0]] for rows in part])
            for rows, vec in zip(part, vecs, strict=True):
                out[rows] = vec
                self.embedded += len(rows)
            if progress:
                progress(min(b + step, len(pending)))


@dataclass
class _Best:
    margin: int
    vector: Vectors


def _containing(
    chunks: list[Chunk], sentences: list[Span], wanted: list[int], embedded: set[int]
) -> dict[int, list[tuple[int, int]]]:
    """For each chunk row in ``embedded``: the ``wanted`` sentence rows it holds whole, with
    the sentence's distance (characters) to the nearer chunk edge."""
    by_source: dict[str, list[int]] = {}
    for j, c in enumerate(chunks):
        by_source.setdefault(c.source, []).append(j)
    starts = {src: [chunks[j].start for j in rows] for src, rows in by_source.items()}
    out: dict[int, list[tuple[int, int]]] = {}
    for i in wanted:
        s = sentences[i]
        rows = by_source.get(s.source, [])
        k = bisect.bisect_right(starts.get(s.source, []), s.start) - 1
        while k >= 0 and chunks[rows[k]].end > s.start:  # chunks ordered, ends increasing
            c = chunks[rows[k]]
            if rows[k] in embedded and c.end >= s.end:
                out.setdefault(rows[k], []).append((i, min(s.start - c.start, c.end - s.end)))
            k -= 1
    return out


def in_context(
    embedder: SpanEmbedder,
    pools: tuple[VectorPool, VectorPool],
    chunks: list[Chunk],
    sentences: list[Span],
    reusable: tuple[list[bool], list[bool]],
    step: int,
    progress: Progress | None,
) -> tuple[Vectors, Vectors]:
    """Chunk and sentence vectors, sentences pooled from the chunk pass where possible."""
    c_texts, s_texts = [c.text for c in chunks], [s.text for s in sentences]
    c_out, c_todo = pools[0].split(c_texts, reusable[0])
    s_out, s_todo = pools[1].split(s_texts, reusable[1])
    wanted = sorted(i for rows in s_todo.values() for i in rows)
    embedded = {j for rows in c_todo.values() for j in rows}
    holders = _containing(chunks, sentences, wanted, embedded)
    best: dict[int, _Best] = {}
    total = len(c_todo) + len(wanted)
    pending = sorted(c_todo.values(), key=lambda rows: -len(c_texts[rows[0]]))
    for b in range(0, len(pending), step):
        part = pending[b : b + step]
        asks: list[dict[tuple[int, int], list[tuple[int, int]]]] = []
        for rows in part:  # rows share one text: local offsets hold in each of them
            ask: dict[tuple[int, int], list[tuple[int, int]]] = {}
            for j in rows:
                for i, margin in holders.get(j, []):
                    local = (
                        sentences[i].start - chunks[j].start,
                        sentences[i].end - chunks[j].start,
                    )
                    ask.setdefault(local, []).append((i, margin))
            asks.append(ask)
        got = embedder.embed_with_spans(
            [c_texts[rows[0]] for rows in part], [list(a) for a in asks]
        )
        for n, (rows, ask) in enumerate(zip(part, asks, strict=True)):
            c_out[rows] = got.texts[n]
            pools[0].embedded += len(rows)
            for vec, ok, owners in zip(got.spans[n], got.seen[n], ask.values(), strict=True):
                for i, margin in owners if ok else ():
                    if i not in best or margin > best[i].margin:
                        best[i] = _Best(margin, vec)
        if progress:
            progress(min(b + step, len(pending)), total)
    for i, found in best.items():
        s_out[i] = found.vector
    alone: dict[str, list[int]] = {}
    for i in wanted:
        if i not in best:
            alone.setdefault(sha256_text(s_texts[i]), []).append(i)
    done = len(pending) + len(best)
    tick = (lambda n: progress(done + n, total)) if progress else None
    pools[1].embed(s_out, s_texts, alone, step, tick)
    if progress:
        progress(total, total)
    return c_out, s_out
