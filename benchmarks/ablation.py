"""The quality levers one at a time: what each step from a plain pipeline adds.

Each set's documents are indexed once per chunk size; the query-time variants reuse
that index. Variants go from dense retrieval with single best sentences to the full
default (hybrid retrieval, windows of up to three sentences, the lexical features).
The answer model is off in every variant (``reader="off"``): these are the levers of the
quote score it builds on; `benchmarks.quality` measures it. Writes "## Quality levers,
one at a time" in RESULTS.md.

Example:
    .venv/bin/python -m benchmarks.ablation --limit 300
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import (
    add_eval_dir,
    add_output_options,
    argument_parser,
    missing,
    publish,
    stamp,
)
from rag.api import Index
from rag.config import Settings
from rag.embedding.torch import SentenceTransformerEmbedder, load_model
from rag.evaluation.evaluate import EvalReport, SeedragPipeline, ask, summarize
from rag.evaluation.sets import SAMPLE_SEED, EvalSet, load_eval_set, take, write_documents
from rag.query.quotes import DEFAULT_WEIGHTS, QuoteWeights

# The quote score of the variants that switch the lexical and shape features off.
PLAIN_SCORING = QuoteWeights(
    best=0.0,
    mean=0.55,
    chunk=0.30,
    lexical=0.15,
    answer_type=0.0,
    heading=0.0,
    anaphor=0.0,
    per_1000=0.0,
)
VARIANTS: list[tuple[str, dict[str, Any], QuoteWeights]] = [
    (
        "dense, best single sentence",
        {"retrieval": "dense", "max_quote_sentences": 1},
        PLAIN_SCORING,
    ),
    ("+ windows of up to 3 sentences", {"retrieval": "dense"}, PLAIN_SCORING),
    (
        "+ lexical features (IDF words, answer type, length, headings)",
        {"retrieval": "dense"},
        DEFAULT_WEIGHTS,
    ),
    ("+ hybrid retrieval (BM25 + dense) = default, answer model off", {}, DEFAULT_WEIGHTS),
]


def run_variant(eval_set: EvalSet, settings: Settings, weights: QuoteWeights) -> EvalReport:
    index = Index(settings, SentenceTransformerEmbedder(), weights=weights)
    index.current()  # built by the caller; this only loads it
    pipeline = SeedragPipeline(index)
    results = [ask(pipeline, q) for q in eval_set.questions]
    return summarize(eval_set, results)


def row(name: str, label: str, report: EvalReport) -> str:
    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}%"

    return (
        f"| {name} | {label} | {pct(report.hit_at_1)} | {pct(report.hit_at_3)} | "
        f"{pct(report.recall_at_5)} | {report.quote_chars_median or 0:.0f} | "
        f"{report.quotes_per_answer or 0:.2f} | {pct(report.wrong_refusals)} |"
    )


def evaluate_set(
    name: str, eval_set: EvalSet, sizes: list[int], emit: Callable[[str], None]
) -> None:
    with tempfile.TemporaryDirectory(prefix="rag-ablation-") as tmp:
        seeds = Path(tmp) / "seeds"
        write_documents(eval_set.documents, seeds)
        for size in sizes:
            base = Settings(
                seeds_dir=seeds,
                index_dir=Path(tmp) / f"index-{size}",
                chunk_size=size,
                chunk_overlap=size // 5,
                reader="off",
            )
            Index(base, SentenceTransformerEmbedder()).refresh()
            variants = VARIANTS if size == Settings().chunk_size else VARIANTS[-1:]
            for label, changes, weights in variants:
                label = label if size == Settings().chunk_size else f"default, chunks of {size}"
                emit(row(name, label, run_variant(eval_set, base.with_(**changes), weights)))


def main() -> int:
    parser = argument_parser(__doc__)
    add_eval_dir(parser)
    parser.add_argument("--sets", default="xquad_en,squadshifts_wiki")
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--chunk-sizes", default="800", help="e.g. 500,800,1200")
    add_output_options(parser, "Quality levers, one at a time")
    args = parser.parse_args()
    sets = args.sets.split(",")
    if missing(*(args.eval_dir / name for name in sets)):
        return 2
    load_model()
    started = time.perf_counter()
    lines = [
        "| set | variant | hit@1 | hit@3 | recall@5 | quote chars p50 | quotes per answer "
        "| wrong refusals |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]

    def emit(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    sizes = [int(s) for s in args.chunk_sizes.split(",")]
    for name in sets:
        eval_set = take(load_eval_set(args.eval_dir / name), args.limit)
        evaluate_set(name, eval_set, sizes, emit)
    body = (
        stamp() + f"\n{args.limit} questions of each set, drawn at random with seed "
        f"{SAMPLE_SEED} (not the first {args.limit}: those cluster in a few documents); each row "
        "adds one lever to the row above it. The whole run took "
        f"{(time.perf_counter() - started) / 60:.1f} min.\n\n" + "\n".join(lines) + "\n"
    )
    print(body)
    publish(body, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
