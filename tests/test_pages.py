"""PDF page labels: read at extraction, kept in the manifest, carried by citations."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rag.api import Index
from rag.config import Settings
from rag.embedding.fake import HashingEmbedder
from rag.index import manifest as manifest_io
from rag.index.stores import folder as store
from rag.ingest.extract import Extracted, extract
from rag.text.pages import page_in, page_of
from rag.types import Citation, SourceRecord
from tests.test_extract import _pdf

# Three pages of front matter numbered i-iii, then the body numbered from 1.
PAGES = [
    "Preface. This almanac was written for orchard keepers.",
    "Contents. Spring, autumn and winter work.",
    "Acknowledgements. Thanks to the bee keepers.",
    "Spring. The orchard opens in spring and bees visit the blossoms.",
    "Autumn. The cider press runs in October after the apple harvest.",
]
LABELLED = ("i", "ii", "iii", "1", "2")


def labelled_pdf(pages: list[str], **prefix: str) -> bytes:
    """A PDF of ``pages`` whose label tree numbers the first three i-iii, the rest 1, 2..."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(_pdf(pages))))
    writer.set_page_label(0, 2, style="/r", **prefix)
    writer.set_page_label(3, len(pages) - 1, style="/D", start=1)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def extracted(data: bytes) -> Extracted:
    result = extract(".pdf", data)
    assert isinstance(result, Extracted), result
    return result


def labelled_index(tmp_path: Path) -> Index:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "almanac.pdf").write_bytes(labelled_pdf(PAGES))
    (seeds / "notes.txt").write_text("The orchard has a cider press.\n", encoding="utf-8")
    settings = Settings(seeds_dir=seeds, index_dir=tmp_path / "index", min_score=0.05)
    return Index(settings, HashingEmbedder())


def test_labels_come_from_the_page_label_tree() -> None:
    result = extracted(labelled_pdf(PAGES))
    assert result.page_labels == LABELLED
    assert [page for page, _, _ in result.pages] == [1, 2, 3, 4, 5]


def test_a_pdf_without_labels_is_labelled_with_its_page_numbers() -> None:
    assert extracted(_pdf(PAGES[:3])).page_labels == ("1", "2", "3")
    assert extract(".txt", b"plain").page_labels == ()  # type: ignore[union-attr]


def test_labels_keep_printable_characters_only() -> None:
    result = extracted(labelled_pdf(PAGES, prefix="A\n\u202e-"))
    assert result.page_labels[:3] == ("A-i", "A-ii", "A-iii")


def test_page_in_maps_offsets_to_page_and_label() -> None:
    result = extracted(labelled_pdf(PAGES))
    record = SourceRecord(9, 0, pages=result.pages, page_labels=result.page_labels)
    for (page, start, end), label in zip(result.pages, LABELLED, strict=True):
        assert page_in(record, start) == (page, label)
        assert page_in(record, end) == (page, label)  # the separator after a page is its own
    unlabelled = SourceRecord(9, 0, pages=result.pages)
    assert page_in(unlabelled, result.pages[4][1]) == (5, "5")  # no labels
    assert page_in(None, 3) == (None, None)


def test_the_manifest_records_labels_and_citations_carry_them(tmp_path: Path) -> None:
    idx = labelled_index(tmp_path)
    stored = idx.current()
    assert stored.sources["almanac.pdf"].page_labels == LABELLED
    assert stored.sources["notes.txt"].page_labels is None
    text = idx.source_text("almanac.pdf")
    start = text.index("The cider press runs in October")
    assert page_of(stored, "almanac.pdf", start) == (5, "2")
    assert page_of(stored, "almanac.pdf", text.index("Thanks to the bee")) == (3, "iii")
    assert page_of(stored, "notes.txt", 0) == (None, None)

    result = idx.answer("When does the cider press run in October?")
    pdf_cites = [c for c in result.citations if c.source == "almanac.pdf"]
    assert pdf_cites, result
    for c in result.citations:
        assert idx.source_text(c.source)[c.start : c.end] == c.quote
        assert (c.page, c.page_label) == page_of(stored, c.source, c.start)
    assert (pdf_cites[0].page, pdf_cites[0].page_label) == (5, "2")


def test_an_index_without_labels_gains_them_without_embedding(tmp_path: Path) -> None:
    idx = labelled_index(tmp_path)
    idx.current()
    index_dir = tmp_path / "index"
    manifest = json.loads((index_dir / manifest_io.MANIFEST).read_text())
    del manifest["sources"]["almanac.pdf"]["page_labels"]  # as an index built before labels
    (index_dir / manifest_io.MANIFEST).write_text(json.dumps(manifest))
    old = Index(idx.settings, HashingEmbedder())
    stored = store.load_index(index_dir)
    assert page_of(stored, "almanac.pdf", len(old.source_text("almanac.pdf")) - 1) == (5, "5")

    report = old.refresh()
    assert report.chunks_embedded == 0 and report.updated == 0 and report.unchanged == 2
    record = manifest_io.read_manifest(index_dir).sources["almanac.pdf"]
    assert record.page_labels == LABELLED
    assert old.refresh().unchanged == 2  # and the stat check is quiet again


def test_citation_json_has_the_page_label() -> None:
    pdf = Citation("a.pdf", 0, 3, "abc", 0.5, page=4, page_label="iv").to_dict()
    txt = Citation("a.txt", 0, 3, "abc", 0.5).to_dict()
    assert (pdf["page"], pdf["page_label"]) == (4, "iv")
    assert (txt["page"], txt["page_label"]) == (None, None)
    assert json.loads(json.dumps(pdf)) == pdf
