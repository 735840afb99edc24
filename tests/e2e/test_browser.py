"""The chat page in real Chromium: ask, read the quotes, verify them, stay offline and safe.

Needs Debian's chromium at /usr/bin/chromium (`.ci/run` installs it) and the
Python playwright package; never `playwright install`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from rag.api import Index
from rag.config import Settings
from rag.embedding.torch import SentenceTransformerEmbedder
from tests.conftest import SEED_FILE, free_port

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
XSS_SEED = (
    "Zebra migration report.\n\nThe zebra migration crosses the Mara river every July. "
    "Rangers wrote <img src=x onerror=alert(1)> and <script>alert('xss')</script> in the "
    "zebra log, plus **bold zebra** and [a zebra link](http://example.com/zebra).\n"
)
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium missing: apt-get install chromium"),
]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Index]]:
    from ui.app import launch

    root = tmp_path_factory.mktemp("e2e")
    (root / "seeds").mkdir()
    shutil.copyfile(SEED_FILE, root / "seeds" / SEED_FILE.name)
    (root / "seeds" / "zebra.txt").write_text(XSS_SEED, encoding="utf-8")
    index = Index(
        Settings(seeds_dir=root / "seeds", index_dir=root / "index"), SentenceTransformerEmbedder()
    )
    index.refresh()
    port = free_port()
    demo = launch(index, port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/", index
    finally:
        demo.close()


@contextlib.contextmanager
def chromium(profile: Path, height: int = 900) -> Iterator[Any]:
    """A headless Debian Chromium context with its own profile folder, closed on exit."""
    with playwright_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=FLAGS,
            viewport={"width": 1280, "height": height},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as context:
        yield context


@pytest.fixture
def page(browser: Any, app_url: tuple[str, Index]) -> Iterator[Any]:
    page = browser.new_page()
    page.requests = []  # type: ignore[attr-defined]
    page.dialogs = []  # type: ignore[attr-defined]
    page.on("request", lambda r: page.requests.append(r.url))
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.goto(app_url[0])
    page.get_by_placeholder(re.compile("Ask a question")).wait_for()
    yield page
    page.close()


def ask(page: Any, question: str) -> None:
    box = page.get_by_placeholder(re.compile("Ask a question"))
    box.fill(question)
    box.press("Enter")


def wait_for_answer(page: Any) -> str:
    """Wait until the sources panel shows the final answer; return the last bot message."""
    page.wait_for_function(
        "() => { const el = document.querySelector('.rag-cites, .rag-note');"
        " return el && !/Looking for quotes|appear here/.test(el.textContent); }",
        timeout=60_000,
    )
    return str(page.locator(".message.bot, [data-testid='bot']").last.inner_text())


def test_question_gets_quotes_that_match_the_source(
    page: Any, app_url: tuple[str, Index], tmp_path: Path
) -> None:
    _, index = app_url
    ask(page, "Why did Musk leave OpenAI?")
    message = wait_for_answer(page)
    assert "[1]" in message
    cites = page.locator(".rag-cite")
    assert cites.count() >= 1
    for i in range(cites.count()):
        cite = cites.nth(i)
        source = cite.locator(".rag-file").inner_text()
        start, end = map(int, re.findall(r"\d+", cite.locator(".rag-range").inner_text()))
        highlighted = cite.locator("mark").inner_text()
        exact = index.source_text(source)[start:end]
        assert " ".join(highlighted.split()) == " ".join(exact.split())
    all_marks = " ".join(cites.locator("mark").all_inner_texts())
    assert "conflict of interest" in all_marks or "full control over OpenAI" in all_marks
    # SEEDRAG_SCREENSHOT=docs/screenshot.png refreshes the README's picture; a plain run
    # leaves the checkout untouched.
    shot = os.environ.get("SEEDRAG_SCREENSHOT") or str(tmp_path / "screenshot.png")
    page.screenshot(path=shot, full_page=True)
    assert Path(shot).stat().st_size > 10_000


def test_example_button_and_off_topic_refusal(page: Any) -> None:
    page.get_by_role("button", name="When did ChatGPT come out?").click()
    wait_for_answer(page)
    assert "November 2022" in " ".join(page.locator(".rag-cite mark").all_inner_texts())
    ask(page, "What is the capital of France?")
    page.wait_for_function(
        "() => /do not answer/.test(document.querySelector('.rag-note')?.textContent || '')",
        timeout=60_000,
    )
    assert "do not answer" in page.locator(".message.bot, [data-testid='bot']").last.inner_text()
    assert page.locator(".rag-cite").count() == 0


def test_seed_markup_is_shown_as_text(page: Any) -> None:
    ask(page, "What did the rangers write in the zebra log?")
    wait_for_answer(page)
    panel = page.locator(".rag-cites").inner_text()
    chat = page.locator(".message.bot, [data-testid='bot']").last.inner_text()
    for shown in (panel, chat):
        assert "<script>alert('xss')</script>" in shown
        assert "<img src=x onerror=alert(1)>" in shown
        assert "**bold zebra**" in shown
        assert "[a zebra link](http://example.com/zebra)" in shown
    assert page.dialogs == []  # type: ignore[attr-defined]
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("a[href*='example.com']").count() == 0


def test_page_makes_no_request_off_this_machine(page: Any) -> None:
    ask(page, "When did ChatGPT come out?")
    wait_for_answer(page)
    hosts = {
        urlparse(u).hostname
        for u in page.requests
        if urlparse(u).scheme in ("http", "https", "ws", "wss")
    }  # type: ignore[attr-defined]
    assert hosts and hosts <= LOCAL_HOSTS, hosts


def test_a_question_typed_while_an_answer_streams_is_not_lost(page: Any) -> None:
    box = page.get_by_placeholder(re.compile("Ask a question"))
    ask(page, "When did ChatGPT come out?")
    page.get_by_text(re.compile("November 2022")).first.wait_for(timeout=60_000)
    box.fill("Why did Musk leave OpenAI?")  # at once, while the first answer may still stream
    box.press("Enter")
    asked = (
        "() => [...document.querySelectorAll('.message.user, [data-testid=\"user\"]')]"
        ".some(m => m.textContent.includes('Why did Musk leave OpenAI?'))"
    )
    page.wait_for_function(asked, timeout=60_000)
    answered = (
        "() => { const bots = [...document.querySelectorAll("
        "'.message.bot, [data-testid=\"bot\"]')]; const last = bots.pop();"
        " return last && /\\[1\\]|do not answer/.test(last.textContent)"
        " && !/Looking for quotes/.test(last.textContent); }"
    )
    page.wait_for_function(answered, timeout=60_000)
    assert "Why did Musk leave OpenAI?" not in box.input_value()  # asked, so cleared


def test_screen_readers_get_the_question_as_typed(page: Any) -> None:
    question = "What did the rangers write in the <zebra> **log**?"
    ask(page, question)
    wait_for_answer(page)
    labels = page.eval_on_selector_all(
        '[aria-label*="\'s message: "]', "els => els.map(e => e.getAttribute('aria-label'))"
    )
    users = [label for label in labels if label.startswith("user")]
    assert users and users[-1].endswith(question)  # no markdown escapes, no HTML entities
