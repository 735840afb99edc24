"""Incremental refresh vs full build, with the real model, on 100 seed files.

The files are the first ``--files`` SQuADShifts Wikipedia passages (in ``--eval-dir``).
Edits one file, refreshes, and reports what was re-embedded and the time ratio, under
"## Incremental refresh" in RESULTS.md.

Example:
    .venv/bin/python -m benchmarks.refresh --files 100
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

from benchmarks.common import (
    add_eval_dir,
    add_output_options,
    argument_parser,
    missing,
    publish,
    read_jsonl,
    stamp,
    write_passages,
)
from rag.config import Settings
from rag.embedding.torch import SentenceTransformerEmbedder, load_model
from rag.index.build import refresh


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--files", type=int, default=100)
    add_eval_dir(parser)
    add_output_options(parser, "Incremental refresh")
    args = parser.parse_args()
    passages = args.eval_dir / "squadshifts_wiki" / "passages.jsonl"
    if missing(passages):
        return 2
    load_model()  # model load is not part of either timing
    embedder = SentenceTransformerEmbedder()
    root = Path(tempfile.mkdtemp(prefix="seedrag-refresh-"))
    try:
        files = write_passages(islice(read_jsonl(passages), args.files), root / "seeds")
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
        file_chunks = stored.sources[target.name].chunks
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
        stamp() + "\n" + "\n".join(rows) + "\n\n"
        f"Refresh / full build time: **{inc_s / full_s:.3f}**. The edited file has "
        f"{file_chunks} chunks and the refresh embedded {inc.chunks_embedded}: that file's "
        f"chunks and nothing else. Both timings include embedding the sentences used for "
        f"quote selection.\n"
    )
    print(body)
    publish(body, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
