"""Tests for the page's Documents panel (ui.documents, ui.documents_layout) without a browser."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pytest
from gradio.utils import get_upload_folder
from gradio_client import Client

from rag.api import Index
from rag.cli import main
from rag.config import Settings
from rag.embedding.fake import HashingEmbedder
from tests.conftest import free_port
from ui import app, render
from ui.documents import DocumentsPanel, Rights, _discard

pytestmark = pytest.mark.app

FACTS = "Elon Musk left the OpenAI board in 2018 because of a conflict of interest.\n"
COMET = (
    "The comet Zorblat returns every 76 years.\n\n"
    "Astronomers in Quellton first saw Zorblat glowing green in 1911.\n"
)


@pytest.fixture(autouse=True)
def gradio_spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Gradio's upload folder, inside the test's own folder."""
    spool = tmp_path / "gradio-spool"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(spool))
    return spool


def make_index(root: Path, **changes: Any) -> Index:
    seeds = root / "seeds"
    seeds.mkdir(exist_ok=True)
    (seeds / "facts.txt").write_text(FACTS, encoding="utf-8")
    settings = Settings(
        seeds_dir=seeds, index_dir=root / "index", min_score=0.0, reader="off", **changes
    )
    return Index(settings, embedder=HashingEmbedder())


def spooled(name: str, data: bytes) -> str:
    """A file where Gradio spools uploads, as the upload handler receives it."""
    folder = Path(get_upload_folder()) / f"seedrag-test-{os.getpid()}-{abs(hash(name))}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return str(path)


class Progress:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, value: tuple[int, int], **_: Any) -> None:
        self.calls.append(value)


def upload(panel: DocumentsPanel, *files: tuple[str, bytes], replace: bool = False) -> list[Any]:
    paths = [spooled(name, data) for name, data in files]
    steps = list(panel.upload(paths, replace, "", Progress()))  # type: ignore[arg-type]
    assert all(not os.path.exists(p) for p in paths)  # Gradio's spooled copies are gone
    return steps


def panel_for(index: Index, remove: bool = True) -> DocumentsPanel:
    index.refresh()
    return DocumentsPanel(lambda: index, Rights(upload=not index.settings.read_only, remove=remove))


def test_an_uploaded_file_is_indexed_and_answers_at_once(tmp_path: Path) -> None:
    index = make_index(tmp_path)
    panel = panel_for(index)
    progress = Progress()
    path = spooled("comet.md", COMET.encode())
    steps = list(panel.upload([path], False, "", progress))  # type: ignore[arg-type]
    busy_message, busy_table = steps[0][0], steps[0][1]
    assert "indexing 1 new file" in busy_message
    assert "comet.md</td>" in busy_table and "pending: not indexed yet" in busy_table
    message, table, _, choice, files = steps[-1]
    assert message == "\u2705 comet\\.md added\\: 1 chunk indexed"
    assert '<tr class="rag-doc" data-status="indexed"><td class="rag-doc-name">comet.md' in table
    assert "2 documents: 2 indexed, 0 skipped, 0 pending" in table
    assert choice["choices"] == ["comet.md", "facts.txt"] and files is None
    assert progress.calls and progress.calls[-1][0] == progress.calls[-1][1]
    answer = index.answer("When did astronomers in Quellton first see Zorblat?")
    assert answer.citations and answer.citations[0].source == "comet.md"
    for c in answer.citations:
        assert index.source_text(c.source)[c.start : c.end] == c.quote
    assert sorted(p.name for p in index.settings.seeds_dir.iterdir()) == ["comet.md", "facts.txt"]
    assert not [p for p in (tmp_path / "gradio-spool").rglob("*") if p.is_file()]


def test_refused_files_get_one_line_each_and_the_rest_is_saved(tmp_path: Path) -> None:
    index = make_index(tmp_path, max_file_bytes=200)
    panel = panel_for(index)
    steps = upload(
        panel,
        ("tool.exe", b"MZ"),
        ("big.txt", b"x" * 201),
        (".hidden.md", COMET[:150].encode()),
        ("empty.txt", b""),
    )
    lines = steps[-1][0].split("  \n")
    assert lines[0].startswith("\u2705 hidden\\.md \\(uploaded as \\.hidden\\.md\\) added\\:")
    assert lines[1:] == [
        "\u274c tool\\.exe\\: \\.exe files are not indexed; upload \\.txt, \\.md, \\.html, "
        "\\.htm or \\.pdf files",
        "\u274c big\\.txt is 201 bytes, larger than the 200\\-byte limit "
        "\\(Settings\\.max\\_file\\_bytes\\)\\: split it, or raise the limit",
        "\u274c empty\\.txt is empty\\: there is nothing to index",
    ]
    assert sorted(p.name for p in index.settings.seeds_dir.iterdir()) == ["facts.txt", "hidden.md"]


