"""Security of `rag serve`: the login option, basic auth on the app, loopback binding, queue.

The app tests start Gradio on a free 127.0.0.1 port with the fake embedder.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

import argparse
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client
from gradio_client.exceptions import AuthenticationError

from rag.api import Index
from rag.cli import AUTH_ENV, build_parser, main, parse_auth
from rag.config import Settings
from rag.embedding.fake import HashingEmbedder
from tests.conftest import free_port
from ui import app, guard

USER, PASSWORD = "alice", "s3:cret"  # a ":" inside the password is allowed
FACTS = "ChatGPT came out in November 2022 and took the tech world by storm.\n"


@pytest.mark.parametrize(
    ("value", "pair"),
    [("alice:s3cret", ("alice", "s3cret")), ("a:b:c", ("a", "b:c")), ("bob: x ", ("bob", " x "))],
)
def test_parse_auth_splits_at_the_first_colon(value: str, pair: tuple[str, str]) -> None:
    assert parse_auth(value) == pair


@pytest.mark.parametrize("value", ["", "hunter2", "alice:", ":hunter2", "  :hunter2", ":"])
def test_parse_auth_rejects_malformed_values_without_echoing_them(value: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="expected USER:PASS") as exc:
        parse_auth(value)
    assert "hunter2" not in str(exc.value)


def test_auth_comes_from_the_flag_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(AUTH_ENV, raising=False)
    assert build_parser().parse_args(["serve"]).auth is None
    monkeypatch.setenv(AUTH_ENV, "env:pw")
    assert build_parser().parse_args(["serve"]).auth == ("env", "pw")
    assert build_parser().parse_args(["serve", "--auth", "cli:pw"]).auth == ("cli", "pw")


@pytest.mark.parametrize("source", ["flag", "env"])
def test_malformed_auth_is_a_usage_error(
    source: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(AUTH_ENV, raising=False)
    argv = ["serve", "--auth", "nopassword"] if source == "flag" else ["serve"]
    if source == "env":
        monkeypatch.setenv(AUTH_ENV, "nopassword")
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert "--auth" in err and AUTH_ENV in err and "USER:PASS" in err
    assert "nopassword" not in err


def _serve_with(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Run `rag serve` with a fake model and a fake launch; return what launch got."""
    got: dict[str, Any] = {}

    def fake_launch(index: Index, **kwargs: Any) -> None:
        got.update(kwargs)

    monkeypatch.setattr("rag.api.make_embedder", lambda settings: HashingEmbedder())
    monkeypatch.setattr(app, "launch", fake_launch)
    assert main(argv) == 0
    return got


def test_serve_passes_auth_to_the_app_and_binds_loopback_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(AUTH_ENV, raising=False)
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "facts.txt").write_text(FACTS, encoding="utf-8")
    folders = ["--seeds", str(tmp_path / "seeds"), "--index", str(tmp_path / "index")]
    got = _serve_with(["serve", *folders, "--auth", f"{USER}:{PASSWORD}"], monkeypatch)
    assert got == {"host": "127.0.0.1", "port": 7860, "auth": (USER, PASSWORD)}
    assert "auth" not in _serve_with(["serve", *folders], monkeypatch)
    with_mcp = _serve_with(
        ["serve", *folders, "--mcp", "--auth", f"{USER}:{PASSWORD}"], monkeypatch
    )
    assert with_mcp == {"host": "127.0.0.1", "port": 7860, "auth": (USER, PASSWORD), "mcp": True}


def test_exposed_host_without_login_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(AUTH_ENV, raising=False)
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "facts.txt").write_text(FACTS, encoding="utf-8")
    argv = ["serve", "--seeds", str(tmp_path / "seeds"), "--index", str(tmp_path / "i")]
    with caplog.at_level(logging.WARNING, logger="rag"):
        _serve_with([*argv, "--host", "0.0.0.0"], monkeypatch)
    assert "reachable from other machines" in caplog.text and "--auth" in caplog.text


