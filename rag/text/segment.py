"""Split text into sentences with exact character offsets.

Owns sentence boundaries only: a rule-based splitter (sentence-final
punctuation followed by space and a capital, digit or quote; line breaks),
with over-long sentences cut into pieces. It never alters the text.
"""

from __future__ import annotations

import itertools
import re
from functools import lru_cache

from langchain_text_splitters import RecursiveCharacterTextSplitter

from rag.text.chunk import locate

# End punctuation, optional closing quotes/brackets, then whitespace, then
# something that can open a sentence. Lowercase after "e.g. " does not split.
_BOUNDARY = re.compile(
    r"""(?<=[.!?…])["'”’»)\]]*(?=\s+["'“‘«(\[]?[\dA-ZÀ-ÖØ-Þ\u0370-\u03ff\u0400-\u04ff])"""
    r"""|(?<=[。！？])"""
    r"""|(?=\r?\n)""",
)
# Tokens whose trailing period does not end a sentence.
_ABBREVIATIONS = frozenset(
    (
        "mr mrs ms dr prof sr jr st vs etc e.g i.e fig no vol pp inc ltd co corp jan feb mar "
        "apr jun jul aug sep sept oct nov dec u.s u.k "
    ).split()
)
MAX_SENTENCE_CHARS = 400


@lru_cache(maxsize=1)
def _long_splitter() -> RecursiveCharacterTextSplitter:
    return RecursiveCharacterTextSplitter(
        chunk_size=MAX_SENTENCE_CHARS,
        chunk_overlap=0,
        separators=["; ", ", ", " ", ""],
        keep_separator="end",
        strip_whitespace=True,
    )


def _is_abbreviation(text: str, end: int) -> bool:
    """True when the period just before ``end`` closes an abbreviation or initial."""
    if end == 0 or text[end - 1] != ".":
        return False
    word = text[max(0, end - 12) : end - 1].rsplit(None, 1)[-1:] or [""]
    token = word[0].lstrip("(\"'“‘").lower()
    return token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha())


def sentence_spans(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """Sentence ``(start, end)`` spans of ``text``, shifted by ``offset``.

    Every span is non-empty, has no leading or trailing whitespace, and
    ``text[start - offset:end - offset]`` is the sentence, verbatim.

    Example:
        >>> t = "Musk left in 2018. Altman stayed.\\nNew line"
        >>> [t[s:e] for s, e in sentence_spans(t)]
        ['Musk left in 2018.', 'Altman stayed.', 'New line']
    """
    cuts = [0]
    for m in _BOUNDARY.finditer(text):
        pos = m.start() if m.group(0) == "" else m.end()
        if pos > cuts[-1] and not _is_abbreviation(text, _strip_closers(text, pos)):
            cuts.append(pos)
    cuts.append(len(text))
    spans: list[tuple[int, int]] = []
    for a, b in itertools.pairwise(cuts):
        piece = text[a:b]
        stripped = piece.strip()
        if not stripped:
            continue
        start = a + (len(piece) - len(piece.lstrip()))
        end = start + len(stripped)
        if end - start <= MAX_SENTENCE_CHARS:
            spans.append((start + offset, end + offset))
            continue
        parts = [p for p in _long_splitter().split_text(stripped) if p.strip()]
        spans.extend(
            (start + s + offset, start + e + offset) for _, s, e in locate(stripped, parts)
        )
    return spans


def _strip_closers(text: str, pos: int) -> int:
    while pos > 0 and text[pos - 1] in "\"'”’»)]":
        pos -= 1
    return pos
