r"""Embedding throughput of seedrag's chunks and sentences on a GPU vs this machine's CPU.

Three steps, so that the GPU machine needs only torch and sentence-transformers:
`prepare` writes the squadshifts_wiki chunk and sentence texts (as seedrag splits them)
and an fp16 copy of the bundled model into a folder; `measure` embeds them on a device and
writes a JSON result; `report` turns the results into "## GPU embedding" in RESULTS.md.
`measure` imports neither seedrag nor its dependencies: copy the repository (or just
benchmarks/) and the prepared folder to the GPU machine and run it from there.

Example:
    .venv/bin/python -m benchmarks.gpu_embed prepare /tmp/gpu-embed
    python -m benchmarks.gpu_embed measure /tmp/gpu-embed --device cuda --out gpu.json
    .venv/bin/python -m benchmarks.gpu_embed measure /tmp/gpu-embed --device cpu \
        --batches 32,128 --limit 500 --out cpu.json
    .venv/bin/python -m benchmarks.gpu_embed report gpu.json cpu.json
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    add_eval_dir,
    add_output_options,
    argument_parser,
    missing,
    publish,
    read_jsonl,
    stamp,
)


def prepare(out: Path, eval_dir: Path) -> None:
    """Chunk and segment the corpus with seedrag's own code; save texts and an fp16 model."""
    from rag.config import Settings
    from rag.embedding.torch import load_model
    from rag.index.build import SEGMENTER_VERSION  # noqa: F401  (documents which splitter made them)
    from rag.text.chunk import chunk_document
    from rag.text.segment import sentence_spans
    from rag.types import Document

    s = Settings()
    chunks: list[str] = []
    sentences: list[str] = []
    for row in read_jsonl(eval_dir / "squadshifts_wiki" / "passages.jsonl"):
        doc = Document(row["passage_id"], row["text"], "", 0, 0)
        chunks += [c.text for c in chunk_document(doc, s.chunk_size, s.chunk_overlap)]
        sentences += [doc.text[a:b] for a, b in sentence_spans(doc.text)]
    out.mkdir(parents=True, exist_ok=True)
    (out / "texts.json").write_text(json.dumps({"chunks": chunks, "sentences": sentences}))
    model = load_model()
    model.half().save(str(out / "model"))
    print(f"{len(chunks)} chunks, {len(sentences)} sentences -> {out}")


def _timed(model: Any, texts: list[str], batch: int, device: str) -> float:
    import torch

    model.encode(texts[: batch * 2], batch_size=batch, normalize_embeddings=True)  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    model.encode(texts, batch_size=batch, normalize_embeddings=True, show_progress_bar=False)
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


def measure(folder: Path, device: str, batches: list[int], out: Path, limit: int) -> None:
    """Embed the prepared texts on ``device`` at each batch size; write a JSON result."""
    import torch
    from sentence_transformers import SentenceTransformer

    texts = json.loads((folder / "texts.json").read_text())
    model = SentenceTransformer(str(folder / "model"), device=device)
    model = model.half() if device == "cuda" else model.float()
    rows = []
    for kind in ("chunks", "sentences"):
        items = texts[kind][:limit] if limit else texts[kind]
        for batch in batches:
            seconds = _timed(model, items, batch, device)
            rows.append(
                {
                    "kind": kind,
                    "texts": len(items),
                    "batch": batch,
                    "seconds": seconds,
                    "per_s": len(items) / seconds,
                }
            )
            print(rows[-1], flush=True)
    card = torch.cuda.get_device_name(0) if device == "cuda" else platform.processor()
    result = {
        "device": device,
        "card": card,
        "cpus": os.cpu_count(),
        "dtype": "fp16" if device == "cuda" else "fp32",
        "torch": torch.__version__,
        "rows": rows,
    }
    out.write_text(json.dumps(result, indent=2))


def report(results: list[Path]) -> str:
    """The RESULTS.md section from measured JSON files (GPU and CPU)."""
    data = [json.loads(p.read_text()) for p in results]
    lines = [
        "| device | precision | texts | kind | batch | seconds | texts/s |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    best: dict[str, float] = {}
    for d in data:
        name = f"{d['device']}: {d['card'] or 'CPU'} ({d['cpus']} cores)"
        for r in d["rows"]:
            lines.append(
                f"| {name} | {d['dtype']} | {r['texts']} | {r['kind']} | {r['batch']} "
                f"| {r['seconds']:.2f} | {r['per_s']:.0f} |"
            )
            if r["kind"] == "chunks":
                best[d["device"]] = max(best.get(d["device"], 0.0), r["per_s"])
    ratio = (
        f"\nBest chunks/s, GPU / this machine's CPU: **{best['cuda'] / best['cpu']:.0f}x**.\n"
        if "cuda" in best and "cpu" in best
        else ""
    )
    return (
        stamp(", ".join(f"`{p.name}`" for p in results))
        + "\nsquadshifts_wiki (1,581 passages) split by seedrag "
        "(800/160 chunks and their sentences), all-MiniLM-L6-v2. GPU rows were measured "
        "on a lent machine with `measure --device cuda`, CPU rows here with "
        "`measure --device cpu`.\n\n" + "\n".join(lines) + "\n" + ratio
    )


def main() -> int:
    parser = argument_parser(__doc__)
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare", help="split the corpus and save texts and an fp16 model")
    p.add_argument("out", type=Path)
    add_eval_dir(p)
    p = sub.add_parser("measure", help="embed the prepared texts on one device")
    p.add_argument("folder", type=Path)
    p.add_argument("--device", default="cuda")
    p.add_argument("--batches", default="64,256,1024")
    p.add_argument("--limit", type=int, default=0, help="texts per kind (0: all)")
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("report", help="write the RESULTS.md section from measured JSON files")
    p.add_argument("measured", type=Path, nargs="+", help="JSON files written by measure")
    add_output_options(p, "GPU embedding")
    args = parser.parse_args()
    if args.step == "prepare":
        if missing(args.eval_dir / "squadshifts_wiki"):
            return 2
        prepare(args.out, args.eval_dir)
    elif args.step == "measure":
        batches = [int(b) for b in args.batches.split(",")]
        measure(args.folder, args.device, batches, args.out, args.limit)
    else:
        body = report(args.measured)
        print(body)
        publish(body, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
