"""Markdown, HTML and PDF seeds through the whole pipeline: verbatim against source_text, pages."""

from __future__ import annotations

from pathlib import Path

from rag.api import Index
from rag.config import Settings
from rag.embedding.fake import HashingEmbedder
from rag.index import manifest as manifest_io
from rag.index.stores import folder as store
from tests.test_extract import _pdf

HTML = (
    "<html><head><title>Orchard notes</title><style>p{color:red}</style>"
    "<script>var hidden = 'tractor secret';</script></head><body>"
    "<h1>Pears</h1><p>Pears ripen <b>after</b> picking &amp; storage.</p>"
    "<ul><li>Quinces need frost.</li><li>Medlars are bletted.</li></ul></body></html>"
)
PAGES = [
    "The orchard opens in spring. Bees visit the blossoms.",
    "Apples are picked in autumn. The cider press runs in October.",
    "Winter pruning keeps the trees small.",
]


def index_for(tmp_path: Path, files: dict[str, bytes]) -> Index:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for name, data in files.items():
        (seeds / name).write_bytes(data)
    return Index(
        Settings(seeds_dir=seeds, index_dir=tmp_path / "index", min_score=0.05), HashingEmbedder()
    )


def check(idx: Index, citations: tuple) -> None:  # type: ignore[type-arg]
    for c in citations:
        assert idx.source_text(c.source)[c.start : c.end] == c.quote


def test_html_visible_text_is_indexed_and_cited(tmp_path: Path) -> None:
    idx = index_for(tmp_path, {"orchard.html": HTML.encode()})
    result = idx.answer("When do pears ripen?")
    check(idx, result.citations)
    assert result.citations[0].source == "orchard.html"
    assert "Pears ripen after picking & storage." in result.citations[0].quote
    assert result.citations[0].page is None
    text = idx.source_text("orchard.html")
    assert "tractor secret" not in text and "color:red" not in text and "<b>" not in text


def test_pdf_citations_carry_their_page_and_stay_on_it(tmp_path: Path) -> None:
    idx = index_for(tmp_path, {"orchard.pdf": _pdf(PAGES)})
    result = idx.answer("When does the cider press run?")
    check(idx, result.citations)
    top = result.citations[0]
    assert "cider press runs in October" in top.quote and top.page == 2
    pages = idx.current().sources["orchard.pdf"].pages
    for c in result.citations:
        page, start, end = pages[c.page - 1]
        assert page == c.page and start <= c.start and c.end <= end


def test_extracted_text_is_cached_by_hash_and_collected(tmp_path: Path) -> None:
    idx = index_for(tmp_path, {"a.html": HTML.encode(), "b.md": b"# Title\n\nPlain *md*.\n"})
    idx.current()
    record = idx.current().sources["a.html"]
    assert record.text is not None
    cache = tmp_path / "index" / record.text
    assert cache.name == f"{record.sha256}.txt"
    assert cache.read_text() == idx.source_text("a.html")
    assert idx.current().sources["b.md"].text is None  # plain text is its own file
    assert idx.source_text("b.md") == "# Title\n\nPlain *md*.\n"
    cache.unlink()  # a lost cache is rebuilt from the file
    assert "Pears ripen after picking" in Index(idx.settings, HashingEmbedder()).source_text(
        "a.html"
    )
    (tmp_path / "seeds" / "a.html").unlink()
    idx.current()
    store._collect_texts(
        tmp_path / "index", manifest_io.read_manifest(tmp_path / "index"), grace_s=-1
    )
    assert not list((tmp_path / "index" / "texts").iterdir())


def test_encrypted_and_scanned_pdfs_are_skipped_with_a_reason(tmp_path: Path) -> None:
    idx = index_for(
        tmp_path,
        {
            "locked.pdf": _pdf(PAGES, owner_password="o", user_password="u"),
            "scan.pdf": _pdf(["", ""]),
            "ok.txt": b"The orchard has a cider press.",
        },
    )
    report = idx.refresh()
    assert set(report.skipped) == {"locked.pdf", "scan.pdf"}
    skipped = idx.current().manifest.skipped
    assert "encrypted" in str(skipped["locked.pdf"].reason)
    assert "no extractable text" in str(skipped["scan.pdf"].reason)
