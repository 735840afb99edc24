"""Embedding backends side by side: torch, ONNX fp32 and ONNX int8 (`Settings.runtime`).

Three parts (`--parts quality,speed,cold`): answer quality on the first questions of xquad_en
(hit@1/hit@3 must stay within 0.01 of torch), embedding speed per CPU-second on chunks of
squadshifts_wiki, and cold start (a fresh process answering one question). Writes its tables
under "## Embedding backends" in RESULTS.md.

Example:
    .venv/bin/python -m benchmarks.backends --limit 300 --speed-chunks 480
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch or faiss load OpenMP
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import logging
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import (
    REPO,
    add_eval_dir,
    add_output_options,
    argument_parser,
    missing,
    publish,
    read_jsonl,
    run_child,
    stamp,
)
from rag.config import RUNTIMES, Settings
from rag.embedding.base import model_folder
from rag.embedding.factory import make_embedder
from rag.embedding.onnx import MAX_TOKENS
from rag.embedding.pooling import tokenizer
from rag.evaluation.evaluate import EvalReport, evaluate_set, format_table, report_row, seedrag
from rag.evaluation.sets import load_eval_set, take
from rag.text.chunk import chunk_document
from rag.types import Citation, Document

QUESTION = "Why did Musk leave OpenAI?"
CHILD = """import sys
from pathlib import Path
from rag.api import Index
from rag.config import Settings
from rag.embedding.factory import make_embedder
s = Settings(seeds_dir=Path(sys.argv[1]), index_dir=Path(sys.argv[2]), runtime=sys.argv[3])
a = Index(s, make_embedder(s)).answer(sys.argv[4])
print(len(a.citations), 'torch' in sys.modules, 'sentence_transformers' in sys.modules)
"""


NOTES = """\
- **Reading it.** `Δhit@k` is the backend's hit@k minus the first backend's (the budget is
  0.01). `same 1st quote` compares the first citation's source and offsets; `same retrieved
  docs` the ordered sources of the retrieved chunks. Speed is per CPU-second of this process
  (user + system, both threads), so load from other processes inflates it less than wall
  time; backends alternate rounds (forward, then backward) so drifting load hits each alike.
- **int8 recipe.** `onnxruntime.quantization.quantize_dynamic` on the MatMul weights only,
  per channel, signed int8: per-tensor scales (ONNX Runtime's default) or also quantising
  the word-embedding Gather pull the vectors further from the fp32 model's.
- **Default.** `Settings.runtime` left open builds new indexes with "onnx-int8" when the
  table above keeps its hit@1 and hit@3 within the 0.01 budget of torch's and it embeds
  more chunks per CPU-second; a fresh process then answers without importing torch or
  sentence-transformers. The ONNX file is exported from the bundled weights on first use
  (needs torch) and cached under `~/.cache/seedrag/onnx/` (`Settings.onnx_cache_dir`),
  keyed by the weights' size and mtime, the recipe and the torch/onnx/onnxruntime
  versions; where ONNX Runtime cannot run and the runtime was left open, seedrag logs why
  and uses torch. `--runtime torch` keeps the exact sentence-transformers vectors; asking
  for another runtime than the index's rebuilds it.
"""


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (all threads)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# ---- quality -------------------------------------------------------------------------------


def _first(citations: tuple[Citation, ...]) -> tuple[str, int, int] | None:
    return (citations[0].source, citations[0].start, citations[0].end) if citations else None


def quality(args: argparse.Namespace) -> str:
    """Each backend answers the same questions over the same documents; deltas vs torch."""
    eval_set = take(load_eval_set(args.eval_dir / args.set), args.limit)
    reports: dict[str, EvalReport] = {}
    for backend in args.backends:
        print(f"quality: {backend} on {eval_set.name}", file=sys.stderr, flush=True)
        settings = Settings(runtime=backend)
        reports[backend] = evaluate_set(eval_set, seedrag(settings, make_embedder(settings)))
    ref = reports[args.backends[0]]
    rows = []
    for backend, r in reports.items():
        pairs = list(zip(r.results, ref.results, strict=True))
        same_quote = [_first(a.citations) == _first(b.citations) for a, b in pairs]
        same_docs = [a.retrieved == b.retrieved for a, b in pairs]
        rows.append(
            {
                "backend": backend,
                **report_row(r),
                "Δhit@1": f"{(r.hit_at_1 or 0) - (ref.hit_at_1 or 0):+.3f}",
                "Δhit@3": f"{(r.hit_at_3 or 0) - (ref.hit_at_3 or 0):+.3f}",
                f"same 1st quote as {args.backends[0]}": f"{np.mean(same_quote):.1%}",
                "same retrieved docs": f"{np.mean(same_docs):.1%}",
            }
        )
    return f"**Answer quality, first {args.limit} questions of {args.set}**\n\n" + format_table(
        rows
    )


# ---- speed ---------------------------------------------------------------------------------


def speed_texts(args: argparse.Namespace) -> list[str]:
    """seedrag's own chunks (default settings) of the first squadshifts_wiki passages."""
    s = Settings()
    texts: list[str] = []
    for row in read_jsonl(args.eval_dir / "squadshifts_wiki" / "passages.jsonl"):
        doc = Document(f"{row['passage_id']}.txt", row["text"], "h", len(row["text"]), 0)
        texts += [c.text for c in chunk_document(doc, s.chunk_size, s.chunk_overlap)]
        if len(texts) >= args.speed_chunks:
            return texts[: args.speed_chunks]
    return texts


def speed(args: argparse.Namespace) -> str:
    """Chunks and tokens per CPU-second and per wall second, in alternating rounds."""
    texts = speed_texts(args)
    tok = tokenizer(model_folder(Settings().model), MAX_TOKENS)
    tokens = sum(sum(e.attention_mask) for e in tok.encode_batch(texts))  # padding excluded
    embedders = {b: make_embedder(Settings(runtime=b)) for b in args.backends}
    ref = embedders[args.backends[0]].embed_documents(texts)  # also loads every model first
    cos = {b: (e.embed_documents(texts[:64]) * ref[:64]).sum(1) for b, e in embedders.items()}
    cpu = dict.fromkeys(args.backends, 0.0)
    wall = dict.fromkeys(args.backends, 0.0)
    for r in range(args.rounds):  # forward then backward: load drifts hit everyone alike
        for b in args.backends if r % 2 == 0 else args.backends[::-1]:
            print(f"speed: {b}, round {r + 1}", file=sys.stderr, flush=True)
            c0, w0 = cpu_seconds(), time.perf_counter()
            embedders[b].embed_documents(texts)
            cpu[b] += cpu_seconds() - c0
            wall[b] += time.perf_counter() - w0
    n, first = len(texts) * args.rounds, args.backends[0]
    lines = [
        f"**Embedding speed, {len(texts)} chunks of squadshifts_wiki ({tokens / len(texts):.0f} "
        f"tokens on average), {args.rounds} rounds, batch {Settings().batch_size}**",
        "",
        "| backend | chunks per CPU-s | tokens per CPU-s | chunks/s (wall) | per CPU-s vs "
        f"{first} | cosine to {first}: mean / min (64 chunks) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for b in args.backends:
        lines.append(
            f"| {b} | {n / cpu[b]:.1f} | {tokens * args.rounds / cpu[b]:.0f} | "
            f"{n / wall[b]:.1f} | {cpu[first] / cpu[b]:.2f}× | "
            f"{cos[b].mean():.4f} / {cos[b].min():.4f} |"
        )
    return "\n".join(lines)


# ---- cold start ----------------------------------------------------------------------------


def cold(args: argparse.Namespace, root: Path) -> str:
    """Fresh processes answering one question from a prebuilt seed index, per backend."""
    floors = {
        "torch": "import torch, sentence_transformers",
        "onnx": "import onnxruntime, tokenizers",
    }
    rows = []
    for backend in args.backends:
        settings = Settings(seeds_dir=REPO / "seeds", index_dir=root / backend, runtime=backend)
        from rag.api import Index

        Index(settings, make_embedder(settings)).refresh()  # and export the ONNX file if needed
        argv = [str(settings.seeds_dir), str(settings.index_dir), backend, QUESTION]
        runs = [run_child(CHILD, *argv) for _ in range(args.runs)]
        floor_code = floors["torch" if backend == "torch" else "onnx"]
        floor = [run_child(floor_code).seconds for _ in range(args.runs)]
        cites, torch_loaded, st_loaded = runs[0].out.split()
        rss = max(r.peak_mb for r in runs)
        rows.append(
            f"| {backend} | {statistics.median(r.seconds for r in runs):.1f} | "
            f"`{floor_code}`: {statistics.median(floor):.1f} | {rss:.0f} | "
            f"{torch_loaded} / {st_loaded} | {cites} |"
        )
    return "\n".join(
        [
            f"**Cold start: a fresh process answering one question on the seed index "
            f"(median of {args.runs}, ONNX file already cached)**",
            "",
            "| backend | process start to answer, s | floor: imports only, s | peak RSS MB "
            "| torch / sentence_transformers imported | citations |",
            "|---|---:|---:|---:|---|---:|",
            *rows,
        ]
    )


# ---- main ----------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    p = argument_parser(__doc__)
    p.add_argument("--parts", default="quality,speed,cold", help="quality, speed, cold")
    p.add_argument("--backends", default=",".join(RUNTIMES), help="the first is the reference")
    p.add_argument("--set", default="xquad_en", help="question set for the quality part")
    p.add_argument("--limit", type=int, default=300, help="first N questions (quality)")
    p.add_argument("--speed-chunks", type=int, default=480, metavar="N")
    p.add_argument("--rounds", type=int, default=2, help="speed rounds per backend")
    p.add_argument("--runs", type=int, default=3, help="cold-start runs (median)")
    add_eval_dir(p)
    p.add_argument("--load-note", default="", help="what else ran on the machine")
    add_output_options(p, "Embedding backends")
    args = p.parse_args()
    args.parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    args.backends = [x.strip() for x in args.backends.split(",") if x.strip()]
    bad = [b for b in args.backends if b not in RUNTIMES]
    if bad:
        p.error(f"unknown backend {bad[0]!r}: choose from {', '.join(RUNTIMES)}")
    return args


def main() -> int:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if missing(args.eval_dir / args.set, args.eval_dir / "squadshifts_wiki"):
        return 2
    tables = []
    with tempfile.TemporaryDirectory(prefix="seedrag-backends-") as tmp:
        for part in args.parts:
            started = time.perf_counter()
            table = {"quality": quality, "speed": speed}.get(part)
            text = table(args) if table else cold(args, Path(tmp))
            minutes = (time.perf_counter() - started) / 60
            tables.append(f"{text}\n\n({part}: {minutes:.1f} min)")
            print(tables[-1], flush=True)
    note = f"\n{args.load_note}\n" if args.load_note else ""
    body = stamp() + note + "\n" + "\n\n".join(tables) + "\n\n" + NOTES
    publish(body, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
