"""benchmarks/choices.py's table row: hit@k against the gold document and quote lengths."""

from __future__ import annotations

from benchmarks import choices
from rag.types import Citation
from training.data import Question


def cited(source: str, quote: str) -> Citation:
    return Citation(source, 0, len(quote), quote, 0.5)


def test_a_row_scores_hits_in_the_gold_document_and_measures_every_quote() -> None:
    qs = [
        Question("1", "Who?", "a", ((0, 3, "Ada"),)),
        Question("2", "When?", "b", ((0, 4, "1843"),)),
        Question("3", "Where?", "c", ((0, 6, "London"),)),
    ]
    answers = [
        (cited("a.txt", "Ada wrote it."),),  # hit at 1
        (cited("a.txt", "In 1843."), cited("b.txt", "It was 1843, in London.")),  # at 2 only
        (),  # refused
    ]
    cells = [c.strip() for c in choices.row("set", "off", answers, qs, "").split("|")[1:-1]]
    # hit@1 1/3, hit@3 2/3; quotes 13, 8, 23 characters, first quotes 13 and 8
    assert cells == ["set", "off", "3", "33.3%", "66.7%", "13", "10.5", "14.7", ""]