def test_the_queue_bounds_answering_work() -> None:
    demo = app.build_demo(None)
    groups = {f.api_name: f.concurrency_id for f in demo.fns.values()}
    assert groups["chat"] == groups["ask"] == app.ANSWER_GROUP
    assert demo._queue.default_concurrency_limit == app.ANSWER_CONCURRENCY == 2
    assert demo._queue.max_size == app.QUEUE_MAX_SIZE


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    root = tmp_path_factory.mktemp("auth")
    (root / "seeds").mkdir()
    (root / "seeds" / "facts.txt").write_text(FACTS, encoding="utf-8")
    settings = Settings(seeds_dir=root / "seeds", index_dir=root / "index", min_score=0.0)
    index = Index(settings, HashingEmbedder())
    port = free_port()
    demo = app.launch(index, port=port, prevent_thread_lock=True, quiet=True, auth=(USER, PASSWORD))
    try:
        yield f"http://127.0.0.1:{port}", demo
    finally:
        demo.close()


def _status(url: str, data: bytes | None = None) -> int:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.app
def test_the_app_binds_loopback_by_default(guarded: tuple[str, Any]) -> None:
    _, demo = guarded
    assert demo.server_name == "127.0.0.1"


@pytest.mark.app
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/config", None),
        ("/gradio_api/info", None),
        ("/gradio_api/call/ask", json.dumps({"data": ["When?"]}).encode()),
    ],
)
def test_unauthenticated_requests_are_refused(
    guarded: tuple[str, Any], path: str, body: bytes | None
) -> None:
    url, _ = guarded
    assert _status(url + path, body) == 401


@pytest.mark.app
def test_a_client_with_the_login_gets_verbatim_answers(guarded: tuple[str, Any]) -> None:
    url, _ = guarded
    client = Client(url + "/", auth=(USER, PASSWORD), verbose=False)
    result = client.predict("When did ChatGPT come out?", api_name="/ask")
    assert result["error"] is None and result["citations"]
    c = result["citations"][0]
    assert FACTS[c["start"] : c["end"]] == c["quote"] and "November 2022" in c["quote"]


@pytest.mark.app
def test_a_client_without_the_login_is_turned_away(guarded: tuple[str, Any]) -> None:
    url, _ = guarded
    with pytest.raises(AuthenticationError, match="credentials were not provided"):
        Client(url + "/", verbose=False)
    with pytest.raises(ValueError, match="Could not login"):
        Client(url + "/", auth=(USER, "wrong"), verbose=False)


def _login(url: str, user: str, password: str, host: str | None = None) -> tuple[int, str]:
    body = urllib.parse.urlencode({"username": user, "password": password}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    request = urllib.request.Request(url + "/login", data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), ""
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Retry-After") or ""


@pytest.mark.app
def test_only_loopback_host_names_reach_a_loopback_server(guarded: tuple[str, Any]) -> None:
    url, _ = guarded
    port = url.rsplit(":", 1)[1]
    for host, expected in (
        (f"localhost:{port}", 200),
        (f"127.0.0.1:{port}", 200),
        ("evil.example", 400),  # a DNS-rebinding page reaches us under its own name
        (f"evil.example:{port}", 400),
    ):
        request = urllib.request.Request(url + "/", headers={"Host": host})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            status = exc.code
        assert status == expected, host


@pytest.mark.app
def test_failed_logins_are_throttled_per_client(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "facts.txt").write_text(FACTS, encoding="utf-8")
    settings = Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index")
    port = free_port()
    demo = app.launch(
        Index(settings, HashingEmbedder()),
        port=port,
        prevent_thread_lock=True,
        quiet=True,
        auth=(USER, PASSWORD),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        with caplog.at_level(logging.WARNING, logger="ui.guard"):
            assert _login(url, USER, PASSWORD)[0] == 200
            codes = [_login(url, USER, f"guess-{i}")[0] for i in range(guard.MAX_FAILED_LOGINS)]
            assert set(codes) == {400}
            status, retry_after = _login(url, USER, PASSWORD)  # even the right one, for now
            assert status == 429 and int(retry_after) > 0
        assert caplog.text.count("failed login from 127.0.0.1") == guard.MAX_FAILED_LOGINS
    finally:
        demo.close()


def test_a_throttled_client_may_try_again_once_the_window_has_passed() -> None:
    failures = guard.FailedLogins(limit=2, window_s=0.2)
    failures.record("10.0.0.1")
    assert failures.blocked_for("10.0.0.1") == 0
    failures.record("10.0.0.1")
    assert failures.blocked_for("10.0.0.1") > 0 and failures.blocked_for("10.0.0.2") == 0
    time.sleep(0.25)
    assert failures.blocked_for("10.0.0.1") == 0
