"""The Gradio chat page over a seedrag index, and its `/chat` and `/ask` endpoints.

Owns the layout, the event handlers (streaming answers, rebuilding the index) and
launching. Rendering and escaping live in `ui.render`, the Documents panel in
`ui.documents` and `ui.documents_layout`; answering lives in `rag`.
"""

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio reads it

import gradio as gr
from starlette.middleware import Middleware

from rag.api import Index
from rag.config import Settings
from rag.errors import RagError
from rag.ingest.trash import trash_dir
from ui import render
from ui.documents import DocumentsPanel, Rights
from ui.documents_layout import INDEX_GROUP, documents_panel
from ui.failures import error_text, log_failure
from ui.guard import LOOPBACK_HOSTS, Guard

log = logging.getLogger(__name__)

TITLE = "seedrag"
DESCRIPTION = (
    "Ask a question about the documents: every answer is made of verbatim quotes, "
    "each with its file and character range."
)
EXAMPLES = (
    "Why did Musk leave OpenAI?",
    "What did Altman say about Musk's superpowers?",
    "When did ChatGPT come out?",
    "What is the capital of France?",
)
STREAM_PAUSE_S = 0.1  # between quotes, so that the answer visibly streams in
# The queue. Answering is CPU-bound (one embedding of the question, then retrieval)
# and the target machine has 2 cores: more than 2 answers at once only makes every
# one of them slower, so all ways of asking share one group of 2 workers.
# A full queue refuses at once rather than letting a request wait for minutes:
# the queue holds only as many answers as are served in a few seconds.
ANSWER_CONCURRENCY = 2
UPDATING = "**Updating index\u2026** answers come from the current index until it is done."
STATUS_EVERY_S = 3.0  # how often an open page looks at the index status
ANSWER_GROUP = "answer"  # concurrency_id shared by /chat, /ask and the buttons
QUEUE_MAX_SIZE = 64
# Gradio labels each chat message for screen readers with its raw content, which for a
# question is the markdown-escaped text shown; this gives them the text as displayed.
PLAIN_LABELS_JS = """
() => {
  const key = "\\x27s message: ";  /* no quote characters: Gradio wraps this code */
  const fix = (el) => {
    const label = el.getAttribute("aria-label") || "";
    const cut = label.indexOf(key);
    if (cut < 0) return;
    const plain = label.slice(0, cut + key.length) + el.innerText.trim();
    if (label !== plain) el.setAttribute("aria-label", plain);
  };
  const scan = () => document.querySelectorAll("[aria-label]").forEach(fix);
  new MutationObserver(scan).observe(document.documentElement, {
    subtree: true, childList: true, characterData: true,
    attributes: true, attributeFilter: ["aria-label"],
  });
}
"""
APP_CSS = """
#rag-title h1 { margin-bottom: 0; }
#rag-status { font-size: 0.9em; }
.rag-examples button { font-size: 0.85em; }
"""
LOCAL_FONTS = ["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "sans-serif"]
LOCAL_MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "monospace"]


def local_theme() -> gr.themes.Base:
    """The page theme, with system fonts only: the page must not fetch web fonts."""
    return gr.themes.Soft(primary_hue="indigo", font=LOCAL_FONTS, font_mono=LOCAL_MONO)


History = list[dict[str, Any]]
ChatUpdate = tuple[History, Any, str]


def _log_failure(what: str, exc: BaseException) -> None:
    log_failure(log, what, exc)


def _assistant(content: str) -> dict[str, Any]:
    return {"role": "assistant", "content": content}


