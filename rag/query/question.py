"""What a question must be before it is answered: text with words, of a size the model takes."""

from __future__ import annotations

import logging
import re

from rag.errors import QuestionError

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2000
_SURROGATES = re.compile(r"[\ud800-\udfff]")


def without_surrogates(text: str) -> str:
    """``text`` without lone surrogates (undecodable bytes, broken client encodings)."""
    return _SURROGATES.sub("", text)


def clean_question(question: str) -> str:
    """The question stripped and cut to a size the model can take.

    Raises:
        QuestionError: the question is not text, is empty, or holds no letter or digit.

    Example:
        >>> clean_question("  Why did Musk leave?\\x00 ")
        'Why did Musk leave?'
    """
    if not isinstance(question, str):
        raise QuestionError(f"question must be text, not {type(question).__name__}")
    text = without_surrogates(question).replace("\x00", " ").strip()
    if not text:
        raise QuestionError("the question is empty: ask something, e.g. 'Why did Musk leave?'")
    if not any(c.isalnum() for c in text):
        raise QuestionError(
            "the question has no words (only symbols, emoji or invisible characters): "
            "ask in words, e.g. 'Why did Musk leave?'"
        )
    if len(text) > MAX_QUESTION_CHARS:
        log.info(
            "question of %d characters truncated to %d for retrieval", len(text), MAX_QUESTION_CHARS
        )
        text = text[:MAX_QUESTION_CHARS]
    return text
