"""What every request to the page's server passes first: its Host header, and the login
throttle.

Bound to loopback, the server answers only requests addressed to a loopback name, so a
web page elsewhere cannot reach it through DNS rebinding (``allowed_hosts`` adds the
names a proxy in front uses). A client whose logins fail too often in a short time is
refused for the rest of that time, and each failed login is logged; the right login
works again once the time has passed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.text.display import printable

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
MAX_FAILED_LOGINS = 10  # per client, within `FAILED_LOGIN_WINDOW_S`
FAILED_LOGIN_WINDOW_S = 60.0


def host_name(header: str) -> str:
    """The name in a Host header, without its port or IPv6 brackets.

    Example:
        >>> host_name("LOCALHOST:7860"), host_name("[::1]:80"), host_name("127.0.0.1")
        ('localhost', '::1', '127.0.0.1')
    """
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class FailedLogins:
    """Failed logins per client within a sliding window."""

    def __init__(
        self, limit: int = MAX_FAILED_LOGINS, window_s: float = FAILED_LOGIN_WINDOW_S
    ) -> None:
        self.limit, self.window_s = limit, window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._failures.setdefault(client, deque())
        while times and now - times[0] > self.window_s:
            times.popleft()
        return times

    def blocked_for(self, client: str) -> float:
        """Seconds until ``client`` may try again; 0 when it may now."""
        now = time.monotonic()
        with self._lock:
            times = self._recent(client, now)
            return self.window_s - (now - times[0]) if len(times) >= self.limit else 0.0

    def record(self, client: str) -> None:
        with self._lock:
            now = time.monotonic()
            self._recent(client, now).append(now)


class Guard:
    """ASGI middleware: refuses unexpected Host headers and throttles failed logins."""

    def __init__(
        self,
        app: ASGIApp,
        allowed_hosts: Iterable[str] | None = None,
        failures: FailedLogins | None = None,
    ) -> None:
        self.app = app
        self.allowed = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}
        self.failures = failures or FailedLogins()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        host = host_name(headers.get(b"host", b"").decode("latin-1"))
        if self.allowed is not None and host not in self.allowed:
            await PlainTextResponse(
                "this server answers only requests addressed to "
                f"{', '.join(sorted(self.allowed))}: start it with --allowed-hosts to add a name",
                status_code=400,
            )(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        logging_in = scope["path"].rstrip("/").endswith("/login") and scope["method"] == "POST"
        if not (logging_in or b"authorization" in headers):
            await self.app(scope, receive, send)
            return
        wait_s = self.failures.blocked_for(client)
        if wait_s > 0:
            await PlainTextResponse(
                f"too many failed logins from this address: try again in {wait_s:.0f} s",
                status_code=429,
                headers={"Retry-After": str(int(wait_s) + 1)},
            )(scope, receive, send)
            return

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (400, 401):
                self.failures.record(client)
                log.warning("failed login from %s to %s", printable(client), scope["path"])
            await send(message)

        await self.app(scope, receive, watch)
