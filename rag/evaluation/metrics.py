"""Answer-quality metrics as pure functions: hits, recall, verbatim, refusals, percentiles.

Owns the definitions only (what counts as a hit or a refusal); it reads no file
and runs no model, so every metric is unit-tested on hand-made cases.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from rag.types import Citation


def contains_answer(quote: str, answers: Sequence[str]) -> bool:
    """True when a gold answer text is a case-sensitive substring of ``quote``."""
    return any(a and a in quote for a in answers)


def is_hit(citations: Sequence[Citation], gold_source: str | None, answers: Sequence[str]) -> bool:
    """True when a citation from the gold document quotes a gold answer.

    Example:
        >>> c = Citation("a.txt", 0, 12, "Musk left in", 0.9)
        >>> is_hit([c], "a.txt", ["Musk"]), is_hit([c], "b.txt", ["Musk"])
        (True, False)
    """
    return gold_source is not None and any(
        c.source == gold_source and contains_answer(c.quote, answers) for c in citations
    )


def hit_at_k(
    citations: Sequence[Citation], gold_source: str | None, answers: Sequence[str], k: int
) -> bool:
    """`is_hit` over the first ``k`` citations only."""
    return is_hit(citations[:k], gold_source, answers)


def recall_at_k(retrieved_sources: Sequence[str], gold_source: str, k: int) -> bool:
    """True when the gold document is among the first ``k`` retrieved sources."""
    return gold_source in retrieved_sources[:k]


def is_verbatim(citation: Citation, source_text: str | None) -> bool:
    """True when ``source_text[start:end] == quote`` with offsets inside the text."""
    if source_text is None or not 0 <= citation.start <= citation.end <= len(source_text):
        return False
    return source_text[citation.start : citation.end] == citation.quote


def refusal_rates(
    outcomes: Iterable[tuple[bool, Sequence[Citation]]],
) -> tuple[float | None, float | None]:
    """(abstention, wrong refusals) from (answerable, citations) pairs.

    Abstention is the share of unanswerable questions answered with no citation; wrong
    refusals the share of answerable ones answered with no citation. None: no such question.

    Example:
        >>> c = Citation("a.txt", 0, 1, "x", 1.0)
        >>> refusal_rates([(False, ()), (False, (c,)), (True, (c,))])
        (0.5, 0.0)
    """
    pairs = list(outcomes)
    return (
        share([not cites for ok, cites in pairs if not ok]),
        share([not cites for ok, cites in pairs if ok]),
    )


def share(flags: Sequence[bool]) -> float | None:
    """Fraction of true flags, None for no flags."""
    return sum(flags) / len(flags) if flags else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (linear interpolation), None for no values.

    Example:
        >>> percentile([1, 2, 3, 4], 50)
        2.5
    """
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else None
