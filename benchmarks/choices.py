"""Choices of the answer path that act after the decision to answer, each turned off
in turn against the defaults, on the answer model's validation split.

- `Settings.reader_bridge`: a quote grows over the one sentence between it and the window
  that would be quoted next, when the model finds that window at least ``reader_bridge``
  as likely to hold the answer (`rag.query.quotes.select`). The first k quotes' text only
  grows, so hit@k cannot fall; the cost is quote length.
- `Settings.reader_widen`: an answer whose best chunk is under ``reader_widen`` likely to
  answer also reads the chunks a retrieval of twice ``top_k`` adds; their quotes compete
  for the places after the first quote (`rag.query.reading`). hit@1 cannot change; the
  cost is a second read for the unsure answers.

The sets are the held-out part of the answer model's training data, so they are
development sets, never the reporting sets: SQuADShifts-Wikipedia's validation articles
(`training.data.split`, as ``training.train`` draws them), indexed on their own, and the
held-out products of the ``--extra`` review file (`training.data.held_out`), asked of an
index of all its reviews. Writes "## Answer-path choices on the validation split" in
RESULTS.md.

Example (``--extra`` names the review file training took, where it is not in the default
place, ../shared/eval/squadshifts/):
    .venv/bin/python -m benchmarks.choices --extra amazon_reviews_v1.0.json
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from benchmarks.common import (
    EVAL_DIR,
    add_output_options,
    argument_parser,
    missing,
    publish,
    stamp,
)
from rag.api import Index
from rag.config import Settings
from rag.embedding.factory import make_embedder
from rag.evaluation.metrics import hit_at_k
from rag.evaluation.sets import write_documents
from rag.types import Citation
from training.data import SEED, VALIDATION_SHARE, Question, held_out, load, load_squad, split

TITLE = "Answer-path choices on the validation split"
# (label, the change from the defaults) for each row after the defaults'.
VARIANTS: tuple[tuple[str, dict[str, object]], ...] = (
    ("bridge off (reader_bridge None)", {"reader_bridge": None}),
    ("wider read off (reader_widen None)", {"reader_widen": None}),
)


def dev_sets(data: Path, extra: Path) -> Iterator[tuple[str, dict[str, str], list[Question]]]:
    """(name, documents to index, questions) for each development set."""
    wiki = load(data)
    _, titles = split(wiki, VALIDATION_SHARE, SEED)
    docs = {d: t for d, t in wiki.texts.items() if wiki.titles[d] in titles}
    yield "Wikipedia validation articles", docs, [q for q in wiki.questions if q.doc in docs]
    reviews = load_squad(extra, "extra0")  # the prefix training gives --extra's first
    held = held_out([reviews], VALIDATION_SHARE, SEED)
    asked = [q for q in reviews.questions if reviews.titles[q.doc] in held]
    yield f"{extra.name}, held-out products", dict(reviews.texts), asked


def row(
    name: str, label: str, answers: list[tuple[Citation, ...]], qs: list[Question], changed: str
) -> str:
    """One table row: hit@1, hit@3 and quote lengths of ``answers`` to ``qs``."""
    hits = [
        (hit_at_k(c, f"{q.doc}.txt", q.gold, 1), hit_at_k(c, f"{q.doc}.txt", q.gold, 3))
        for c, q in zip(answers, qs, strict=True)
    ]
    every = [len(c.quote) for cs in answers for c in cs]
    first = [len(cs[0].quote) for cs in answers if cs]
    n = len(qs)
    return (
        f"| {name} | {label} | {n} | {sum(h for h, _ in hits) / n:.1%} | "
        f"{sum(h for _, h in hits) / n:.1%} | {statistics.median(every):g} | "
        f"{statistics.median(first):g} | {statistics.mean(every):.1f} | {changed} |"
    )


def measure(name: str, docs: dict[str, str], qs: list[Question], root: Path) -> list[str]:
    """The defaults' row, then one per `VARIANTS` entry, on one index of ``docs``."""
    seeds = root / "seeds"
    write_documents({f"{doc}.txt": text for doc, text in docs.items()}, seeds)
    defaults = Settings(seeds_dir=seeds, index_dir=root / "index")
    idx = Index(defaults, make_embedder(defaults))
    idx.refresh()
    base = [idx.answer(q.text).citations for q in qs]
    lines = [row(name, "defaults", base, qs, "")]
    for label, changes in VARIANTS:
        variant = Index(defaults.with_(**changes), idx.embedder)
        answers = [variant.answer(q.text).citations for q in qs]
        changed = sum(
            [(c.start, c.end) for c in a] != [(c.start, c.end) for c in b]
            for a, b in zip(base, answers, strict=True)
        )
        print(f"{name}, {label}: {changed} of {len(qs)} answers differ", file=sys.stderr)
        lines.append(row(name, label, answers, qs, f"{changed / len(qs):.1%}"))
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    p = argument_parser(__doc__)
    p.add_argument("--data", type=Path, default=EVAL_DIR / "squadshifts_wiki")
    p.add_argument(
        "--extra",
        type=Path,
        default=EVAL_DIR / "squadshifts" / "amazon_reviews_v1.0.json",
        help="the review file training took as --extra (SQuAD format)",
    )
    add_output_options(p, TITLE)
    args = p.parse_args(argv)
    if missing(args.data, args.extra):
        return 2
    started = time.perf_counter()
    lines = [
        "| set | answer path | questions | hit@1 | hit@3 | quote chars p50 | first quote chars p50 "
        "| quote chars mean | answers differ |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory(prefix="rag-choices-") as tmp:
        for i, (name, docs, qs) in enumerate(dev_sets(args.data, args.extra)):
            lines += measure(name, docs, qs, Path(tmp) / str(i))
    table = "\n".join(lines)
    print(table)
    minutes = (time.perf_counter() - started) / 60
    body = f"""{stamp()}
Every question of each development set ({minutes:.1f} min). Each row after "defaults"
turns one choice off; the defaults (`Settings`) were each adopted by a rule written before
it was measured (docs/answer-model.md). These sets are the answer model's validation split
(training data held out of training), not reporting sets: `benchmarks.quality` reports
the reporting sets with the defaults. "answers differ": share of the answers whose quotes
differ from the defaults'.

{table}
"""
    publish(body, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
