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


def test_the_section_says_which_sets_were_held_out() -> None:
    plain = quality.section("| table |", 1.0, 0, Settings(), ["xquad_en"])
    held = quality.section("| table |", 1.0, 0, Settings(), ["squadshifts_reddit"])
    assert "never trained or tuned on" not in plain
    assert "never trained or tuned on" in held
