"""`rag mcp` with the fast fake embedder, run in a child process by tests/test_mcp.py.

The child is the real CLI and the real stdio server; only the embedding model is swapped
for `HashingEmbedder`, as the in-process CLI tests do.
"""

from __future__ import annotations

import sys

import rag.api
from rag.cli import main
from rag.embedding.fake import HashingEmbedder

if __name__ == "__main__":
    rag.api.make_embedder = lambda settings: HashingEmbedder()  # type: ignore[assignment]
    sys.exit(main(["mcp", *sys.argv[1:]]))