def test_replacing_a_document_needs_the_confirmation(tmp_path: Path) -> None:
    index = make_index(tmp_path)
    panel = panel_for(index)
    steps = upload(panel, ("facts.txt", COMET.encode()))
    assert len(steps) == 1 and "already exists in the seeds folder" in steps[0][0]
    assert (index.settings.seeds_dir / "facts.txt").read_text(encoding="utf-8") == FACTS
    steps = upload(panel, ("facts.txt", COMET.encode()), replace=True)
    assert steps[-1][0].startswith("\u2705 facts\\.txt replaced\\:")
    assert index.answer("Where was Zorblat first seen?").citations[0].source == "facts.txt"


def test_a_saved_file_the_indexer_skips_says_why(tmp_path: Path) -> None:
    panel = panel_for(make_index(tmp_path))
    steps = upload(panel, ("broken.pdf", b"%PDF-1.4 not really a pdf"))
    assert steps[-1][0].startswith("\u26a0\ufe0f broken\\.pdf added to the seeds folder but not")
    assert 'data-status="skipped"' in steps[-1][1]


def test_removal_moves_to_the_trash_and_leaves_the_index(tmp_path: Path) -> None:
    index = make_index(tmp_path)
    panel = panel_for(index)
    upload(panel, ("comet.md", COMET.encode()))
    box, text, asked = panel.ask_remove("comet.md")
    assert box["visible"] is True and asked == "comet.md" and "comet\\.md" in text
    message, table, _, choice, hidden = panel.remove("comet.md", "", Progress())  # type: ignore[arg-type]
    trashed = list((tmp_path / "index" / "trash").rglob("comet.md"))
    assert len(trashed) == 1 and trashed[0].read_text(encoding="utf-8") == COMET
    assert message.startswith("\u2705 comet\\.md moved to ")
    assert "comet.md" not in table and choice["choices"] == ["facts.txt"]
    assert hidden["visible"] is False
    assert set(index.current().sources) == {"facts.txt"}


def test_without_the_right_nothing_is_removed_or_uploaded(tmp_path: Path) -> None:
    index = make_index(tmp_path)
    panel = DocumentsPanel(lambda: index, Rights(upload=False, remove=False))
    message, *_ = panel.remove("facts.txt", "", Progress())  # type: ignore[arg-type]
    assert render.unescape_markdown(message) == (
        "\u274c removing needs a login: start the app with --auth or --allow-delete"
    )
    assert panel.ask_remove("facts.txt")[0]["visible"] is False
    path = spooled("new.md", b"new")
    (step,) = panel.upload([path], False, "", Progress())  # type: ignore[arg-type]
    assert "uploads are off" in step[0] and not os.path.exists(path)
    assert sorted(p.name for p in index.settings.seeds_dir.iterdir()) == ["facts.txt"]


def test_the_filter_shows_when_there_are_many(tmp_path: Path) -> None:
    index = make_index(tmp_path)
    for i in range(12):
        (index.settings.seeds_dir / f"note{i:02}.md").write_text(f"Note {i}.", encoding="utf-8")
    panel = panel_for(index)
    html, filter_box, _ = panel.view("note1")
    assert filter_box["visible"] is True
    assert "13 documents: 13 indexed" in html and "2 match the filter" in html
    assert html.count('class="rag-doc"') == 2


def test_names_are_escaped_in_the_table(tmp_path: Path) -> None:
    index = make_index(tmp_path)
    (index.settings.seeds_dir / "<img src=x onerror=alert(1)>.md").write_text("x y", "utf-8")
    html, _, _ = panel_for(index).view("")
    assert "&lt;img src=x onerror=alert(1)&gt;.md" in html and "<img" not in html


