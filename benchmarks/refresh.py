"""Incremental refresh vs full build, with the real model, on 100 seed files.

The files are the first 100 SQuADShifts Wikipedia passages (../shared/eval).
Edits one file, refreshes, and reports what was re-embedded and the time ratio.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.results import command_line, stamp, write_section
from rag.config import Settings
from rag.embedding.base import SentenceTransformerEmbedder, load_model
from rag.index.build import refresh

DEFAULT_EVAL = Path(__file__).resolve().parent.parent.parent / "shared" / "eval"


def write_corpus(seeds: Path, passages: Path, n: int) -> list[Path]:
    seeds.mkdir(parents=True)
    paths = []
    with passages.open(encoding="utf-8") as fh:
        for line in list(fh)[:n]:
            row = json.loads(line)
            path = seeds / f"{row['passage_id']}.txt"
            path.write_bytes(row["text"].encode("utf-8"))
            paths.append(path)
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    passages = args.eval_dir / "squadshifts_wiki" / "passages.jsonl"
    if not passages.exists():
        print(f"benchmark skipped: {passages} not found (pass --eval-dir)", file=sys.stderr)
        return 2
    load_model()  # model load is not part of either timing
    embedder = SentenceTransformerEmbedder()
    root = Path(tempfile.mkdtemp(prefix="seedrag-refresh-"))
    try:
        files = write_corpus(root / "seeds", passages, args.files)
        settings = Settings(seeds_dir=root / "seeds", index_dir=root / "index")
        t = time.perf_counter()
        _, full = refresh(settings, embedder)
        full_s = time.perf_counter() - t
        target = files[len(files) // 2]
        time.sleep(0.01)
        target.write_text(target.read_text() + "\nThis sentence was added by the benchmark.\n")
        t = time.perf_counter()
        stored, inc = refresh(settings, embedder)
        inc_s = time.perf_counter() - t
        file_chunks = stored.sources[target.name]["chunks"]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rows = [
        "| step | seconds | sources changed | chunks embedded | chunks total |",
        "|---|---:|---:|---:|---:|",
        f"| full build ({args.files} files) | {full_s:.2f} | {full.added} | "
        f"{full.chunks_embedded} | {full.chunks_total} |",
        f"| refresh after editing 1 file | {inc_s:.2f} | {inc.updated} | "
        f"{inc.chunks_embedded} | {inc.chunks_total} |",
    ]
    body = (
        stamp(command_line()) + "\n" + "\n".join(rows) + "\n\n"
        f"Refresh / full build time: **{inc_s / full_s:.3f}**. The edited file has "
        f"{file_chunks} chunks and the refresh embedded {inc.chunks_embedded}: that file's "
        f"chunks and nothing else. Both timings include embedding the sentences used for "
        f"quote selection.\n"
    )
    print(body)
    if not args.no_write:
        write_section("Incremental refresh", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
