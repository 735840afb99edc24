"""Damaged index files are found before use and rebuilt, never trusted.

A sentence-vectors file that is empty or whose header claims a huge array, and a cached
extracted text that is not UTF-8 or was cut short: each is caught, answers go on, and
every quote still matches its source.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from rag.api import Index
from rag.config import Settings
from rag.embedding.fake import HashingEmbedder
from rag.index.manifest import read_manifest
from tests.conftest import FACTS, write_seeds

PAGE = (
    "<html><body><h1>Orchards</h1><p>Pears ripen after picking, in a cool room.</p>"
    "<p>Apples keep for months in a cellar.</p></body></html>"
)


def built(tmp_path: Path) -> Index:
    seeds = write_seeds(tmp_path / "seeds", {**FACTS, "orchard.html": PAGE})
    index = Index(Settings(seeds_dir=seeds, index_dir=tmp_path / "index"), HashingEmbedder())
    index.refresh()
    return index


def sentence_vectors(index: Index) -> Path:
    manifest = read_manifest(index.settings.index_dir)
    return index.settings.index_dir / manifest.files["sentence_vectors"]


def verbatim(index: Index, question: str) -> list[str]:
    answer = index.answer(question)
    for c in answer.citations:
        assert index.source_text(c.source)[c.start : c.end] == c.quote
    return [c.quote for c in answer.citations]


@pytest.mark.parametrize("damage", ["empty", "huge header", "short body"])
def test_a_damaged_vectors_file_is_rebuilt_with_one_warning(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    index = built(tmp_path)
    path = sentence_vectors(index)
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "huge header":  # a valid header claiming 100 TB, over the real rows
        data = np.load(path).tobytes()
        with path.open("wb") as fh:
            header = {"descr": "<f4", "fortran_order": False, "shape": (10**11, 256)}
            np.lib.format.write_array_header_1_0(fh, header)
            fh.write(data)
    else:
        path.write_bytes(path.read_bytes()[:-64])
    fresh = Index(index.settings, HashingEmbedder())
    with caplog.at_level(logging.WARNING):
        quotes = verbatim(fresh, "Which booster lands on a drone ship?")
    assert "The Falcon booster lands on a drone ship." in quotes
    assert "rebuilding index from scratch" in caplog.text and "damaged" in caplog.text
    assert sentence_vectors(fresh) != path  # a new generation replaced the damaged one


@pytest.mark.parametrize("damage", ["not utf-8", "cut short"])
def test_a_damaged_cached_text_is_extracted_again(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    index = built(tmp_path)
    record = index.current().sources["orchard.html"]
    assert record.text is not None and record.text_sha256 is not None
    cache = index.settings.index_dir / record.text
    good = cache.read_text("utf-8")
    cache.write_bytes(b"\xff\xfe" + good.encode() if damage == "not utf-8" else good[:10].encode())
    fresh = Index(index.settings, HashingEmbedder())
    with caplog.at_level(logging.WARNING):
        assert fresh.source_text("orchard.html") == good
    assert verbatim(fresh, "When do pears ripen?")
    if damage == "cut short":
        assert "damaged" in caplog.text


def test_a_file_skipped_as_too_large_is_indexed_once_the_limit_allows_it(tmp_path: Path) -> None:
    seeds = write_seeds(tmp_path / "seeds", {**FACTS, "short.txt": "Short notes stay small."})
    small = Settings(seeds_dir=seeds, index_dir=tmp_path / "index", max_file_bytes=100)
    report = Index(small, HashingEmbedder()).refresh()
    assert "rockets.txt" in report.skipped
    report = Index(small.with_(max_file_bytes=10_000), HashingEmbedder()).refresh()
    assert report.skipped == () and report.added == 2  # both files skipped before