class ChatApp:
    """The handlers behind the page, over one index created on first use.

    Example:
        >>> app = ChatApp(None)  # builds nothing until a handler runs
    """

    def __init__(self, index: Index | None, factory: Callable[[], Index] | None = None) -> None:
        self._index = index
        self._factory = factory or (lambda: Index(Settings()))
        self._lock = threading.Lock()

    def index(self) -> Index:
        """The index, created (not yet loaded) on the first call."""
        with self._lock:
            if self._index is None:
                self._index = self._factory()
            return self._index

    def _texts(self, index: Index, sources: set[str]) -> dict[str, str]:
        texts = {}
        for source in sources:
            try:
                texts[source] = index.source_text(source)
            except RagError as exc:  # deleted since the answer: show the quote alone
                log.warning("no context for %s: %s", source, exc)
        return texts

    def chat(self, message: str, history: History | None) -> Iterator[ChatUpdate]:
        """Answer ``message`` in the chat, streaming the quotes in one by one.

        Yields the chat history, the sources panel and the (cleared) question box.
        """
        past: History = list(render.text_history(history))  # text only, bounded
        question = (message if isinstance(message, str) else "").strip()
        if not question:
            yield [*past, _assistant(render.EMPTY_QUESTION)], gr.skip(), ""
            return
        shown = [*past, {"role": "user", "content": render.escape_markdown(question)}]
        yield [*shown, _assistant(render.SEARCHING)], render.SOURCES_PENDING, ""
        try:
            index = self.index()
            answer = index.answer(render.contextualize(question, past))
            panel = render.sources_html(
                answer, self._texts(index, {c.source for c in answer.citations})
            )
        except Exception as exc:
            _log_failure(f"answering {question!r}", exc)
            message_md = "\u26a0\ufe0f " + render.escape_markdown(error_text(exc))
            yield [*shown, _assistant(message_md)], render.SOURCES_ERROR, gr.skip()
            return
        steps = render.answer_steps(answer)
        for i, step in enumerate(steps, 1):
            last = i == len(steps)
            # The box is left alone: what is typed while the answer streams stays there.
            yield [*shown, _assistant(step)], panel if last else gr.skip(), gr.skip()
            if not last:
                time.sleep(STREAM_PAUSE_S)

    def ask(self, question: str) -> dict[str, Any]:
        """Answer a question with verbatim quotes, as JSON for programs.

        Returns ``{"question", "text", "citations": [{"source", "start", "end",
        "quote", "score"}], "error"}``; ``error`` is None unless the question could
        not be answered, and then it says why.
        """
        try:
            return {**self.index().answer(question).to_dict(), "error": None}
        except Exception as exc:
            _log_failure(f"answering {question!r} for the API", exc)
            return {"question": question, "text": "", "citations": [], "error": error_text(exc)}

    def status_line(self) -> str:
        """The index status line (this builds the index if there is none yet)."""
        try:
            index = self.index()
            line = render.status_markdown(index.status())
            if index.refreshing:  # answers keep coming from the current generation
                line = UPDATING + "  \n" + line
            return line
        except Exception as exc:
            _log_failure("reading the index status", exc)
            return "**Index:** " + render.escape_markdown(error_text(exc))

    def rebuild(self, progress: gr.Progress = gr.Progress()) -> str:  # noqa: B008
        """Re-embed every document, reporting progress, then show what was done."""

        def report(done: int, total: int) -> None:
            progress((done, total), desc="Embedding", unit="texts")

        try:
            index = self.index()
            result = index.refresh(rebuild=True, progress=report)
            return render.report_markdown(result) + "  \n" + render.status_markdown(index.status())
        except Exception as exc:
            _log_failure("rebuilding the index", exc)
            return "**Rebuild failed:** " + render.escape_markdown(error_text(exc))


@dataclass(frozen=True)
class _ChatWidgets:
    chatbot: gr.Chatbot
    box: gr.Textbox
    ask: gr.Button
    examples: list[gr.Button]
    clear: gr.Button


