"""Which sentences lie where: rows of the sentence table by character range and by chunk.

A generation stores its sentences source after source, each source's in order and
disjoint, so the sentences a chunk (or any character range) overlaps are consecutive
rows. `SentenceRows` finds them by binary search, and keeps each stored chunk's rows as
two arrays that retrieval and quoting read without a lookup per chunk.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np

from rag.types import Chunk, Sentence


class SentenceRows:
    """The rows of ``sentences`` by source range, and those each of ``chunks`` overlaps.

    Example:
        >>> s = [Sentence("a.txt", 0, 5, "One. "), Sentence("a.txt", 5, 9, "Two.")]
        >>> rows = SentenceRows(s, [Chunk("c", "a.txt", 3, 9, "e. Two.")])
        >>> rows.overlapping("a.txt", 6, 7), rows.first.tolist(), rows.stop.tolist()
        (range(1, 2), [0], [2])
    """

    def __init__(self, sentences: Sequence[Sentence], chunks: Sequence[Chunk] = ()) -> None:
        self.ranges: dict[str, tuple[int, int]] = {}  # source -> its rows [lo, hi)
        for i, s in enumerate(sentences):
            lo, _ = self.ranges.get(s.source, (i, i))
            self.ranges[s.source] = (lo, i + 1)
        self.starts = [s.start for s in sentences]
        self.ends = [s.end for s in sentences]
        self.count = len(sentences)
        # first[r] and stop[r] bound the sentence rows of chunk row r; ``of`` gives the
        # same rows by a chunk's (source, start, end).
        self.first = np.zeros(len(chunks), dtype=np.int64)
        self.stop = np.zeros(len(chunks), dtype=np.int64)
        self.of: dict[tuple[str, int, int], range] = {}
        for row, c in enumerate(chunks):
            m = self.of[c.source, c.start, c.end] = self.overlapping(c.source, c.start, c.end)
            self.first[row], self.stop[row] = m.start, m.stop

    def overlapping(self, source: str, start: int, end: int) -> range:
        """Rows of the sentences of ``source`` that overlap ``[start, end)``."""
        lo, hi = self.ranges.get(source, (0, 0))
        first = bisect.bisect_right(self.ends, start, lo, hi)
        last = bisect.bisect_left(self.starts, end, first, hi)
        return range(first, last)

    def rows_of(self, chunk: Chunk) -> range:
        """The rows of the sentences ``chunk`` overlaps (a stored chunk's are precomputed)."""
        c = chunk
        known = self.of.get((c.source, c.start, c.end))
        return known if known is not None else self.overlapping(c.source, c.start, c.end)
