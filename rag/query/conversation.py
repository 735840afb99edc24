"""Follow-up questions: give a short question that points back ("he", "that") its context.

Owns the rule that turns a follow-up into a self-contained retrieval query by
prefixing the previous question. It keeps no state; callers pass the history.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

PRONOUNS = frozenset(
    "he she it they him her them his hers its their theirs that this those these".split()
)
SHORT_QUESTION_WORDS = 8
_WORDS = re.compile(r"[\w']+", re.UNICODE)


def follow_up(question: str, previous: Sequence[str]) -> str:
    """The query to retrieve with: a short question with a pronoun gets the last one before it.

    Example:
        >>> follow_up("When did he leave?", ["Why did Musk leave OpenAI?"])
        'Why did Musk leave OpenAI? When did he leave?'
        >>> follow_up("When did ChatGPT come out?", ["Why did Musk leave OpenAI?"])
        'When did ChatGPT come out?'
    """
    if not previous:  # nothing to point back at (every single question)
        return question
    words = [w.lower() for w in _WORDS.findall(question)]
    if len(words) > SHORT_QUESTION_WORDS or not PRONOUNS.intersection(words):
        return question
    for earlier in reversed(previous):
        if earlier.strip():
            return f"{earlier.strip()} {question}"
    return question