def test_gradio_file_data_is_named_by_the_browser_and_must_be_spooled(tmp_path: Path) -> None:
    index = make_index(tmp_path)
    panel = panel_for(index)
    secret = tmp_path / "secret.txt"
    secret.write_text("The vault code is 1234.", encoding="utf-8")
    files = [
        {"path": spooled("tmp123", COMET.encode()), "orig_name": "../comet.md"},
        {"path": str(secret), "orig_name": "secret.txt"},
    ]
    steps = list(panel.upload(files, False, "", Progress()))  # type: ignore[arg-type]
    lines = render.unescape_markdown(steps[-1][0]).split("  \n")
    assert lines[0].startswith("\u2705 comet.md (uploaded as ../comet.md) added: ")
    assert lines[1] == "\u274c secret.txt: not a file uploaded to this page"
    assert sorted(p.name for p in index.settings.seeds_dir.iterdir()) == ["comet.md", "facts.txt"]
    assert secret.exists()  # not Gradio's to hand over, and not ours to delete


def test_discard_deletes_only_gradio_spooled_files(tmp_path: Path) -> None:
    mine = tmp_path / "keep.txt"
    mine.write_text("keep", encoding="utf-8")
    _discard(str(mine))
    assert mine.exists()


def handler_names(demo: gr.Blocks) -> set[str]:
    return {fn.name for fn in demo.fns.values()}


def test_what_the_page_offers_follows_the_rights(tmp_path: Path) -> None:
    index = make_index(tmp_path)
    index.refresh()
    plain = handler_names(app.build_demo(index))
    assert "upload" in plain and not {"remove", "ask_remove"} & plain
    assert {"upload", "remove", "ask_remove"} <= handler_names(
        app.build_demo(index, allow_delete=True)
    )
    replica = Index(index.settings.with_(read_only=True), embedder=HashingEmbedder())
    read_only = app.build_demo(replica, allow_delete=True)
    assert not {"upload", "remove", "ask_remove"} & handler_names(read_only)
    assert not any(isinstance(b, gr.File) for b in read_only.blocks.values())
    assert "view" in handler_names(read_only)


def test_a_login_grants_removal_and_uploads_have_a_ceiling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[tuple[gr.Blocks, dict[str, Any]]] = []
    monkeypatch.setattr(app, "_serve", lambda blocks, host, port, **kw: served.append((blocks, kw)))
    index = make_index(tmp_path, max_file_bytes=1000)
    app.launch(index, auth=("alice", "s3cret"))
    app.launch(index)
    app.launch(index, allow_delete=True)
    assert ["remove" in handler_names(b) for b, _ in served] == [True, False, True]
    assert {kw["max_file_size"] for _, kw in served} == {2000}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    index = make_index(tmp_path_factory.mktemp("docs-app"))
    port = free_port()
    demo = app.launch(index, port=port, allow_delete=True, prevent_thread_lock=True, quiet=True)
    try:
        yield Client(f"http://127.0.0.1:{port}/", verbose=False)
    finally:
        demo.close()


def test_upload_and_removal_are_no_api_endpoints(client: Client) -> None:
    api = client.view_api(print_info=False, return_format="dict")
    assert set(api["named_endpoints"]) == {"/chat", "/ask"}
    assert api["unnamed_endpoints"] == {}


def test_uploads_need_the_login_when_there_is_one(tmp_path: Path) -> None:
    import httpx

    index = make_index(tmp_path)
    port = free_port()
    demo = app.launch(
        index, port=port, auth=("alice", "s3cret"), prevent_thread_lock=True, quiet=True
    )
    try:
        base = f"http://127.0.0.1:{port}"
        files = {"files": ("comet.md", COMET.encode(), "text/markdown")}
        refused = httpx.post(f"{base}/gradio_api/upload", files=files, timeout=30)
        assert refused.status_code in (401, 403)
        with httpx.Client(base_url=base, timeout=30) as browser:
            login = browser.post("/login", data={"username": "alice", "password": "s3cret"})
            assert login.status_code == 200
            accepted = browser.post("/gradio_api/upload", files=files)
            assert accepted.status_code == 200 and len(accepted.json()) == 1
            _discard(accepted.json()[0])  # Gradio's spooled copy: the handler never ran
    finally:
        demo.close()
    assert sorted(p.name for p in index.settings.seeds_dir.iterdir()) == ["facts.txt"]


def test_serve_passes_allow_delete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("rag.api.make_embedder", lambda settings: HashingEmbedder())
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(app, "launch", lambda index, **kw: calls.append(kw))
    index = make_index(tmp_path)
    folders = ["--seeds", str(index.settings.seeds_dir), "--index", str(tmp_path / "index")]
    assert main(["serve", *folders, "--reader", "off"]) == 0
    assert main(["serve", *folders, "--reader", "off", "--allow-delete"]) == 0
    assert [kw.get("allow_delete", False) for kw in calls] == [False, True]
    assert all(kw["host"] == "127.0.0.1" for kw in calls)
    capsys.readouterr()
