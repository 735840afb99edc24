"""`rag mcp`: the stdio MCP server as a child process, driven by the SDK's own client.

The child runs the real CLI and server with the fake embedder (`tests.mcp_fake_server`)
and ``--reader off``; the test marked ``model`` runs ``python -m rag mcp`` as it ships.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.types import CallToolResult, TextContent

from rag.api import Index
from rag.integrations.mcp import MAX_SOURCE_CHARS, Tools
from rag.query.quotes import NOT_ANSWERED
from tests.conftest import REPO, SEED_FILE, write_seeds

Session = Callable[[ClientSession], Awaitable[None]]


def child_env(home: Path) -> dict[str, str]:
    """What an MCP client passes: the stdio client gives the child almost no environment."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "PYTHONPATH": str(REPO),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
    }


def talk(tmp_path: Path, args: list[str], session: Session) -> None:
    """Start the server with ``args``, initialise a session and run ``session`` on it."""
    params = StdioServerParameters(
        command=sys.executable, args=args, env=child_env(tmp_path), cwd=tmp_path
    )

    async def main() -> None:
        with (tmp_path / "server.log").open("w") as errlog, anyio.fail_after(180):
            async with (
                stdio_client(params, errlog=errlog) as (read, write),
                ClientSession(read, write, read_timeout_seconds=timedelta(seconds=120)) as s,
            ):
                init = await s.initialize()
                assert init.serverInfo.name == "seedrag"
                assert "verbatim" in (init.instructions or "")
                await session(s)

    try:
        anyio.run(main)
    except BaseException:
        print((tmp_path / "server.log").read_text(errors="replace"), file=sys.stderr)
        raise


def fake_server(seeds: Path, index: Path, *extra: str) -> list[str]:
    return ["-m", "tests.mcp_fake_server", "--seeds", str(seeds), "--index", str(index), *extra]


def structured(result: CallToolResult) -> dict[str, Any]:
    """The tool's structured result, checked against its JSON text twin."""
    assert not result.isError, result.content
    assert result.structuredContent is not None
    text = result.content[0]
    assert isinstance(text, TextContent)
    assert json.loads(text.text) == result.structuredContent
    return result.structuredContent


def error_text(result: CallToolResult) -> str:
    assert result.isError
    text = result.content[0]
    assert isinstance(text, TextContent)
    return text.text


async def check_verbatim(s: ClientSession, citations: list[dict[str, Any]]) -> None:
    """Every quote is the slice of its source that the `source_text` tool returns."""
    for c in citations:
        whole = structured(await s.call_tool("source_text", {"source": c["source"]}))
        assert whole["text"][c["start"] : c["end"]] == c["quote"]
        part = structured(
            await s.call_tool(
                "source_text", {"source": c["source"], "start": c["start"], "end": c["end"]}
            )
        )
        assert part["text"] == c["quote"] and not part["truncated"]


def test_stdio_server_answers_with_verbatim_quotes(seeds: Path, tmp_path: Path) -> None:
    async def session(s: ClientSession) -> None:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert set(tools) == {"ask", "source_text", "status"}
        for tool in tools.values():
            assert tool.annotations is not None and tool.annotations.readOnlyHint
        assert "verbatim" in (tools["ask"].description or "")
        assert "cite" in (tools["ask"].description or "")
        assert f"{MAX_SOURCE_CHARS:,}" in (tools["source_text"].description or "")
        assert tools["ask"].inputSchema["required"] == ["question"]
        assert tools["ask"].outputSchema is not None

        answer = structured(
            await s.call_tool("ask", {"question": "Where does the Falcon booster land?"})
        )
        assert answer["answered"] is True and answer["text"].startswith("\u201c")
        citations = answer["citations"]
        assert citations and "drone ship" in citations[0]["quote"]
        assert citations[0]["source"] == "rockets.txt"
        for c in citations:
            assert set(c) == {"source", "start", "end", "quote", "score", "page", "page_label"}
            assert c["page"] is None and c["page_label"] is None
        await check_verbatim(s, citations)

        status = structured(await s.call_tool("status", {}))
        assert status["documents"] == 2 and status["chunks"] > 0 and status["built_at"]

    talk(tmp_path, fake_server(seeds, tmp_path / "index", "--reader", "off"), session)


def test_refusals_and_bad_calls_are_results_not_crashes(seeds: Path, tmp_path: Path) -> None:
    write_seeds(seeds, {"long.txt": "Long text about orchards. " * 1000})

    async def session(s: ClientSession) -> None:
        refused = structured(await s.call_tool("ask", {"question": "zyxwv qwerty plugh"}))
        assert refused == {
            "question": "zyxwv qwerty plugh",
            "answered": False,
            "text": NOT_ANSWERED,
            "citations": [],
        }
        assert "empty" in error_text(await s.call_tool("ask", {"question": "   "}))
        assert error_text(await s.call_tool("ask", {"question": "Falcon?", "max_quotes": 0}))
        assert error_text(await s.call_tool("ask", {}))
        missing = error_text(await s.call_tool("source_text", {"source": "../etc/passwd"}))
        assert "not an indexed source" in missing

        one = structured(
            await s.call_tool("ask", {"question": "Falcon booster drone ship", "max_quotes": 1})
        )
        assert len(one["citations"]) == 1 and "[2]" not in one["text"]

        first = structured(await s.call_tool("source_text", {"source": "long.txt"}))
        assert first["truncated"] and (first["start"], first["end"]) == (0, MAX_SOURCE_CHARS)
        assert len(first["text"]) == MAX_SOURCE_CHARS and first["length"] == 26_000
        rest = structured(
            await s.call_tool("source_text", {"source": "long.txt", "start": first["end"]})
        )
        assert not rest["truncated"] and rest["end"] == rest["length"]
        assert first["text"] + rest["text"] == (seeds / "long.txt").read_text()

        after = structured(await s.call_tool("status", {}))  # the server is still up
        assert after["documents"] == 3

    talk(tmp_path, fake_server(seeds, tmp_path / "index", "--reader", "off"), session)


def test_a_missing_read_only_index_is_a_tool_error_naming_the_fix(
    seeds: Path, tmp_path: Path
) -> None:
    async def session(s: ClientSession) -> None:
        message = error_text(await s.call_tool("ask", {"question": "Falcon?"}))
        assert "rag index" in message

    args = fake_server(seeds, tmp_path / "none", "--read-only", "--reader", "off")
    talk(tmp_path, args, session)
    assert not (tmp_path / "none").exists()


def test_tools_cut_ranges_to_the_text(index: Index) -> None:
    tools = Tools(index)
    text = index.source_text("rockets.txt")
    assert tools.source_text("rockets.txt", -5, 4).text == text[:4]
    past = tools.source_text("rockets.txt", len(text) + 10)
    assert (past.start, past.end, past.text, past.truncated) == (len(text), len(text), "", False)
    assert tools.source_text("rockets.txt", 10, 3).text == ""


@pytest.mark.model
def test_shipped_server_answers_the_seed(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / SEED_FILE.name).write_bytes(SEED_FILE.read_bytes())

    async def session(s: ClientSession) -> None:
        answer = structured(await s.call_tool("ask", {"question": "Why did Musk leave OpenAI?"}))
        assert answer["answered"] and answer["citations"]
        await check_verbatim(s, answer["citations"])
        refused = structured(await s.call_tool("ask", {"question": "What is the capital of Peru?"}))
        assert not refused["answered"] and refused["citations"] == []

    args = ["-m", "rag", "mcp", "--seeds", str(seeds), "--index", str(tmp_path / "index")]
    talk(tmp_path, args, session)
