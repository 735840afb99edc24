"""The Documents panel in real Chromium: upload, ask, refuse, remove, and write nowhere else.

Needs Debian's chromium at /usr/bin/chromium and the Python playwright package (see
`tests/e2e/test_browser.py`); the fake embedder and ``reader="off"`` keep it model-free.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rag.api import Index
from rag.config import Settings
from rag.embedding.fake import HashingEmbedder
from tests.conftest import free_port
from tests.e2e.test_browser import CHROMIUM, ask, chromium, wait_for_answer

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium missing: apt-get install chromium"),
]

MAX_BYTES = 20_000
MESSAGE = "#rag-docs-message [data-testid='markdown']"  # the panel's outcome message
FACTS = "Elon Musk left the OpenAI board in 2018 because of a conflict of interest.\n"
NOTES = (
    "# Field notes\n\nThe comet Zorblat glows emerald green above Quellton.\n\n"
    "Its tail points away from the sun.\n"
)
PDF_TEXT = "The lighthouse keeper Orvena counted ninety herons at Vexhollow."


@dataclass(frozen=True)
class Served:
    url: str
    index: Index
    root: Path  # holds seeds/, index/ (and index/trash/) and Gradio's spool, nothing else


def pdf_bytes(text: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from ui.app import launch

    root = tmp_path_factory.mktemp("docs-e2e")
    (root / "seeds").mkdir()
    (root / "seeds" / "facts.txt").write_text(FACTS, encoding="utf-8")
    settings = Settings(
        seeds_dir=root / "seeds",
        index_dir=root / "index",
        min_score=0.0,
        reader="off",
        max_file_bytes=MAX_BYTES,
    )
    index = Index(settings, HashingEmbedder())
    index.refresh()
    spool = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(root / "gradio-spool")  # Gradio's uploads, watched too
    port = free_port()
    demo = launch(index, port=port, allow_delete=True, prevent_thread_lock=True, quiet=True)
    try:
        yield Served(f"http://127.0.0.1:{port}/", index, root)
    finally:
        demo.close()
        if spool is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = spool
        shutil.rmtree(root / "gradio-spool", ignore_errors=True)


@pytest.fixture(scope="module")
def page(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium(tmp_path_factory.mktemp("chromium-profile"), height=1000) as context:
        page = context.new_page()
        page.goto(served.url)
        page.get_by_placeholder(re.compile("Ask a question")).wait_for()
        page.locator("#rag-documents").get_by_text("Documents", exact=True).first.click()
        page.locator("#rag-docs table").wait_for(timeout=30_000)
        yield page


def upload(page: Any, *files: tuple[str, str, bytes]) -> str:
    """Upload ``(name, mime type, bytes)`` files; return the panel's message once it is new
    and final."""
    message = page.locator(MESSAGE)
    before = str(message.inner_text())
    payload = [{"name": n, "mimeType": m, "buffer": b} for n, m, b in files]
    page.locator("#rag-upload input[type=file]").set_input_files(payload)
    page.wait_for_function(
        "([sel, before]) => { const t = document.querySelector(sel)?.innerText || '';"
        " return t.trim() && t !== before && !t.includes('indexing'); }",
        arg=[MESSAGE, before],
        timeout=60_000,
    )
    return str(message.inner_text())


def status_of(page: Any, name: str) -> str:
    row = page.locator("#rag-docs tr.rag-doc", has=page.locator("td.rag-doc-name", has_text=name))
    return str(row.first.get_attribute("data-status"))


def cited_sources(page: Any, index: Index) -> list[str]:
    """Each cited source, after checking its highlighted quote against the source slice."""
    cites = page.locator(".rag-cite")
    assert cites.count() >= 1
    sources = []
    for i in range(cites.count()):
        cite = cites.nth(i)
        source = cite.locator(".rag-file").inner_text()
        start, end = map(int, re.findall(r"\d+", cite.locator(".rag-range").inner_text()))
        exact = index.source_text(source)[start:end]
        assert " ".join(cite.locator("mark").inner_text().split()) == " ".join(exact.split())
        sources.append(source)
    return sources


def test_uploaded_markdown_and_pdf_answer_with_verbatim_quotes(page: Any, served: Served) -> None:
    message = upload(
        page,
        ("notes.md", "text/markdown", NOTES.encode()),
        ("report.pdf", "application/pdf", pdf_bytes(PDF_TEXT)),
    )
    assert "notes.md added" in message and "report.pdf added" in message, message
    assert status_of(page, "notes.md") == "indexed" and status_of(page, "report.pdf") == "indexed"
    page.wait_for_function(  # the index status line follows the upload
        "() => /3 documents/.test(document.querySelector('#rag-status')?.innerText || '')",
        timeout=30_000,
    )
    ask(page, "Which colour does the comet Zorblat glow above Quellton?")
    wait_for_answer(page)
    assert cited_sources(page, served.index)[0] == "notes.md"
    assert "emerald green" in page.locator(".rag-cite mark").first.inner_text()
    ask(page, "How many herons did the lighthouse keeper Orvena count at Vexhollow?")
    page.wait_for_function(
        "() => /Vexhollow/.test(document.querySelector('.rag-cite mark')?.textContent || '')",
        timeout=60_000,
    )
    assert cited_sources(page, served.index)[0] == "report.pdf"
    assert page.locator(".rag-cite .rag-page").first.inner_text() == "p. 1"


def test_hostile_names_and_oversized_files(page: Any, served: Served) -> None:
    seeds = served.root / "seeds"
    message = upload(
        page,
        ("../evil.txt", "text/plain", b"The evil file says the password is swordfish.\n"),
        (".hidden.md", "text/markdown", b"A hidden note about lanterns.\n"),
    )
    assert "evil.txt" in message and "hidden.md" in message, message
    assert (seeds / "evil.txt").is_file() and (seeds / "hidden.md").is_file()
    assert not (served.root / "evil.txt").exists() and not (seeds / ".hidden.md").exists()
    assert status_of(page, "hidden.md") == "indexed"
    message = upload(page, ("big.txt", "text/plain", b"word " * (MAX_BYTES // 5 + 1)))
    assert f"larger than the {MAX_BYTES:,}-byte limit (Settings.max_file_bytes)" in message
    assert len(message.strip().splitlines()) == 1
    message = upload(page, ("tool.exe", "application/octet-stream", b"MZ"))
    assert "tool.exe: .exe files are not indexed" in message
    assert not (seeds / "big.txt").exists() and not (seeds / "tool.exe").exists()


def test_removal_asks_then_moves_to_the_trash(page: Any, served: Served) -> None:
    seeds = served.root / "seeds"
    (seeds / "old.md").write_text("An old note about barges.\n", encoding="utf-8")
    page.get_by_role("button", name="Refresh list").click()
    page.locator("#rag-docs td.rag-doc-name", has_text="old.md").wait_for()
    choice = page.locator("#rag-remove-choice input")
    choice.click()
    choice.fill("old.md")
    page.get_by_role("option", name="old.md").click()
    page.locator("#rag-remove").click()
    confirm = page.get_by_role("button", name="Yes, move it to the trash")
    confirm.wait_for()
    assert (seeds / "old.md").exists()  # nothing happens before the confirmation
    confirm.click()
    page.wait_for_function(
        "sel => /moved to/.test(document.querySelector(sel)?.innerText || '')",
        arg=MESSAGE,
        timeout=60_000,
    )
    assert not (seeds / "old.md").exists()
    trashed = list((served.root / "index" / "trash").rglob("old.md"))
    assert [p.read_text(encoding="utf-8") for p in trashed] == ["An old note about barges.\n"]
    page.locator("#rag-docs td.rag-doc-name", has_text="old.md").wait_for(state="detached")
    assert "old.md" not in served.index.current().sources


def test_nothing_was_written_outside_seeds_index_and_trash(page: Any, served: Served) -> None:
    files = [p.relative_to(served.root) for p in served.root.rglob("*") if not p.is_dir()]
    tops = {p.parts[0] for p in files}
    assert tops <= {"seeds", "index", "gradio-spool"}, tops
    spooled = [p for p in files if p.parts[0] == "gradio-spool"]
    assert spooled == [], spooled  # each upload's spooled copy was deleted once saved
    assert sorted(p.name for p in (served.root / "seeds").iterdir()) == [
        "evil.txt",
        "facts.txt",
        "hidden.md",
        "notes.md",
        "report.pdf",
    ]
