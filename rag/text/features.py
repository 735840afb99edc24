"""Cheap lexical features of questions and sentences for quote scoring.

Owns word normalisation (a light suffix stemmer), the expected answer type of
a question (number, name), and sentence shape (heading, leading pronoun). It
does no embedding and no ranking; `rag.query.quotes` combines these with similarity.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_WORD = re.compile(r"\w+", re.UNICODE)
STOP_WORDS = frozenset(
    (
        "a an the of to in on at for by with from and or but is are was were be been being do "
        "does did has have had what which who whom whose when where why how that this these "
        "those it its as about into than then there their they he she his her him them we you "
        "your i me my our not no can could would should will shall may might must s"
    ).split()
)
_SUFFIXES = ("ations", "ation", "ings", "ing", "ies", "ied", "ed", "es", "ly", "s")
_NUMBER_QUESTION = re.compile(
    r"\b(when|what year|which year|what date|how (many|much|long|old|far|large|big|"
    r"often|tall|high|fast)|what (percentage|percent|number|age)|in what year)\b",
    re.I,
)
_NAME_QUESTION = re.compile(r"\b(who|whom|whose|where|which (company|city|country|team))\b", re.I)
_HAS_NUMBER = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
    r"hundred|thousand|million|billion|dozen|half|once|twice)\b",
    re.I,
)
_INNER_CAPITAL = re.compile(r"(?<=[\s(“\"‘'])[A-Z][\w’'-]+")
_ANAPHORS = frozenset("he she it they this these those his her its their such there".split())
_CLOSERS = ".!?…\"'”’)]:;"


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A crude stem: lowercased, one common English suffix removed (kept >= 4 letters).

    Example:
        >>> stem("Describes"), stem("founded"), stem("founders")
        ('describ', 'found', 'founder')
    """
    w = word.lower()
    for suffix in _SUFFIXES:
        if w.endswith(suffix) and len(w) - len(suffix) >= 4:
            return w[: -len(suffix)]
    return w


def content_words(text: str) -> set[str]:
    """Lowercased words of ``text`` without stop words (not stemmed)."""
    return {w for w in (m.lower() for m in _WORD.findall(text)) if w not in STOP_WORDS}


def tokens(text: str) -> list[str]:
    """Stemmed content words of ``text`` in order, repeats kept (for BM25)."""
    return [stem(w) for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]


def terms(text: str) -> frozenset[str]:
    """Stemmed content words of ``text`` as a set (no stop words)."""
    return frozenset(tokens(text))


def answer_type(question: str) -> str | None:
    """``"number"``, ``"name"`` or None: what kind of answer the question asks for.

    Example:
        >>> answer_type("When did ChatGPT come out?"), answer_type("Who left?")
        ('number', 'name')
    """
    if _NUMBER_QUESTION.search(question):
        return "number"
    if _NAME_QUESTION.search(question):
        return "name"
    return None


@dataclass(frozen=True)
class SentenceShape:
    """What a sentence looks like, independent of any question."""

    terms: frozenset[str]
    has_number: bool
    has_name: bool
    heading: bool  # short and without closing punctuation: a title, not a statement
    anaphoric: bool  # opens with a pronoun that points back at the previous sentence


@lru_cache(maxsize=65536)
def shape(text: str) -> SentenceShape:
    """The `SentenceShape` of one sentence's text."""
    words = _WORD.findall(text)
    first = words[0].lower() if words else ""
    return SentenceShape(
        terms=terms(text),
        has_number=bool(_HAS_NUMBER.search(text)),
        has_name=bool(_INNER_CAPITAL.search(text)),
        heading=len(words) <= 20 and not text.rstrip().endswith(tuple(_CLOSERS)),
        anaphoric=first in _ANAPHORS,
    )


def type_match(kind: str | None, shapes: list[SentenceShape]) -> bool:
    """Whether any sentence carries the kind of answer the question asks for."""
    if kind == "number":
        return any(s.has_number for s in shapes)
    if kind == "name":
        return any(s.has_name for s in shapes)
    return False
