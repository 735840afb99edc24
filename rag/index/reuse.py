"""Vectors for the new chunks and sentences of a refresh: reused, or from the model.

Owns what is sent to the model: text the index already holds (by content hash) is reused;
the rest goes through the model in one of three passes (``Settings.model_pass``):

- "sentences": each sentence alone; a chunk's vector is the mean of the vectors of the
  sentences it overlaps, each weighted by the characters it shares with the chunk (a chunk
  that overlaps no sentence is embedded itself);
- "chunks": each chunk once; every sentence inside it takes its vector from that pass (from
  the chunk where it lies most centrally), for a `rag.embedding.base.SpanEmbedder`. Sentences no
  embedded chunk saw whole (truncation, or reused chunks) are embedded on their own;
- "both": each chunk and each sentence on its own.

It does not decide which sources changed.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence, Sized
from dataclasses import dataclass
from typing import Any

import numpy as np

from rag.embedding.base import Embedder, SpanEmbedder, Tokenizing, normalise
from rag.index.sentences import SentenceRows
from rag.types import Chunk, Sentence, Vectors, sha256_text

Progress = Callable[[int, int], None]  # (texts embedded so far, texts to embed)
Fetch = Callable[[list[int]], Vectors]  # stored vectors of old rows
Share = tuple[list[int], list[int]]  # sentence rows in a chunk, characters each shares


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

        Largest first across the whole refresh, so every batch holds texts of similar
        length (little padding); ``step`` texts per model call keep progress moving. Size
        is the token count where the embedder tokenises apart (`Tokenizing`: each text is
        then tokenised once, and its tokens embedded), else the length in characters.
        """
        groups = list(todo.values())
        items = _sized(self.embedder, [texts[rows[0]] for rows in groups])
        order = _largest_first(items)
        for b in range(0, len(order), step):
            part = order[b : b + step]
            vecs = _embed(self.embedder, [items[g] for g in part])
            for g, vec in zip(part, vecs, strict=True):
                out[groups[g]] = vec
                self.embedded += len(groups[g])
            if progress:
                progress(min(b + step, len(order)))


def _sized(embedder: object, texts: list[str]) -> Sequence[Sized]:
    """What the build sends to the model for ``texts``, each sized by its ``len()``:
    tokens where the embedder tokenises apart (`Tokenizing`), else the texts."""
    return embedder.tokenize(texts) if isinstance(embedder, Tokenizing) else texts


def _embed(embedder: Embedder, items: list[Any]) -> Vectors:
    """Vectors of what `_sized` returned."""
    if isinstance(embedder, Tokenizing):
        return embedder.embed_tokens(items)
    return embedder.embed_documents(items)


def _largest_first(items: Sequence[Sized]) -> list[int]:
    return sorted(range(len(items)), key=lambda g: (-len(items[g]), g))


def by_size(embedder: object, texts: list[str], groups: list[list[int]]) -> list[list[int]]:
    """``groups`` (rows sharing one text) ordered by their text's size, largest first
    (token count where the embedder can tell, see `_sized`). Texts go to the model in
    this order, a step at a time (for progress), so each step's batches hold texts of
    similar length: little padding.
    """
    order = _largest_first(_sized(embedder, [texts[rows[0]] for rows in groups]))
    return [groups[g] for g in order]


@dataclass
class _Best:
    margin: int
    vector: Vectors


