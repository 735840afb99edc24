"""The `rag` command's arguments: subcommands, options, help text and examples."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from rag.config import DEVICES, MODEL_PASSES, READER_MODES, RUNTIMES, SEEDS_CHECKS, STORES, Settings

log = logging.getLogger("rag")

EPILOG_INDEX = """examples:
  rag index                       build or refresh ./index from ./seeds
  rag index --seeds docs --json   machine-readable report
  rag index --rebuild             re-embed everything from scratch
  rag index --watch               keep refreshing as files change (Ctrl-C stops)
  rag index --device cuda         embed on the GPU (falls back to the CPU if none)
  SEEDRAG_PG_URL=postgresql://app@db/rag rag index --store pgvector
                                  keep the index in PostgreSQL + pgvector"""
EPILOG_ASK = """examples:
  rag ask "Why did Musk leave OpenAI?"
  rag ask "When did ChatGPT come out?" --json"""
EPILOG_EVAL = """examples:
  rag eval ../shared/eval/xquad_en --limit 200
  rag eval ../shared/eval/seed_questions.jsonl --json"""
EPILOG_SERVE = """examples:
  rag serve                        http://127.0.0.1:7860
  rag serve --port 8000 --seeds docs
  SEEDRAG_AUTH=alice:s3cret rag serve --host 0.0.0.0   ask for a login (basic auth)
  rag serve --store pgvector --read-only   a replica: answers from the database only
  rag serve --mcp                  also serve MCP tools at http://127.0.0.1:7860/mcp/
  rag serve --allow-delete         the Documents panel may move files to index/trash"""
EPILOG_MCP = """examples:
  rag mcp --seeds ~/docs --index ~/docs-index   an MCP client starts this (stdio)
  rag mcp --store pgvector --read-only          answer from a shared database"""
AUTH_ENV = "SEEDRAG_AUTH"
PG_URL_ENV = "SEEDRAG_PG_URL"


def _folders(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--seeds",
        type=Path,
        default=Path("seeds"),
        metavar="DIR",
        help="folder of documents: .txt .md .html .pdf (default: ./seeds)",
    )
    p.add_argument(
        "--index",
        type=Path,
        default=Path("index"),
        metavar="DIR",
        help="folder where the index lives (default: ./index)",
    )
    p.add_argument(
        "--store",
        choices=STORES,
        default="faiss",
        help="where the index lives: faiss (the --index folder, default) or pgvector "
        "(a PostgreSQL database, shared by app replicas)",
    )
    p.add_argument(
        "--pg-url",
        default=None,
        metavar="URL",
        help=f"PostgreSQL URL for --store pgvector (default: ${PG_URL_ENV}, which keeps a "
        "password out of `ps`)",
    )
    p.add_argument(
        "--pg-schema",
        default="seedrag",
        metavar="NAME",
        help="database schema of the index's tables (default seedrag)",
    )
    p.add_argument(
        "--seeds-check",
        choices=SEEDS_CHECKS,
        default="notify",
        help="how changes to --seeds and --index are noticed: notify (the operating system "
        "reports them, default) or stat (every file's stat, each time: for a network file "
        "system written to from other machines)",
    )
    p.add_argument(
        "--follow-external-links",
        action="store_true",
        help="index files that --seeds links to outside itself (skipped by default, so a "
        "link to a private file never becomes quotable)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="rag", description="Answer questions from a folder of documents with verbatim quotes."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    raw = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "index", help="build or refresh the index", epilog=EPILOG_INDEX, formatter_class=raw
    )
    _folders(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--rebuild", action="store_true", help="ignore the old index, embed all")
    p.add_argument(
        "--watch",
        action="store_true",
        help="after indexing, keep polling the seeds and refresh on change",
    )
    p.add_argument(
        "--interval",
        type=float,
        default=1.0,
        metavar="S",
        help="seconds between polls with --watch (default 1)",
    )
    _add_device(p)
    _add_runtime(p)
    _add_model_pass(p)
    p = sub.add_parser("ask", help="answer one question", epilog=EPILOG_ASK, formatter_class=raw)
    p.add_argument("question", help="the question, in quotes")
    _folders(p)
    _add_read_only(p)
    _add_runtime(p)
    _add_model_pass(p)
    _add_reader(p)
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p = sub.add_parser(
        "eval",
        help="score answers on a QA set with gold answers",
        epilog=EPILOG_EVAL,
        formatter_class=raw,
    )
    p.add_argument("dataset", type=Path, help="a set folder (passages + questions) or a .jsonl")
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="a random sample of N questions (fixed seed; default: all)",
    )
    p.add_argument(
        "--seeds",
        type=Path,
        default=Path("seeds"),
        metavar="DIR",
        help="documents for seed_questions.jsonl (default: ./seeds)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    _add_reader(p)
    _add_serve(
        sub.add_parser("serve", help="run the chat page", epilog=EPILOG_SERVE, formatter_class=raw)
    )
    p = sub.add_parser(
        "mcp",
        help="serve the index to AI assistants (an MCP server on stdin/stdout)",
        epilog=EPILOG_MCP,
        formatter_class=raw,
    )
    _folders(p)
    _add_answering(p)
    return parser


def _add_read_only(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--read-only",
        action="store_true",
        help="serve the index as the store holds it: never scan --seeds or write the index "
        "(app replicas sharing one database that `rag index --watch` keeps up to date)",
    )


def _add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        choices=DEVICES,
        default="cpu",
        help="where the embedding model runs (default cpu; cuda falls back to cpu, with a "
        "warning, when no GPU is usable)",
    )


def _add_runtime(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default=None,
        help="what runs the embedding model: onnx-int8, onnx or torch (default: as the "
        "index was built; onnx-int8 for a new index, which falls back to torch, with a "
        "warning, where ONNX Runtime cannot run)",
    )
    # The old name of --runtime, kept for one release.
    p.add_argument("--backend", choices=RUNTIMES, default=None, help=argparse.SUPPRESS)


def _add_model_pass(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model-pass",
        choices=MODEL_PASSES,
        default=None,
        help="which texts indexing sends to the model (default: as the index was built; "
        "sentences for a new index; 'both' also embeds every chunk itself, about twice the "
        "model work); asking for another pass than the index's rebuilds it",
    )


def _add_reader(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--reader",
        choices=READER_MODES,
        default=None,
        help=f"how the answer model picks quotes and abstains (default {Settings().reader}; "
        "'off' picks quotes by similarity alone; 'rerank' and 'windows' use one half of it)",
    )


def _add_answering(p: argparse.ArgumentParser) -> None:
    """The options of a long-running process that answers (`serve`, `mcp`)."""
    _add_read_only(p)
    _add_device(p)
    _add_runtime(p)
    _add_model_pass(p)
    _add_reader(p)


def _add_serve(p: argparse.ArgumentParser) -> None:
    _folders(p)
    _add_answering(p)
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; 0.0.0.0 exposes it to the network)",
    )
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument(
        "--auth",
        type=parse_auth,
        default=os.environ.get(AUTH_ENV),  # argparse applies parse_auth to it too
        metavar="USER:PASS",
        help=f"require this login (default: ${AUTH_ENV}, which keeps the password out of `ps`)",
    )
    p.add_argument(
        "--mcp",
        action="store_true",
        help="also serve the MCP tools of `rag mcp` at /mcp/ (streamable HTTP), behind the "
        "same --auth (sent as HTTP basic auth)",
    )
    p.add_argument(
        "--allowed-hosts",
        type=lambda v: [h.strip() for h in v.split(",") if h.strip()],
        default=None,
        metavar="NAME[,NAME]",
        help="Host header names the server answers besides the loopback ones when bound to "
        "127.0.0.1 (a proxy's public name), or the only ones it answers on another address",
    )
    p.add_argument(
        "--allow-delete",
        action="store_true",
        help="let the page's Documents panel move documents out of --seeds into "
        "<index>/trash (always allowed with --auth; never with --read-only)",
    )


def parse_auth(value: str) -> tuple[str, str]:
    """``"user:pass"`` as ``("user", "pass")``; the password may contain ":".

    Raises:
        argparse.ArgumentTypeError: no ":", or an empty user or password (the
            message never repeats the value, which holds a password).

    Example:
        >>> parse_auth("alice:s3:cret")
        ('alice', 's3:cret')
    """
    user, sep, password = value.partition(":")
    if not sep or not user.strip() or not password:
        raise argparse.ArgumentTypeError(
            f"expected USER:PASS with a non-empty user and password (from --auth or "
            f"${AUTH_ENV}), e.g. alice:s3cret"
        )
    return user, password
