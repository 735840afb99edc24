"""Helpers run in child processes by the crash and concurrency tests."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from rag.config import Settings
from rag.embedding.fake import HashingEmbedder
from rag.index.build import refresh
from rag.types import Vectors


class SlowEmbedder(HashingEmbedder):
    """Sleeps per batch and logs when it works, so a test can kill it mid-embedding."""

    def __init__(self, log_path: Path, delay: float) -> None:
        super().__init__()
        self.log_path = log_path
        self.delay = delay

    def embed_documents(self, texts: list[str]) -> Vectors:
        with self.log_path.open("a") as fh:
            fh.write(f"start {time.time()}\n")
        time.sleep(self.delay)
        out = super().embed_documents(texts)
        with self.log_path.open("a") as fh:
            fh.write(f"end {time.time()}\n")
        return out


def main(seeds: str, index: str, log_path: str, delay: str) -> None:
    settings = Settings(seeds_dir=Path(seeds), index_dir=Path(index), batch_size=1)
    _, report = refresh(settings, SlowEmbedder(Path(log_path), float(delay)))
    print(report.chunks_total, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:5])
