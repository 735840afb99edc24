"""What each `rag` subcommand does with its parsed arguments; the only module that prints."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

from rag.cli.parser import AUTH_ENV, PG_URL_ENV
from rag.config import Settings
from rag.errors import RagError
from rag.text.display import isolated, printable
from rag.types import IndexReport

log = logging.getLogger("rag")


def _settings(args: argparse.Namespace) -> Settings:
    device: Any = getattr(args, "device", "cpu")  # `index`, `serve` and `mcp` take --device
    settings = Settings(
        seeds_dir=args.seeds,
        index_dir=args.index,
        device=device,
        store=args.store,
        # The environment's URL serves --store pgvector only; an explicit --pg-url with
        # the folder store is refused by Settings (it would be ignored).
        pg_url=args.pg_url or (os.environ.get(PG_URL_ENV) if args.store == "pgvector" else None),
        pg_schema=args.pg_schema,
        read_only=getattr(args, "read_only", False),  # `ask` and `serve` take --read-only
        seeds_check=args.seeds_check,
        follow_external_links=args.follow_external_links,
    )
    if getattr(args, "backend", None) is not None:
        print("rag: --backend is deprecated: use --runtime", file=sys.stderr)
        if args.runtime is None:
            args.runtime = args.backend
    chosen = {  # None: the Settings default (`eval` takes none of them)
        name: value
        for name in ("runtime", "model_pass", "reader")
        if (value := getattr(args, name, None)) is not None
    }
    return settings.with_(**chosen)


def _progress_bar(enabled: bool) -> tuple[Any, Any]:
    if not enabled:
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=0, unit="text", desc="embedding", file=sys.stderr, leave=False)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return bar, update


def cmd_index(args: argparse.Namespace) -> int:
    from rag.api import Index

    index = Index(_settings(args))
    bar, update = _progress_bar(not args.json and sys.stderr.isatty())
    try:
        report = index.refresh(rebuild=args.rebuild, progress=update)
    finally:
        if bar is not None:
            bar.close()
    _print_report(report, args, index.store.location)
    if args.watch:
        if args.interval <= 0:
            raise RagError(f"--interval must be > 0 seconds, not {args.interval}")
        print(f"watching {args.seeds} (Ctrl-C to stop)", file=sys.stderr, flush=True)
        index.watch(lambda r: _print_report(r, args, index.store.location), interval=args.interval)
    return 0


def _print_report(report: IndexReport, args: argparse.Namespace, where: str) -> None:
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False), flush=True)
        return
    print(
        f"{report.documents} documents, {report.chunks_total} chunks in {where} "
        f"({report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
        f"{report.deleted} deleted; {report.chunks_embedded} chunks embedded "
        f"in {report.seconds:.1f}s)"
    )
    if report.full_rebuild_reason:
        print(f"full rebuild: {report.full_rebuild_reason}")
    for name in report.skipped:
        print(f"skipped: {name}", file=sys.stderr)
    sys.stdout.flush()


def cmd_ask(args: argparse.Namespace) -> int:
    from rag.api import Index

    result = Index(_settings(args)).answer(args.question)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
        return 0
    print(result.text)
    if result.citations:
        print()
    for n, c in enumerate(result.citations, 1):
        page = f" p. {c.page_label or c.page}" if c.page is not None else ""
        name = isolated(printable(c.source))
        print(f"[{n}] {name}:{c.start}-{c.end}{page} (score {c.score:.3f})")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning(
            "binding %s: the chat page is reachable from other machines%s",
            args.host,
            "; the login travels in clear text unless a TLS proxy is in front"
            if args.auth
            else f" and needs no login: pass --auth USER:PASS or set ${AUTH_ENV}",
        )
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from rag.api import Index

    index = Index(_settings(args))
    if args.read_only:
        status = index.status()
        print(
            f"index ready (read-only): {status.documents} documents, {status.chunks} chunks",
            file=sys.stderr,
        )
    else:  # built or refreshed first; a refresh that cannot be written is only warned about
        stored = index.current()
        print(
            f"index ready: {len(stored.sources)} documents, {len(stored.chunks)} chunks",
            file=sys.stderr,
        )
    from ui.app import launch  # the CLI is an edge: it may start the app, the library may not

    extra: dict[str, Any] = {"auth": args.auth} if args.auth else {}
    if args.allow_delete:
        extra["allow_delete"] = True
    if args.allowed_hosts:
        extra["allowed_hosts"] = args.allowed_hosts
    if args.mcp:
        extra["mcp"] = True
        print(f"MCP tools at http://{args.host}:{args.port}/mcp/", file=sys.stderr)
    launch(index, host=args.host, port=args.port, **extra)
    return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    from rag.api import Index
    from rag.integrations.mcp import serve_stdio  # imports the `mcp` SDK

    serve_stdio(Index(_settings(args)))  # stdout carries the protocol: nothing else prints
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rag.evaluation.evaluate import run_cli

    if args.limit is not None and args.limit < 1:
        raise RagError(f"--limit must be >= 1, not {args.limit}")
    print(run_cli(args.dataset, args.limit, args.json, args.seeds, reader=args.reader))
    return 0
