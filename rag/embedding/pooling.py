"""Token-level helpers shared by the real embedders: tokenising with offsets, span pooling.

Owns the mapping from a text's tokens (their character offsets) to character spans of that
text, and the mean pooling of token vectors over such a span, so that one pass of the model
over a chunk also yields a vector for each sentence inside it. It runs no model.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from rag.embedding.base import SpanVectors, Vectors, normalise

Span = tuple[int, int]  # character offsets into one text, end exclusive


@dataclass(frozen=True)
class Batch:
    """Model inputs of a batch of texts, with what span pooling needs to know about them.

    ``offsets[i, t]`` is token ``t``'s ``(start, end)`` in text ``i`` (``(0, 0)`` for
    special and padding tokens, as ``special[i, t]`` also says); ``seen[i]`` is how many
    characters of text ``i`` the tokens cover: ``len(text)``, or less when truncated.
    """

    ids: npt.NDArray[np.int64]
    mask: npt.NDArray[np.int64]
    types: npt.NDArray[np.int64]
    offsets: npt.NDArray[np.int64]
    special: npt.NDArray[np.bool_]
    seen: list[int]


def tokenizer(folder: str, max_tokens: int) -> Any:
    """The fast tokenizer of the model in ``folder``: truncates, never pads.

    Padding is added per batch (`model_inputs`, `encode`), once texts are grouped by token
    count, so a batch is padded only to its own longest text.

    Usage (not a doctest: it needs a built index, a model or a server)::

        tok = tokenizer(model_folder(DEFAULT_MODEL), 256)
    """
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    tok.enable_truncation(max_tokens)
    tok.no_padding()
    return tok


MAX_PADDING = 1.2  # a batch's padded tokens over its real tokens, at most (but see by_length)


def by_length(
    encodings: Sequence[Any], batch_size: int, max_padding: float = MAX_PADDING
) -> list[list[int]]:
    """Positions of ``encodings`` in batches of at most ``batch_size``, most tokens first.

    Ordered by token count, not characters: characters per token vary (names, numbers,
    code), so batches sorted by characters carry much padding. A batch also ends before
    a text that would make it more than ``max_padding`` times its real tokens once
    padded: in a large corpus neighbours in this order have nearly the same length and
    batches stay full, but a short document's few sentences differ enough that one
    padded batch costs more than several small ones.

    Example:
        >>> class E:
        ...     def __init__(self, n): self.ids = [0] * n
        >>> by_length([E(3), E(9), E(5)], 2)
        [[1], [2], [0]]
        >>> by_length([E(9), E(9), E(8)], 2)
        [[0, 1], [2]]
    """
    order = sorted(range(len(encodings)), key=lambda i: (-len(encodings[i].ids), i))
    batches: list[list[int]] = []
    batch: list[int] = []
    width = real = 0
    for i in order:
        n = len(encodings[i].ids)
        if batch and (
            len(batch) == batch_size or width * (len(batch) + 1) > max_padding * (real + n)
        ):
            batches.append(batch)
            batch = []
        if not batch:
            width, real = n, 0
        batch.append(i)
        real += n
    if batch:
        batches.append(batch)
    return batches


def _padded(rows: list[list[Any]], width: int, fill: Any, dtype: Any) -> npt.NDArray[Any]:
    out = np.full((len(rows), width), fill, dtype=dtype)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


Inputs = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]


class Tokens:
    """One text's token ids as the model sees them, kept compactly: what `model_inputs`
    reads of a one-segment encoding (attention all ones, token types all zero).

    The build tokenises every text of a refresh before embedding any (to order them by
    size): kept this way they take a few bytes a token, a small fraction of what the
    tokenizer's encodings hold.
    """

    __slots__ = ("ids",)

    def __init__(self, encoding: Any) -> None:
        self.ids = np.asarray(encoding.ids, dtype=np.int32)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def attention_mask(self) -> npt.NDArray[np.int64]:
        return np.ones(len(self.ids), dtype=np.int64)

    @property
    def type_ids(self) -> npt.NDArray[np.int64]:
        return np.zeros(len(self.ids), dtype=np.int64)


def model_inputs(encodings: Sequence[Any]) -> Inputs:
    """``(input_ids, attention_mask, token_type_ids)`` of tokenised texts, as int64 arrays
    padded to the longest of them.

    All a plain embedding needs: offsets are `encode`'s extra, for span pooling only.
    """
    width = max((len(e.ids) for e in encodings), default=0)
    return (
        _padded([e.ids for e in encodings], width, 0, np.int64),
        _padded([e.attention_mask for e in encodings], width, 0, np.int64),
        _padded([e.type_ids for e in encodings], width, 0, np.int64),
    )


def encode(tok: Any, texts: list[str]) -> Batch:
    """Tokenise ``texts`` once: model inputs plus token offsets (see `Batch`)."""
    return batch_of(texts, tok.encode_batch(texts))


def batch_of(texts: list[str], encodings: list[Any]) -> Batch:
    """The `Batch` of ``texts`` from their encodings, padded to the longest of them."""
    ids, mask, types = model_inputs(encodings)
    width = ids.shape[1]
    special = _padded([e.special_tokens_mask for e in encodings], width, 1, bool)
    offsets = np.zeros((len(texts), width, 2), dtype=np.int64)
    seen = []
    for i, (text, e) in enumerate(zip(texts, encodings, strict=True)):
        if e.offsets:
            offsets[i, : len(e.offsets)] = e.offsets
        ends = [b for (_, b), s in zip(e.offsets, e.special_tokens_mask, strict=True) if not s]
        seen.append(max(ends, default=0) if e.overflowing else len(text))
    return Batch(ids=ids, mask=mask, types=types, offsets=offsets, special=special, seen=seen)


def pool_spans(
    tokens: npt.NDArray[np.float32],
    offsets: npt.NDArray[np.int64],
    special: npt.NDArray[np.bool_],
    mask: npt.NDArray[np.int64],
    seen: int,
    spans: list[Span],
) -> tuple[Vectors, npt.NDArray[np.bool_]]:
    """Unit vectors of ``spans`` of one text, and whether the model saw each span whole.

    A span's vector is the mean of the vectors of the text's special tokens (``[CLS]``,
    ``[SEP]``) and of the tokens that start inside the span, so a span covering the whole
    text gets the text's own mean-pooled vector. A span reaching past ``seen`` (truncated)
    or holding no token gets a zero row and ``False``.

    Example:
        >>> t = np.eye(4, dtype=np.float32)[:, :3]  # [CLS] a b [SEP], in 3 dimensions
        >>> off = np.array([[0, 0], [0, 1], [2, 3], [0, 0]])
        >>> sp, m = np.array([1, 0, 0, 1], bool), np.ones(4, np.int64)
        >>> v, ok = pool_spans(t, off, sp, m, 3, [(0, 3), (2, 3), (2, 9)])
        >>> ok.tolist(), [round(float(x), 3) for x in v[1]]
        ([True, True, False], [0.707, 0.0, 0.707])
    """
    real = (~special) & (mask > 0) & (offsets[:, 1] > offsets[:, 0])
    starts = offsets[real, 0]
    total = np.zeros((len(starts) + 1, tokens.shape[1]), dtype=np.float64)
    np.cumsum(tokens[real], axis=0, out=total[1:])
    specials = special & (mask > 0)
    extra = tokens[specials].sum(axis=0, dtype=np.float64)
    n_extra = int(specials.sum())
    bounds = np.array(spans, dtype=np.int64).reshape(-1, 2)
    lo = np.searchsorted(starts, bounds[:, 0], side="left")
    hi = np.searchsorted(starts, bounds[:, 1], side="left")
    count = hi - lo
    ok = (count > 0) & (bounds[:, 1] <= seen)
    sums = total[hi] - total[lo] + extra
    means = sums / np.maximum(count + n_extra, 1)[:, None]
    out = normalise(means)
    out[~ok] = 0.0
    return out, ok


# (sentence vectors, token vectors) of one batch: shapes (n, dim) and (n, tokens, dim)
Runner = Callable[[Batch], tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]]


def embed_with_spans(
    run: Runner, tok: Any, texts: list[str], spans: list[list[Span]], batch_size: int
) -> SpanVectors:
    """`rag.embedding.base.SpanVectors` of ``texts``, tokenised once, run in batches of similar
    token counts, longest first.

    ``run`` is the model: it takes a `Batch` and returns the texts' pooled, unit vectors and
    the last hidden state (token vectors, before pooling).
    """
    vectors: Vectors | None = None
    pooled: list[Vectors] = [np.zeros((0, 0), np.float32)] * len(texts)
    seen: list[npt.NDArray[np.bool_]] = [np.zeros(0, bool)] * len(texts)
    encodings = tok.encode_batch(texts)
    for rows in by_length(encodings, batch_size):
        batch = batch_of([texts[i] for i in rows], [encodings[i] for i in rows])
        sentence, token = run(batch)
        if vectors is None:
            vectors = np.zeros((len(texts), sentence.shape[1]), dtype=np.float32)
        vectors[rows] = normalise(sentence)
        for k, i in enumerate(rows):
            pooled[i], seen[i] = pool_spans(
                token[k], batch.offsets[k], batch.special[k], batch.mask[k], batch.seen[k], spans[i]
            )
    if vectors is None:
        return SpanVectors(np.zeros((0, 0), np.float32), [], [])
    return SpanVectors(vectors, pooled, seen)
