"""Test doubles for the answer model: deterministic, dependency-free, instant."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rag.reader.model import Reading
from rag.text.features import content_words


class WordReader:
    """Reads like the answer model, by words: a sentence's probability is the share of the
    question's content words it holds, a passage's the best of its sentences'."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []  # (question, passages read)

    def read(
        self, question: str, passages: Sequence[tuple[str, Sequence[tuple[int, int]]]]
    ) -> list[Reading]:
        self.calls.append((question, len(passages)))
        wanted = content_words(question)
        out = []
        for text, spans in passages:
            probs = np.array(
                [
                    len(wanted & content_words(text[s:e])) / len(wanted) if wanted else 0.0
                    for s, e in spans
                ],
                dtype=np.float64,
            )
            out.append(Reading(float(probs.max()) if len(probs) else 0.0, probs))
        return out