def _containing(
    chunks: list[Chunk], sentences: list[Sentence], wanted: list[int], embedded: set[int]
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


@dataclass(frozen=True)
class _Rows:
    """New rows of one kind (chunks or sentences): texts, vectors so far, rows to embed."""

    texts: list[str]
    out: Vectors  # reused vectors already in place; the rest is filled by embedding
    todo: dict[str, list[int]]  # content hash -> rows still to embed


def new_vectors(
    embedder: Embedder,
    pools: tuple[VectorPool, VectorPool],
    chunks: list[Chunk],
    sentences: list[Sentence],
    reusable: tuple[list[bool], list[bool]],
    step: int,
    progress: Progress | None,
    *,
    model_pass: str,
) -> tuple[Vectors, Vectors]:
    """Chunk and sentence vectors of a refresh: reused where allowed, the rest from the
    ``model_pass`` (see the module docstring; "chunks" needs a `SpanEmbedder`)."""
    c_texts, s_texts = [x.text for x in chunks], [x.text for x in sentences]
    c = _Rows(c_texts, *pools[0].split(c_texts, reusable[0]))
    s = _Rows(s_texts, *pools[1].split(s_texts, reusable[1]))
    if model_pass == "sentences":
        _from_sentences(pools, chunks, sentences, c, s, step, progress)
    elif model_pass == "chunks":
        assert isinstance(embedder, SpanEmbedder)
        _in_context(embedder, pools, chunks, sentences, c, s, step, progress)
    else:
        _separately(pools, c, s, step, progress)
    return c.out, s.out


def _shares(chunks: list[Chunk], sentences: list[Sentence]) -> dict[int, Share]:
    """For each chunk row that overlaps a sentence: those sentence rows, and how many
    characters each shares with the chunk."""
    lookup = SentenceRows(sentences)
    out: dict[int, Share] = {}
    for j, c in enumerate(chunks):
        rows = list(lookup.overlapping(c.source, c.start, c.end))
        if rows:
            spans = [sentences[i] for i in rows]
            out[j] = (rows, [min(x.end, c.end) - max(x.start, c.start) for x in spans])
    return out


def _from_sentences(
    pools: tuple[VectorPool, VectorPool],
    chunks: list[Chunk],
    sentences: list[Sentence],
    c: _Rows,
    s: _Rows,
    step: int,
    progress: Progress | None,
) -> None:
    """Sentences embedded alone; each chunk the weighted mean of its sentences' vectors.

    Every new chunk row gets its own mean, reused text or not: the same text elsewhere may
    overlap other sentences, and a mean costs no model call. ``embedded`` still counts only
    the rows whose text was not reusable, as the report promises.
    """
    shares = _shares(chunks, sentences)
    alone = {
        key: rest for key, rows in c.todo.items() if (rest := [r for r in rows if r not in shares])
    }
    total = len(s.todo) + len(alone)
    tick = (lambda n: progress(n, total)) if progress else None
    pools[1].embed(s.out, s.texts, s.todo, step, tick)  # every new sentence row filled
    for j, (members, chars) in shares.items():
        mean = np.asarray(chars, dtype=np.float32) @ s.out[members]
        c.out[j] = normalise(mean.reshape(1, -1))[0]
    pools[0].embedded += sum(r in shares for rows in c.todo.values() for r in rows)
    tock = (lambda n: progress(len(s.todo) + n, total)) if progress else None
    pools[0].embed(c.out, c.texts, alone, step, tock)


def _separately(
    pools: tuple[VectorPool, VectorPool], c: _Rows, s: _Rows, step: int, progress: Progress | None
) -> None:
    """Each text embedded on its own (a plain `Embedder`)."""
    total = len(c.todo) + len(s.todo)  # distinct texts to embed: what the steps count
    tick = (lambda n: progress(n, total)) if progress else None
    pools[0].embed(c.out, c.texts, c.todo, step, tick)
    tock = (lambda n: progress(len(c.todo) + n, total)) if progress else None
    pools[1].embed(s.out, s.texts, s.todo, step, tock)


def _in_context(
    embedder: SpanEmbedder,
    pools: tuple[VectorPool, VectorPool],
    chunks: list[Chunk],
    sentences: list[Sentence],
    c: _Rows,
    s: _Rows,
    step: int,
    progress: Progress | None,
) -> None:
    """Sentences pooled from the chunk pass where possible, the others embedded alone."""
    wanted = sorted(i for rows in s.todo.values() for i in rows)
    embedded = {j for rows in c.todo.values() for j in rows}
    holders = _containing(chunks, sentences, wanted, embedded)
    best: dict[int, _Best] = {}
    total = len(c.todo) + len(wanted)
    pending = by_size(embedder, c.texts, list(c.todo.values()))
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
            [c.texts[rows[0]] for rows in part], [list(a) for a in asks]
        )
        for n, (rows, ask) in enumerate(zip(part, asks, strict=True)):
            c.out[rows] = got.texts[n]
            pools[0].embedded += len(rows)
            for vec, ok, owners in zip(got.spans[n], got.seen[n], ask.values(), strict=True):
                for i, margin in owners if ok else ():
                    if i not in best or margin > best[i].margin:
                        best[i] = _Best(margin, vec)
        if progress:
            progress(min(b + step, len(pending)), total)
    for i, found in best.items():
        s.out[i] = found.vector
    alone: dict[str, list[int]] = {}
    for i in wanted:
        if i not in best:
            alone.setdefault(sha256_text(s.texts[i]), []).append(i)
    done = len(pending) + len(best)
    tick = (lambda n: progress(done + n, total)) if progress else None
    pools[1].embed(s.out, s.texts, alone, step, tick)
    if progress:
        progress(total, total)
