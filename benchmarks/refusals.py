"""Abstention by the answer model: answered-when-answerable against refused-when-not.

For each reporting corpus, its own answerable questions are the positives; questions of
another set asked of it (they cannot be answered there) are the negatives. Each question's
confidence is the model's probability that the best retrieved chunk answers it
(`rag.query.reading.Readings.confidence`, what `Settings.reader_min_answer` is compared
with); the table sweeps that threshold and marks the default. The similarity rule of
``reader="off"`` is measured on the same questions in the same run.

The threshold was chosen on the answer model's validation split (SQuADShifts articles
held out of training, see rag/reader/weights/MODEL_CARD.md); these corpora never chose it.
Writes "## Abstention by the answer model" in RESULTS.md.

Example:
    .venv/bin/python -m benchmarks.refusals
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

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
from rag.embedding.factory import make_embedder
from rag.evaluation.sets import EvalSet, load_eval_set, write_documents
from rag.query.reading import read
from rag.query.sentences import SentenceFeatures
from rag.reader.model import load_reader

TITLE = "Abstention by the answer model"
THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
# (corpus, the set whose questions are foreign to it)
CASES = (("xquad_en", "covidqa_dev"), ("covidqa_dev", "xquad_en"))


def confidences(idx: Index, questions: Sequence[str]) -> tuple[list[float], list[bool]]:
    """The model's confidence for each question, and whether ``reader="off"`` answered it."""
    reader = load_reader()
    stored = idx.current()
    lookup = SentenceFeatures(stored, idx.settings.max_quote_sentences)
    off = Index(idx.settings.with_(reader="off"), idx.embedder)
    out, answered_off = [], []
    for q in questions:
        hits = idx.search(q)
        out.append(read(reader, stored, lookup, q, hits).confidence)
        answered_off.append(off.answer(q).answered)
    return out, answered_off


def rows_for(
    name: str, own: list[float], foreign: list[float], off: tuple[float, float]
) -> list[str]:
    default = Settings().reader_min_answer
    lines = []
    for t in sorted({*THRESHOLDS, default}):
        answered = sum(c >= t for c in own) / len(own)
        refused = sum(c < t for c in foreign) / len(foreign)
        mark = " (default)" if t == default else ""
        lines.append(f"| {name} | model ≥ {t:.2f}{mark} | {answered:.3f} | {refused:.3f} |")
    lines.append(f"| {name} | reader off (similarity rule) | {off[0]:.3f} | {off[1]:.3f} |")
    return lines


def run_case(corpus: EvalSet, foreign: EvalSet, root: Path) -> list[str]:
    seeds = root / corpus.name / "seeds"
    write_documents(corpus.documents, seeds)
    s = Settings(seeds_dir=seeds, index_dir=root / corpus.name / "index")
    idx = Index(s, make_embedder(s))
    idx.refresh()
    own_q = [q.question for q in corpus.questions if q.answerable]
    foreign_q = [q.question for q in foreign.questions]
    own, own_off = confidences(idx, own_q)
    other, other_off = confidences(idx, foreign_q)
    off = (sum(own_off) / len(own_off), 1 - sum(other_off) / len(other_off))
    label = f"{corpus.name} ({len(own_q)} own, {len(foreign_q)} from {foreign.name})"
    return rows_for(label, own, other, off)


def seed_rows(eval_dir: Path) -> list[str]:
    """The seed article: its answerable questions against its unanswerable ones."""
    s = Settings()
    idx = Index(s, make_embedder(s))
    seed = load_eval_set(eval_dir / "seed_questions.jsonl", s.seeds_dir)
    own = [q.question for q in seed.questions if q.answerable]
    other = [q.question for q in seed.questions if not q.answerable]
    c_own, off_own = confidences(idx, own)
    c_other, off_other = confidences(idx, other)
    off = (sum(off_own) / len(own), 1 - sum(off_other) / len(other))
    return rows_for(
        f"seed article ({len(own)} own, {len(other)} unanswerable)", c_own, c_other, off
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argument_parser(__doc__)
    add_eval_dir(p)
    add_output_options(p, TITLE)
    args = p.parse_args(argv)
    needed = ("xquad_en", "covidqa_dev", "seed_questions.jsonl")
    if missing(*(args.eval_dir / name for name in needed)):
        return 2
    started = time.perf_counter()
    sets = {name: load_eval_set(args.eval_dir / name) for name in ("xquad_en", "covidqa_dev")}
    lines = [
        "| corpus (positives, negatives) | rule | answered, own questions | refused, foreign |",
        "|---|---|---:|---:|",
    ]
    with tempfile.TemporaryDirectory(prefix="rag-refusals-") as tmp:
        for corpus, foreign in CASES:
            lines += run_case(sets[corpus], sets[foreign], Path(tmp))
            print("\n".join(lines), file=sys.stderr)
    lines += seed_rows(args.eval_dir)
    table = "\n".join(lines)
    print(table)
    minutes = (time.perf_counter() - started) / 60
    body = f"""{stamp()}
Every question of each set ({minutes:.1f} min). "answered": share of the corpus's own
answerable questions whose confidence reaches the threshold; "refused": share of the
foreign questions below it. The default threshold (`Settings.reader_min_answer`) was
chosen on the answer model's validation split, never on these sets.

{table}
"""
    publish(body, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
