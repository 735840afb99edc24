"""The `rag` command: index, ask, eval, serve, mcp.

Owns exit codes and logging set-up (usage errors exit 2, runtime errors exit 1 with one
line naming the fix); `rag.cli.parser` holds the arguments, `rag.cli.commands` the work
of each subcommand, done by the library.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from rag.cli.commands import (
    _settings,
    cmd_ask,
    cmd_eval,
    cmd_index,
    cmd_mcp,
    cmd_serve,
)
from rag.cli.parser import AUTH_ENV, PG_URL_ENV, build_parser, parse_auth
from rag.errors import RagError

__all__ = ["AUTH_ENV", "PG_URL_ENV", "_settings", "build_parser", "main", "parse_auth"]

COMMANDS = {
    "index": cmd_index,
    "ask": cmd_ask,
    "eval": cmd_eval,
    "serve": cmd_serve,
    "mcp": cmd_mcp,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on usage errors
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        for noisy in ("faiss", "httpx", "sentence_transformers", "transformers"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        return COMMANDS[args.command](args)
    except RagError as exc:
        print(f"rag: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rag: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
