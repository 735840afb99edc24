"""Lexical features used to score quotes."""

from __future__ import annotations

from rag.text.features import answer_type, shape, stem, terms, type_match


def test_stem_folds_common_suffixes_but_keeps_short_words() -> None:
    assert stem("describes") == stem("described") == "describ"
    assert stem("leaves") == "leav" and stem("is") == "is" and stem("gas") == "gas"


def test_terms_drop_stop_words() -> None:
    assert terms("Why did Musk leave OpenAI?") == {"musk", "leave", "openai"}


def test_answer_type() -> None:
    assert answer_type("How many points did they score?") == "number"
    assert answer_type("In what year was it built?") == "number"
    assert answer_type("Whose idea was it?") == "name"
    assert answer_type("Why did Musk leave?") is None


def test_sentence_shape() -> None:
    heading = shape("Behind closed doors: Sam Altman reveals the untold story")
    assert heading.heading and not heading.anaphoric
    statement = shape("He played in 2015 for the Denver Broncos.")
    assert not statement.heading and statement.anaphoric
    assert statement.has_number and statement.has_name
    assert type_match("number", [heading, statement]) and not type_match("number", [heading])
    assert not type_match(None, [statement])