def _chat_widgets() -> _ChatWidgets:
    """The chat, the question box, the Ask button, the example questions, Clear."""
    chatbot = gr.Chatbot(
        label="Answers",
        height=520,
        latex_delimiters=[],
        buttons=[],  # it would copy escaped markdown: the sources panel copies exact quotes
        placeholder="Answers are quotes from the documents, numbered like [1].",
    )
    with gr.Row(equal_height=True):
        box = gr.Textbox(
            placeholder="Ask a question about the documents\u2026",
            show_label=False,
            scale=6,
            autofocus=True,
            max_lines=4,
        )
        ask = gr.Button("Ask", variant="primary", scale=1, min_width=80)
    with gr.Row(elem_classes="rag-examples"):
        examples = [gr.Button(q, size="sm", variant="secondary") for q in EXAMPLES]
    clear = gr.Button("Clear chat", size="sm", variant="secondary")
    return _ChatWidgets(chatbot, box, ask, examples, clear)


def _wire_chat(app: ChatApp, chat: _ChatWidgets, sources: gr.HTML) -> None:
    """Every way to ask runs `ChatApp.chat`; only the question box's submit is public.

    The inputs reach it as sent (``preprocess=False``): the history a request carries is
    taken as text by `render.text_history`, so no payload makes Gradio copy a file. A
    question asked while an answer streams is asked when it ends (``always_last``).
    """
    outputs = [chat.chatbot, sources, chat.box]
    # All ways of asking share the answering workers and take their inputs as sent.
    asking: dict[str, Any] = {
        "concurrency_id": ANSWER_GROUP,
        "preprocess": False,
        "trigger_mode": "always_last",
    }
    chat.box.submit(app.chat, [chat.box, chat.chatbot], outputs, api_name="chat", **asking)
    private = {**asking, "api_visibility": "private"}
    chat.ask.click(app.chat, [chat.box, chat.chatbot], outputs, **private)
    for button in chat.examples:  # a button's value is its label: the question
        button.click(app.chat, [button, chat.chatbot], outputs, **private)
    chat.clear.click(
        lambda: ([], render.SOURCES_EMPTY, ""), None, outputs, api_visibility="private"
    )


def build_demo(index: Index | None = None, *, allow_delete: bool = False) -> gr.Blocks:
    """The chat page over ``index`` (by default ``Index(Settings())``, created on first use).

    Its Documents panel lists every document; it uploads into the seeds folder unless
    the index is read-only, and moves documents to the trash only with ``allow_delete``
    (`launch` grants that with a login). Building loads no model and touches no file.
    Theme and css go to `launch`.

    Usage (not a doctest: it needs a built index, a model or a server)::

        demo = build_demo(Index(Settings(seeds_dir=Path("seeds"))))
        demo.launch(server_name="127.0.0.1")
    """
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    app = ChatApp(index)
    settings = index.settings if index is not None else Settings()  # what ChatApp will open
    writable = not settings.read_only
    panel = DocumentsPanel(app.index, Rights(upload=writable, remove=writable and allow_delete))
    demo = gr.Blocks(title=TITLE)
    with demo:
        gr.Markdown(f"# {TITLE}\n{DESCRIPTION}", elem_id="rag-title")
        with gr.Row():
            with gr.Column(scale=3):
                chat = _chat_widgets()
            with gr.Column(scale=2):
                gr.Markdown("### Sources")
                sources = gr.HTML(
                    render.SOURCES_EMPTY,
                    css_template=render.SOURCES_CSS,
                    js_on_load=render.COPY_JS,
                )
        with gr.Row(equal_height=True):
            status = gr.Markdown("**Index:** loading\u2026", elem_id="rag-status")
            rebuild = gr.Button("Rebuild index", size="sm", variant="secondary", scale=0)
        docs = documents_panel(panel, settings.max_file_bytes, trash_dir(settings.index_dir))
        _wire_chat(app, chat, sources)
        rebuild.click(  # one at a time, and never while an upload or removal writes the index
            app.rebuild,
            None,
            status,
            api_visibility="private",
            concurrency_id=INDEX_GROUP,
            concurrency_limit=1,
        ).then(panel.view, docs.filter_box, docs.outputs, api_visibility="private")
        demo.load(app.status_line, None, status, api_visibility="private")
        # Says "updating index…" while a refresh runs, whoever started it.
        gr.Timer(STATUS_EVERY_S).tick(
            app.status_line, None, status, api_visibility="private", queue=False
        )
        demo.load(panel.view, docs.filter_box, docs.outputs, api_visibility="private")
        for event in docs.changed:  # an upload or removal changes the counts
            event.then(app.status_line, None, status, api_visibility="private")
        gr.api(app.ask, api_name="ask", concurrency_id=ANSWER_GROUP)  # type: ignore[attr-defined]
    demo.queue(default_concurrency_limit=ANSWER_CONCURRENCY, max_size=QUEUE_MAX_SIZE)
    return demo


