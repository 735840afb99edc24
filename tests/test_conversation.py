"""Follow-up questions carry the question before them into retrieval."""

from __future__ import annotations

from rag.api import Index
from rag.query.conversation import follow_up


def test_short_pronoun_questions_get_the_previous_question() -> None:
    assert follow_up("why did he leave?", ["Who is Musk?"]) == "Who is Musk? why did he leave?"
    assert follow_up("why did he leave?", ["Who is Musk?", "  "]) == (
        "Who is Musk? why did he leave?"
    )


def test_other_questions_are_left_alone() -> None:
    assert follow_up("When did ChatGPT come out?", ["Who is Musk?"]) == (
        "When did ChatGPT come out?"
    )
    long_one = "Why did he decide to leave the company he had helped found back then?"
    assert follow_up(long_one, ["Who is Musk?"]) == long_one
    assert follow_up("why did he leave?", []) == "why did he leave?"


def test_index_answer_uses_history_but_reports_the_question_as_asked(index: Index) -> None:
    plain = index.answer("where does it land?")
    followed = index.answer("where does it land?", history=["Tell me about the Falcon booster"])
    assert followed.question == "where does it land?"
    assert "drone ship" in followed.citations[0].quote
    assert plain.citations != followed.citations
