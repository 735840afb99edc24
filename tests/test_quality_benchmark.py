"""benchmarks/quality.py's choice of sets: names of the known sets, or any set's path."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import quality
from rag.config import Settings


def test_sets_are_named_or_given_by_path() -> None:
    args = quality.parse_args(["--sets", "xquad_en,squadshifts_reddit,my/set,tiny.json"])
    assert [quality.set_path(name, Path("E")) for name in args.sets] == [
        Path("E/xquad_en"),
        Path("E/squadshifts/reddit_v1.0.json"),
        Path("my/set"),
        Path("tiny.json"),
    ]


def test_an_unknown_set_name_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        quality.parse_args(["--sets", "xquad"])
    assert "name a set by its path" in capsys.readouterr().err


def test_the_section_says_which_sets_were_held_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quality, "trained_on", lambda: {"amazon_reviews_v1.0.json"})
    plain = quality.section("| table |", 1.0, 0, Settings(), ["xquad_en"])
    both = quality.section(
        "| table |", 1.0, 0, Settings(), ["squadshifts_reddit", "squadshifts_amazon"]
    )
    assert "never trained or tuned on" not in plain
    assert "squadshifts_reddit: never trained or tuned on" in " ".join(both.split())
    assert "squadshifts_amazon: training data of the answer model" in " ".join(both.split())
    assert "trained on squadshifts_wiki and amazon_reviews_v1.0.json." in " ".join(plain.split())
    monkeypatch.setattr(quality, "trained_on", set)
    wiki = quality.section("| table |", 1.0, 0, Settings(), ["xquad_en"])
    assert "squadshifts_wiki is the answer model's training data." in " ".join(wiki.split())


def test_the_shipped_model_names_its_extra_training_data() -> None:
    assert quality.trained_on() <= {Path(path).name for path in quality.SETS.values()}


def test_the_section_says_how_the_model_joins_the_quote_score() -> None:
    def said(**changes: float | None) -> str:
        text = quality.section("| table |", 1.0, 0, Settings(**changes), ["xquad_en"])  # type: ignore[arg-type]
        return " ".join(text.split())

    assert "plus 0.5 times the model's probability for the window's best sentence" in said(
        reader_weight=0.5
    )
    assert "`reader_weight` is 0" in said(reader_weight=0.0)
    assert "`reader_quote_ratio` is 0" in said(reader_quote_ratio=0.0)
    assert "chunks at least 0.2 as likely to answer as the first's" in said(reader_quote_ratio=0.2)
    bridge = "at least 0.4 as likely to hold the answer"
    assert bridge in said(reader_bridge=0.4)
    assert "grows" not in said(reader_bridge=None)
