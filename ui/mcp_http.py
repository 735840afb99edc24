"""The page's MCP endpoint: the tools of `rag mcp` over streamable HTTP, behind its login.

Owns mounting `rag.integrations.mcp`'s tools on the page's server at ``/mcp/`` and the HTTP
basic-auth check that puts them behind the page's ``auth`` (MCP clients send headers,
not the page's login form). It does not define tools; `ui.app` decides whether to mount.
Gradio's own ``launch(mcp_server=True)`` is not used: it lists its tools without the
login, and with a login set its calls to queued endpoints fail (its internal client
cannot log in).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from starlette.responses import PlainTextResponse
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from rag.api import Index

MCP_PATH = "/mcp"
# What `gradio.Blocks.launch(auth=...)` takes: one login, several, or a check.
Auth = tuple[str, str] | Sequence[tuple[str, str]] | Callable[[str, str], bool]


def login_check(auth: Auth) -> Callable[[str, str], bool]:
    """``(user, password) -> allowed`` for any form of the page's ``auth``.

    Example:
        >>> check = login_check(("alice", "s3cret"))
        >>> check("alice", "s3cret"), check("alice", "guess")
        (True, False)
    """
    if callable(auth):
        return auth
    logins = [auth] if isinstance(auth, tuple) and isinstance(auth[0], str) else list(auth)

    def check(user: str, password: str) -> bool:
        given = f"{user}:{password}".encode()
        return any(  # compare every login, in constant time each
            [secrets.compare_digest(given, f"{u}:{p}".encode()) for u, p in logins]
        )

    return check


class BasicAuth:
    """An ASGI wrapper that answers 401 unless the request carries an allowed
    ``Authorization: Basic`` login."""

    def __init__(self, app: ASGIApp, check: Callable[[str, str], bool]) -> None:
        self.app = app
        self.check = check

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._allowed(scope):
            refused = PlainTextResponse(
                "login required: send the page's USER:PASS as HTTP basic auth "
                "(an `Authorization: Basic ...` header)",
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="seedrag", charset="UTF-8"'},
            )
            await refused(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _allowed(self, scope: Scope) -> bool:
        header = dict(scope.get("headers", [])).get(b"authorization", b"")
        scheme, _, encoded = header.partition(b" ")
        if scheme.lower() != b"basic":
            return False
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return bool(sep) and self.check(user, password)


def mcp_app_kwargs(index: Index, host: str, auth: Auth | None) -> dict[str, Any]:
    """Arguments for ``gradio.Blocks.launch(app_kwargs=...)`` that serve the MCP tools at
    `MCP_PATH` (behind ``auth`` when given) and run their sessions with the server.

    Usage (not a doctest: it needs a built index, a model or a server)::

        demo.launch(app_kwargs=mcp_app_kwargs(index, "127.0.0.1", None))
    """
    from rag.integrations.mcp import build_server  # imports the `mcp` SDK

    server = build_server(index, host=host, http_path="/")
    app: ASGIApp = server.streamable_http_app()
    if auth is not None:
        app = BasicAuth(app, login_check(auth))

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        async with server.session_manager.run():
            yield

    return {"routes": [Mount(MCP_PATH, app=app)], "lifespan": lifespan}
