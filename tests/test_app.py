"""Tests for ui.app: the handlers, and the served page through gradio_client."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

import json
import logging
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client

from rag.api import Index
from rag.config import Settings
from rag.embedding.fake import HashingEmbedder
from rag.errors import EmptyCorpusError
from rag.types import Answer, Citation
from tests.conftest import free_port
from ui import app, render

pytestmark = pytest.mark.app

REPO = Path(__file__).resolve().parents[1]
FACTS = (
    "ChatGPT came out in November 2022 and took the tech world by storm.\n\n"
    "Elon Musk left the OpenAI board in 2018 because of a conflict of interest with Tesla.\n"
)
EVIL = (
    "The payload <script>alert(1)</script> sits here.\n\n"
    "An image <img src=x onerror=alert(1)> and **bold** text appear.\n"
)


def make_index(root: Path) -> Index:
    seeds = root / "seeds"
    seeds.mkdir()
    (seeds / "facts.txt").write_text(FACTS, encoding="utf-8")
    (seeds / "evil.txt").write_text(EVIL, encoding="utf-8")
    # The similarity path: every question gets quotes (min_score 0), so streaming shows several.
    settings = Settings(seeds_dir=seeds, index_dir=root / "index", min_score=0.0, reader="off")
    return Index(settings, embedder=HashingEmbedder())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, Index]]:
    index = make_index(tmp_path_factory.mktemp("app"))
    port = free_port()
    demo = app.launch(index, port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield Client(f"http://127.0.0.1:{port}/", verbose=False), index
    finally:
        demo.close()


def last_text(history: list[dict[str, Any]]) -> str:
    return render.message_text(history[-1]["content"])


def test_endpoints_are_named_chat_and_ask(served: tuple[Client, Index]) -> None:
    client, _ = served
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(endpoints) == {"/chat", "/ask"}


def test_ask_returns_verbatim_citations(served: tuple[Client, Index]) -> None:
    client, index = served
    result = client.predict("When did ChatGPT come out?", api_name="/ask")
    assert result["error"] is None and result["question"] == "When did ChatGPT come out?"
    cites = result["citations"]
    keys = {"source", "start", "end", "quote", "score", "page", "page_label"}
    assert cites and set(cites[0]) == keys
    for c in cites:
        assert index.source_text(c["source"])[c["start"] : c["end"]] == c["quote"]
    assert cites[0]["source"] == "facts.txt" and "November 2022" in cites[0]["quote"]
    assert "\u201c" + cites[0]["quote"] + "\u201d [1]" in result["text"]


def test_ask_with_an_empty_question_says_so(served: tuple[Client, Index]) -> None:
    client, _ = served
    result = client.predict("   ", api_name="/ask")
    assert result["citations"] == [] and result["text"] == ""
    assert "question is empty" in result["error"]


def test_chat_streams_escaped_quotes_and_sources(served: tuple[Client, Index]) -> None:
    client, _ = served
    job = client.submit("Where does the script payload sit?", [], api_name="/chat")
    job.result()
    outputs = job.outputs()
    assert len(outputs) >= 3  # "searching", then one step per quote
    assert outputs[0][2] == ""  # the box is cleared when the question is taken
    history, panel, box = outputs[-1]
    assert box == {"__type__": "update"}  # then left alone: a next question may be typed
    assert [m["role"] for m in history] == ["user", "assistant"]
    answer = last_text(history)
    assert "\\<script\\>alert\\(1\\)\\<\\/script\\>" in answer and "<script>" not in answer
    assert "_Sources: " in answer
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in panel and "<script" not in panel
    assert '<span class="rag-file">evil.txt</span>' in panel


def test_chat_with_an_empty_question_is_friendly(served: tuple[Client, Index]) -> None:
    client, _ = served
    history, _, _ = client.predict("", [], api_name="/chat")
    assert history == [
        {
            "role": "assistant",
            "metadata": None,
            "content": [{"text": render.EMPTY_QUESTION, "type": "text"}],
            "options": None,
        }
    ]


class Failing:
    """An index whose answer raises the given error."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def answer(self, question: str) -> Answer:
        raise self.error

    def status(self) -> None:
        raise self.error


def chat_once(chat_app: app.ChatApp, question: str) -> tuple[list[dict[str, Any]], Any]:
    *_, (history, panel, _) = chat_app.chat(question, [])
    return history, panel


def test_unexpected_errors_show_a_message_not_a_trace(caplog: pytest.LogCaptureFixture) -> None:
    chat_app = app.ChatApp(Failing(RuntimeError("secret /etc/passwd")))  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="ui.app"):
        history, panel = chat_once(chat_app, "Why?")
    assert (
        last_text(history)
        == "\u26a0\ufe0f Something went wrong\\: RuntimeError; see the server log"
    )
    assert panel == render.SOURCES_ERROR
    assert caplog.records and caplog.records[0].exc_info is not None
    api_result = chat_app.ask("Why?")
    assert api_result["error"] == "Something went wrong: RuntimeError; see the server log"


