"""`rag serve --mcp`: the MCP tools over streamable HTTP on the page's server, behind --auth."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from rag.api import Index
from rag.config import Settings
from rag.embedding.fake import HashingEmbedder
from tests.conftest import FACTS, free_port, write_seeds
from tests.test_mcp import check_verbatim, structured
from ui import app
from ui.mcp_http import login_check

pytestmark = pytest.mark.app

LOGIN = ("alice", "s3:cret")


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mcp_http")
    settings = Settings(seeds_dir=write_seeds(root / "seeds", FACTS), index_dir=root / "index")
    index = Index(settings.with_(reader="off"), HashingEmbedder())
    port = free_port()
    demo = app.launch(index, port=port, mcp=True, auth=LOGIN, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        demo.close()


def test_tools_answer_verbatim_with_the_login(page: str) -> None:
    async def main() -> None:
        async with (
            httpx.AsyncClient(auth=LOGIN, timeout=60, follow_redirects=True) as http,
            streamable_http_client(f"{page}/mcp", http_client=http) as (read, write, _),
            ClientSession(read, write, read_timeout_seconds=timedelta(seconds=60)) as s,
        ):
            await s.initialize()
            names = {t.name for t in (await s.list_tools()).tools}
            assert names == {"ask", "source_text", "status"}
            result = await s.call_tool("ask", {"question": "Where does the Falcon booster land?"})
            answer: dict[str, Any] = structured(result)
            assert answer["answered"] and "drone ship" in answer["citations"][0]["quote"]
            await check_verbatim(s, answer["citations"])

    anyio.run(main)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("alice", "guess"),
        basic("mallory", "s3:cret"),
        {"Authorization": "Basic !!not-base64!!"},
        {"Authorization": "Bearer s3:cret"},
    ],
)
def test_without_the_login_nothing_is_served(page: str, headers: dict[str, str]) -> None:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "probe", "version": "0"},
        },
    }
    accept = {"Accept": "application/json, text/event-stream"}
    for path in ("/mcp/", "/mcp"):
        response = httpx.post(
            f"{page}{path}", json=initialize, headers={**accept, **headers}, follow_redirects=True
        )
        assert response.status_code == 401, (path, response.text)
        assert response.headers["www-authenticate"].startswith("Basic ")
    assert httpx.post(
        f"{page}/mcp/", json=initialize, headers={**accept, **basic(*LOGIN)}
    ).is_success


def test_the_page_without_mcp_serves_no_tools(tmp_path: Path) -> None:
    settings = Settings(seeds_dir=write_seeds(tmp_path / "seeds", FACTS), index_dir=tmp_path / "i")
    port = free_port()
    demo = app.launch(
        Index(settings, HashingEmbedder()), port=port, prevent_thread_lock=True, quiet=True
    )
    try:
        response = httpx.post(f"http://127.0.0.1:{port}/mcp/", json={})
        assert response.status_code in (404, 405)
    finally:
        demo.close()


def test_login_check_takes_every_form_of_auth() -> None:
    assert login_check(LOGIN)(*LOGIN) and not login_check(LOGIN)("alice", "s3")
    several = login_check([("a", "1"), ("b", "2")])
    assert several("b", "2") and not several("a", "2")
    assert login_check(lambda user, password: user == "x")("x", "")
