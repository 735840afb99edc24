"""seedrag for AI assistants: the MCP tools `ask`, `source_text` and `status`, over stdio.

Owns what the tools do and say (descriptions, result shapes, errors a client sees) and
serving them over stdin/stdout for `rag mcp`. The `mcp` SDK is imported only when a
server is built. Answering lives in `rag.api`; the page mounts the same tools over HTTP
(`ui.mcp_http`).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, TypeVar

from pydantic import Field

from rag.api import Index
from rag.errors import QuestionError, RagError
from rag.query.quotes import compose
from rag.types import Citation, IndexStatus

if TYPE_CHECKING:
    from mcp.server.fastmcp import FastMCP

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_SOURCE_CHARS = 20_000  # per `source_text` call: an assistant's context is finite
ANSWER_CONCURRENCY = 2  # tool calls answered at once (answering is CPU-bound)
INSTRUCTIONS = (
    "seedrag answers questions from a folder of documents with verbatim quotes only. Each "
    "quote is copied character for character from its source: cite it exactly as given, in "
    "quotation marks, with its source (and page label for a PDF), and never reword text "
    "inside quotation marks. When `ask` returns answered: false the documents do not "
    "answer: say so instead of answering from elsewhere."
)
ASK_DESCRIPTION = (
    "Answer a question from the indexed documents with verbatim quotes. Returns `answered` "
    "(false when the documents do not answer the question: then say so, and do not answer "
    "from elsewhere), `text` (the quotes in quotation marks, each followed by its [n] "
    "marker) and `citations`, the n-th for marker [n]: `source` (path in the documents "
    "folder), `start` and `end` (character offsets: source_text(source)[start:end] is the "
    "quote), `page` and `page_label` (PDF only: the page's position in the file and the "
    "page number printed on it; null otherwise), `quote` and `score` (relevance, higher is "
    "better). Quotes are verbatim: cite them exactly as returned, in quotation marks, with "
    "source and page label; do not paraphrase inside quotation marks. Use `source_text` "
    "to read around a quote."
)
SOURCE_TEXT_DESCRIPTION = (
    "Read the exact text of an indexed source, the text citation offsets refer to: "
    f"characters `start` to `end` (end exclusive), at most {MAX_SOURCE_CHARS:,} characters "
    "per call; page through a longer source by calling again from the returned `end`. "
    "Returns `text`, the `start` and `end` actually read, the source's total `length`, and "
    "`truncated` (true when the range asked for was cut to the limit). The text is "
    "verbatim: quote it exactly."
)
STATUS_DESCRIPTION = (
    "What the index holds: documents, chunks and sentences, when it was built, the "
    "embedding model, and where the documents and the index live."
)


@dataclass(frozen=True)
class AskResult:
    """What the `ask` tool returns; ``citations`` is empty exactly when not ``answered``."""

    question: str
    answered: bool
    text: str
    citations: tuple[Citation, ...]


@dataclass(frozen=True)
class SourceSlice:
    """What the `source_text` tool returns: ``text`` is ``source_text(source)[start:end]``.

    ``length`` is the whole text's; ``truncated`` says the range asked for was longer
    than `MAX_SOURCE_CHARS` and was cut.
    """

    source: str
    start: int
    end: int
    length: int
    text: str
    truncated: bool


class Tools:
    """What the tools do over one `Index`, without the protocol.

    Usage (not a doctest: it needs a built index, a model or a server)::

        tools = Tools(Index(Settings()))
        tools.ask("Why did Musk leave OpenAI?", max_quotes=1).answered
        # -> True
    """

    def __init__(self, index: Index) -> None:
        self.index = index

    def ask(self, question: str, max_quotes: int | None = None) -> AskResult:
        """Answer ``question``, keeping at most ``max_quotes`` of the quotes (all if None).

        Raises:
            QuestionError: the question is empty, or ``max_quotes`` is below 1.
        """
        if max_quotes is not None and max_quotes < 1:
            raise QuestionError(f"max_quotes must be at least 1, not {max_quotes}")
        answer = self.index.answer(question)
        if max_quotes is not None and len(answer.citations) > max_quotes:
            answer = compose(answer.question, list(answer.citations[:max_quotes]))
        return AskResult(answer.question, answer.answered, answer.text, answer.citations)

    def source_text(self, source: str, start: int = 0, end: int | None = None) -> SourceSlice:
        """Characters ``start`` to ``end`` of ``source``'s text, cut to `MAX_SOURCE_CHARS`.

        Offsets are clamped to the text (no negative indexing from the end).

        Raises:
            SourceNotFoundError: the index holds no such source.
        """
        text = self.index.source_text(source)
        lo = min(max(start, 0), len(text))
        hi = len(text) if end is None else min(max(end, lo), len(text))
        cut = hi - lo > MAX_SOURCE_CHARS
        hi = lo + MAX_SOURCE_CHARS if cut else hi
        return SourceSlice(source, lo, hi, len(text), text[lo:hi], cut)

    def status(self) -> IndexStatus:
        """The index's `IndexStatus` (building or refreshing it first if needed)."""
        return self.index.status()


