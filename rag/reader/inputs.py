"""What the answer model reads: a question and a passage, as token ids with sentence marks.

Owns the one encoding that training (`training/`) and answering (`rag.reader.model`) share, so
the shipped model sees at question time exactly what it was trained on: ``[CLS] question
[SEP] passage [SEP]``, the question cut to `MAX_QUESTION_TOKENS` (less where ``max_tokens``
is too small to hold it), the passage cut to what is left of ``max_tokens``; each passage
token is marked with the sentence it belongs to (-1 for the question, special tokens and
the gaps between sentences).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_QUESTION_TOKENS = 48


@dataclass(frozen=True)
class Encoded:
    """One (question, passage) pair ready for the model.

    Attributes:
        ids: token ids, ``[CLS] question [SEP] passage [SEP]``.
        types: token type ids (0 for the question part, 1 for the passage part).
        sentence: per token, the index of the passage sentence it belongs to, or -1.
    """

    ids: np.ndarray
    types: np.ndarray
    sentence: np.ndarray


def load_tokenizer(path: str) -> Any:
    """The WordPiece tokenizer in ``path`` (a tokenizer.json), with no truncation or padding
    of its own: `encode_pairs` decides both."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(path)
    tok.no_truncation()
    tok.no_padding()
    return tok


def encode_pairs(
    tokenizer: Any,
    question: str,
    passages: Sequence[tuple[str, Sequence[tuple[int, int]]]],
    max_tokens: int,
) -> list[Encoded]:
    """Encode ``question`` with each passage ``(text, sentence spans in text)``.

    Tokens are assigned to the sentence holding their first character; a passage cut by
    ``max_tokens`` keeps the sentences (or parts of them) that fit.
    """
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    # The question also leaves room for the three special tokens and one passage token,
    # so that no pair is longer than ``max_tokens`` (from 4 up).
    keep = min(MAX_QUESTION_TOKENS, max(1, max_tokens - 4))
    q = tokenizer.encode(question, add_special_tokens=False).ids[:keep]
    head = [cls, *q, sep]
    room = max(1, max_tokens - len(head) - 1)
    out: list[Encoded] = []
    encodings = tokenizer.encode_batch([t for t, _ in passages], add_special_tokens=False)
    for (_, spans), enc in zip(passages, encodings, strict=True):
        ids = enc.ids[:room]
        starts = np.fromiter((o[0] for o in enc.offsets[:room]), dtype=np.int64, count=len(ids))
        sentence = np.full(len(ids), -1, dtype=np.int64)
        if spans:
            first = np.asarray([s for s, _ in spans], dtype=np.int64)
            last = np.asarray([e for _, e in spans], dtype=np.int64)
            at = np.searchsorted(first, starts, side="right") - 1
            inside = (at >= 0) & (starts < last[np.maximum(at, 0)])
            sentence[inside] = at[inside]
        full = np.asarray([*head, *ids, sep], dtype=np.int64)
        types = np.zeros(len(full), dtype=np.int64)
        types[len(head) :] = 1
        marks = np.concatenate(
            [np.full(len(head), -1, np.int64), sentence, np.full(1, -1, np.int64)]
        )
        out.append(Encoded(full, types, marks))
    return out


def pool_sentences(tokens: np.ndarray, marks: np.ndarray, count: int) -> np.ndarray:
    """The mean of each sentence's token logits, for ``count`` sentences; ``marks`` are one
    pair's `Encoded.sentence` (padded or not). A sentence with no token left after the
    cut to ``max_tokens`` gets -inf."""
    keep = marks >= 0
    sums = np.bincount(marks[keep], tokens[keep], minlength=count)[:count]
    n = np.bincount(marks[keep], minlength=count)[:count]
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled: np.ndarray = np.where(n > 0, sums / np.maximum(n, 1), -np.inf)
    return pooled


def pad(batch: Sequence[Encoded]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(ids, mask, types, sentence)`` arrays of a batch, padded to its longest pair."""
    width = max(len(e.ids) for e in batch)
    ids = np.zeros((len(batch), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    types = np.zeros_like(ids)
    sentence = np.full_like(ids, -1)
    for i, e in enumerate(batch):
        n = len(e.ids)
        ids[i, :n], mask[i, :n], types[i, :n], sentence[i, :n] = e.ids, 1, e.types, e.sentence
    return ids, mask, types, sentence
