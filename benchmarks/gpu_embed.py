"""Embedding throughput of seedrag's chunks and sentences on a GPU vs this machine's CPU.

Three steps, so that the GPU machine needs only torch and sentence-transformers:
`prepare` writes the squadshifts_wiki chunk and sentence texts (as seedrag splits them)
and an fp16 copy of the bundled model into a folder; `measure` embeds them on a device and
writes a JSON result; `report` turns the results into the RESULTS.md section.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_EVAL = REPO.parent / "shared" / "eval"


def prepare(out: Path, eval_dir: Path) -> None:
    """Chunk and segment the corpus with seedrag's own code; save texts and an fp16 model."""
    sys.path.insert(0, str(REPO))
    from rag.config import Settings
    from rag.embedding.base import load_model
    from rag.index.build import SEGMENTER_VERSION  # noqa: F401  (documents which splitter made them)
    from rag.text.chunk import chunk_document
    from rag.text.segment import sentence_spans
    from rag.types import Document

    s = Settings()
    chunks: list[str] = []
    sentences: list[str] = []
    for line in (eval_dir / "squadshifts_wiki" / "passages.jsonl").read_text().splitlines():
        row = json.loads(line)
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
        "cpus": __import__("os").cpu_count(),
        "dtype": "fp16" if device == "cuda" else "fp32",
        "torch": torch.__version__,
        "rows": rows,
    }
    out.write_text(json.dumps(result, indent=2))


def report(results: list[Path]) -> None:
    """Write the RESULTS.md section from measured JSON files (GPU and CPU)."""
    sys.path.insert(0, str(REPO))
    from benchmarks.results import command_line, stamp, write_section

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
    body = (
        stamp(command_line()) + "\nsquadshifts_wiki (1,581 passages) split by seedrag "
        "(800/160 chunks and their sentences), all-MiniLM-L6-v2. GPU rows were measured "
        "on a lent machine with `measure --device cuda`, CPU rows here with "
        "`measure --device cpu`.\n\n" + "\n".join(lines) + "\n" + ratio
    )
    print(body)
    write_section("GPU embedding", body)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("out", type=Path)
    p.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL)
    p = sub.add_parser("measure")
    p.add_argument("folder", type=Path)
    p.add_argument("--device", default="cuda")
    p.add_argument("--batches", default="64,256,1024")
    p.add_argument("--limit", type=int, default=0, help="texts per kind (0: all)")
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("report")
    p.add_argument("results", type=Path, nargs="+")
    args = parser.parse_args()
    if args.step == "prepare":
        prepare(args.out, args.eval_dir)
    elif args.step == "measure":
        batches = [int(b) for b in args.batches.split(",")]
        measure(args.folder, args.device, batches, args.out, args.limit)
    else:
        report(args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