def test_rag_errors_show_their_message() -> None:
    error = EmptyCorpusError("no readable document in 'seeds': add .txt files")
    chat_app = app.ChatApp(Failing(error))  # type: ignore[arg-type]
    history, _ = chat_once(chat_app, "Why?")
    assert last_text(history) == "\u26a0\ufe0f " + render.escape_markdown(str(error))
    assert chat_app.status_line() == "**Index:** " + render.escape_markdown(str(error))
    assert chat_app.ask("Why?")["error"] == str(error)


class Canned:
    """An index that records questions and gives one canned answer."""

    def __init__(self, answer: Answer, text: str = "") -> None:
        self.canned, self.text, self.asked = answer, text, []

    def answer(self, question: str) -> Answer:
        self.asked.append(question)
        return self.canned

    def source_text(self, source: str) -> str:
        return self.text


def test_no_answer_is_said_plainly() -> None:
    chat_app = app.ChatApp(Canned(Answer("q", render.NO_ANSWER, ())))  # type: ignore[arg-type]
    history, panel = chat_once(chat_app, "What is the capital of France?")
    assert last_text(history) == "The documents do not answer this question."
    assert panel == render.SOURCES_NONE


def test_follow_up_questions_are_contextualized_but_shown_as_typed() -> None:
    text = "Musk left in 2018."
    cite = Citation("f.txt", 0, len(text), text, 0.9)
    index = Canned(Answer("q", "t", (cite,)), text)
    chat_app = app.ChatApp(index)  # type: ignore[arg-type]
    history = [{"role": "user", "content": "Why did Musk leave OpenAI?"}]
    *_, (shown, _, _) = chat_app.chat("When did he leave?", history)
    assert index.asked == ["Why did Musk leave OpenAI? When did he leave?"]
    assert shown[-2] == {"role": "user", "content": "When did he leave?"}


def test_rebuild_reports_progress_and_counts(tmp_path: Path) -> None:
    chat_app = app.ChatApp(make_index(tmp_path))
    calls: list[tuple[Any, ...]] = []
    out = chat_app.rebuild(progress=lambda *a, **k: calls.append(a))  # type: ignore[arg-type]
    assert out.startswith("**Rebuilt in ")
    assert "2 added, 0 updated, 0 unchanged, 0 deleted" in out
    assert "**Index:** 2 documents" in out
    assert calls and calls[-1][0][0] == calls[-1][0][1]  # (done, total) ends full


def test_building_the_page_loads_no_model_and_writes_nothing(tmp_path: Path) -> None:
    code = (
        "import json, sys; from ui.app import build_demo; build_demo(); "
        "print(json.dumps(sorted(m for m in ('torch', 'sentence_transformers') "
        "if m in sys.modules)))"
    )
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
    assert list(tmp_path.iterdir()) == []


def _chat_over_http(base: str, message: str, history: list[Any]) -> str:
    """The raw event stream of one `/chat` call made with ``history`` as sent."""
    body = json.dumps({"data": [message, history]}).encode()
    request = urllib.request.Request(
        base + "gradio_api/call/chat", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        event = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(f"{base}gradio_api/call/chat/{event}", timeout=60) as response:
        return response.read().decode()


def _text(s: str) -> list[dict[str, str]]:
    return [{"type": "text", "text": s}]


def test_chat_history_never_copies_a_file_and_is_bounded(
    served: tuple[Client, Index], tmp_path: Path
) -> None:
    client, _ = served
    secret = tmp_path / f"secret-{uuid.uuid4().hex}.txt"
    secret.write_text("the launch codes")
    file_part = {
        "type": "file",
        "file": {"path": str(secret), "meta": {"_type": "gradio.FileData"}},
    }
    crafted = [
        {"role": "user", "content": _text("Which booster lands on a drone ship?")},
        {"role": "assistant", "content": [file_part]},
    ]
    stream = _chat_over_http(client.src, "Where does it land?", crafted)
    assert "launch codes" not in stream
    copies = [p for p in Path(tempfile.gettempdir()).rglob(secret.name) if p != secret]
    assert copies == []

    long = [{"role": "user", "content": _text("x" * 50_000)}]
    many = [{"role": "user", "content": _text(f"question {i}")} for i in range(200)]
    stream = _chat_over_http(client.src, "Where does it land?", long + many)
    assert "event: complete" in stream and "x" * 100 not in stream
    assert 'question 0"' not in stream and "question 199" in stream  # the newest are kept
    stream = _chat_over_http(client.src, "Where does it land?", long)
    assert "x" * render.MAX_MESSAGE_CHARS in stream
    assert "x" * (render.MAX_MESSAGE_CHARS + 1) not in stream


@pytest.mark.parametrize("payload", [{"data": []}, {"data": [["not", "text"]]}, {"nothing": 1}])
def test_malformed_api_input_gets_an_error_that_says_why(
    served: tuple[Client, Index], payload: dict[str, Any]
) -> None:
    client, _ = served
    request = urllib.request.Request(
        client.src + "gradio_api/call/ask",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            event = json.loads(response.read())["event_id"]
        with urllib.request.urlopen(f"{client.src}gradio_api/call/ask/{event}", timeout=30) as r:
            stream = r.read().decode()
    except urllib.error.HTTPError as exc:  # refused before it is queued: a 4xx with a reason
        assert 400 <= exc.code < 500 and exc.read()
        return
    assert '"error": null' not in stream
    assert "error" in stream or '"citations": []' in stream