def _tool_error(exc: Exception) -> Exception:
    """The `ToolError` a client sees: a `RagError`'s message (it names the fix), else only
    the exception's type (details go to the server's log, not to the client)."""
    from mcp.server.fastmcp.exceptions import ToolError

    if isinstance(exc, RagError):
        return ToolError(str(exc))
    log.error("MCP tool failed", exc_info=exc)
    return ToolError(f"internal error ({type(exc).__name__}); see the seedrag server's log")


def build_server(index: Index, *, host: str = "127.0.0.1", http_path: str = "/mcp") -> FastMCP:
    """An MCP server whose tools answer from ``index``; run it with ``.run("stdio")``.

    Tools run in worker threads, `ANSWER_CONCURRENCY` at a time, so a slow answer never
    blocks the event loop. ``host`` and ``http_path`` matter only over HTTP (the host
    decides DNS-rebinding protection, as in the SDK).

    Usage (not a doctest: it needs a built index, a model or a server)::

        build_server(Index(Settings())).run("stdio")
    """
    import anyio
    from mcp.server.fastmcp import FastMCP
    from mcp.types import ToolAnnotations

    tools = Tools(index)
    limiter = anyio.CapacityLimiter(ANSWER_CONCURRENCY)
    server = FastMCP(
        "seedrag",
        instructions=INSTRUCTIONS,
        host=host,
        streamable_http_path=http_path,
        stateless_http=True,
        log_level="WARNING",
    )
    reading = ToolAnnotations(readOnlyHint=True, idempotentHint=True, openWorldHint=False)

    async def run(call: Callable[[], T]) -> T:
        try:
            return await anyio.to_thread.run_sync(call, limiter=limiter)
        except Exception as exc:
            raise _tool_error(exc) from exc

    @server.tool(description=ASK_DESCRIPTION, annotations=reading)
    async def ask(
        question: Annotated[str, Field(description="the question, in plain words")],
        max_quotes: Annotated[
            int | None, Field(ge=1, description="the most quotes to return (default: all)")
        ] = None,
    ) -> AskResult:
        return await run(functools.partial(tools.ask, question, max_quotes))

    @server.tool(description=SOURCE_TEXT_DESCRIPTION, annotations=reading)
    async def source_text(
        source: Annotated[str, Field(description="a citation's `source`")],
        start: Annotated[int, Field(ge=0, description="first character (default 0)")] = 0,
        end: Annotated[
            int | None,
            Field(ge=0, description=f"end, exclusive (default: start + {MAX_SOURCE_CHARS:,})"),
        ] = None,
    ) -> SourceSlice:
        return await run(functools.partial(tools.source_text, source, start, end))

    @server.tool(description=STATUS_DESCRIPTION, annotations=reading)
    async def status() -> IndexStatus:
        return await run(tools.status)

    return server


def _warm_up(index: Index) -> None:
    """Load (building or refreshing) the index before the first question needs it."""
    try:
        index.current()
    except Exception as exc:  # the first tool call meets the same error, with its fix
        log.warning("the index is not ready: %s", exc)


def serve_stdio(index: Index) -> None:
    """Serve the tools over stdin/stdout until the client closes them (`rag mcp`).

    The index loads in the background, so the client's handshake is answered at once.

    Usage (not a doctest: it needs a built index, a model or a server)::

        serve_stdio(Index(Settings(seeds_dir=Path("docs"))))
    """
    server = build_server(index)
    threading.Thread(target=_warm_up, args=(index,), name="rag-mcp-warm-up", daemon=True).start()
    server.run("stdio")