def launch(
    index: Index | None = None,
    host: str = "127.0.0.1",
    port: int = 7860,
    *,
    mcp: bool = False,
    allow_delete: bool = False,
    allowed_hosts: Sequence[str] = (),
    **kwargs: Any,
) -> gr.Blocks:
    """Build the page and serve it on ``host:port`` (loopback by default, never shared).

    Every request passes `ui.guard.Guard` first: bound to loopback, the server answers
    only loopback host names and ``allowed_hosts`` (elsewhere only ``allowed_hosts``, when
    given), and failed logins are throttled per client.

    The Documents panel may remove documents (into the trash) when ``allow_delete`` is
    set or a login (``auth``) is required. Gradio refuses an upload body over twice
    `Settings.max_file_bytes` before spooling it to disk; smaller ones reach the panel,
    which checks the limit itself and says how to raise it.

    With ``mcp``, the same server also serves the tools of `rag mcp` over MCP's streamable
    HTTP transport at ``/mcp/`` (`ui.mcp_http`), answering from the page's index and,
    when ``auth`` is given, asking for the same login as HTTP basic auth.

    Extra keyword arguments go to `gradio.Blocks.launch` (e.g. ``prevent_thread_lock``,
    or ``auth=("user", "password")`` to require a login).

    Usage (not a doctest: it needs a built index, a model or a server)::

        launch(open_index(), port=7861, mcp=True)
    """
    if mcp:
        from ui.mcp_http import mcp_app_kwargs

        index = index or Index(Settings())  # one index for the page and the tools
        tools = mcp_app_kwargs(index, host, kwargs.get("auth"))
        kwargs["app_kwargs"] = {**kwargs.get("app_kwargs", {}), **tools}
    settings = index.settings if index is not None else Settings()
    kwargs.setdefault("max_file_size", 2 * settings.max_file_bytes)
    hosts = [*LOOPBACK_HOSTS, *allowed_hosts] if host in LOOPBACK_HOSTS else allowed_hosts
    guard = Middleware(Guard, allowed_hosts=list(hosts) or None)
    app_kwargs = kwargs.get("app_kwargs", {})
    kwargs["app_kwargs"] = {**app_kwargs, "middleware": [*app_kwargs.get("middleware", []), guard]}
    allow_delete = allow_delete or bool(kwargs.get("auth"))
    return _serve(build_demo(index, allow_delete=allow_delete), host, port, **kwargs)


def _serve(blocks: gr.Blocks, host: str, port: int, **kwargs: Any) -> gr.Blocks:
    if kwargs.pop("share", False):
        raise ValueError("share=True would publish the documents through a public link")
    kwargs.setdefault("theme", local_theme())
    kwargs.setdefault("css", APP_CSS)
    kwargs.setdefault("js", PLAIN_LABELS_JS)
    # The handlers catch their own failures; what still fails is a request Gradio itself
    # refuses (missing or malformed data), and its client should hear why, not `null`.
    kwargs.setdefault("show_error", True)
    blocks.launch(server_name=host, server_port=port, share=False, **kwargs)
    return blocks


demo = build_demo()

if __name__ == "__main__":
    _serve(demo, "127.0.0.1", int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
