"""Abstention by the answer model: answered-when-answerable against refused-when-not.

For each reporting corpus, its own answerable questions are the positives; questions of
another set asked of it (they cannot be answered there) are the negatives. Each question's
confidence is the probability that the best retrieved chunk answers it: the model's
reading weighed with retrieval's evidence (`rag.query.reading.Readings.confidence`, what
`Settings.reader_min_answer` is compared with); the table sweeps that threshold and marks
the default, then both it and the model's own probability (`Readings.model`) at the
thresholds that answer 99% ... 90% of the own questions, so that the two compare at equal
answered rates. The similarity rule of ``reader="off"`` is measured on the same questions
in the same run.

The threshold and the evidence weights were chosen on the answer model's validation
split (SQuADShifts articles held out of training, see rag/reader/weights/MODEL_CARD.md);
these corpora never chose them.
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

import math
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

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
# The curve is tabled at the thresholds that answer these shares of a corpus's own questions,
# so that the two rules compare at equal answered rates.
RATES = (0.99, 0.98, 0.97, 0.96, 0.95, 0.90)
# (corpus, the set whose questions are foreign to it)
CASES = (("xquad_en", "covidqa_dev"), ("covidqa_dev", "xquad_en"))


class Confidences(NamedTuple):
    """Per question: the default confidence, the model's alone, whether reader off answered."""

    weighed: list[float]
    model: list[float]
    answered_off: list[bool]


def confidences(idx: Index, questions: Sequence[str]) -> Confidences:
    """Each question's confidence, with and without retrieval's evidence, and whether
    ``reader="off"`` answered it."""
    reader = load_reader()
    stored = idx.current()
    lookup = SentenceFeatures(stored, idx.settings.max_quote_sentences)
    off = Index(idx.settings.with_(reader="off"), idx.embedder)
    out = Confidences([], [], [])
    for q in questions:
        hits = idx.search(q)
        reading = read(reader, stored, lookup, q, hits, idx.settings.reader_evidence)
        out.weighed.append(reading.confidence)
        out.model.append(max(reading.model, default=0.0))
        out.answered_off.append(off.answer(q).answered)
    return out


def at_rate(own: list[float], rate: float) -> float:
    """The highest confidence threshold that ``rate`` of ``own`` still reach."""
    ranked = sorted(own)
    return ranked[min(len(ranked) - 1, math.floor((1 - rate) * len(ranked)))]


def rows_for(name: str, own: Confidences, foreign: Confidences) -> list[str]:
    """The default rule, then each rule at the thresholds that answer `RATES` of ``own``."""
    lines = []

    def row(label: str, yes: list[float], no: list[float], t: float) -> str:
        answered = sum(c >= t for c in yes) / len(yes)
        refused = sum(c < t for c in no) / len(no)
        return f"| {name} | {label} ≥ {t:.3g} | {answered:.3f} | {refused:.3f} |"

    default = Settings().reader_min_answer
    lines.append(row("model + evidence (default)", own.weighed, foreign.weighed, default))
    for label, yes, no in (
        ("model + evidence", own.weighed, foreign.weighed),
        ("model alone", own.model, foreign.model),
    ):
        thresholds = dict.fromkeys(at_rate(yes, r) for r in RATES)  # few questions: repeats
        lines += [row(label, yes, no, t) for t in thresholds]
    answered = sum(own.answered_off) / len(own.answered_off)
    refused = 1 - sum(foreign.answered_off) / len(foreign.answered_off)
    lines.append(f"| {name} | reader off (similarity rule) | {answered:.3f} | {refused:.3f} |")
    return lines


def run_case(corpus: EvalSet, foreign: EvalSet, root: Path) -> list[str]:
    seeds = root / corpus.name / "seeds"
    write_documents(corpus.documents, seeds)
    s = Settings(seeds_dir=seeds, index_dir=root / corpus.name / "index")
    idx = Index(s, make_embedder(s))
    idx.refresh()
    own_q = [q.question for q in corpus.questions if q.answerable]
    foreign_q = [q.question for q in foreign.questions]
    label = f"{corpus.name} ({len(own_q)} own, {len(foreign_q)} from {foreign.name})"
    return rows_for(label, confidences(idx, own_q), confidences(idx, foreign_q))


def seed_rows(eval_dir: Path) -> list[str]:
    """The seed article: its answerable questions against its unanswerable ones."""
    s = Settings()
    idx = Index(s, make_embedder(s))
    seed = load_eval_set(eval_dir / "seed_questions.jsonl", s.seeds_dir)
    own = [q.question for q in seed.questions if q.answerable]
    other = [q.question for q in seed.questions if not q.answerable]
    label = f"seed article ({len(own)} own, {len(other)} unanswerable)"
    return rows_for(label, confidences(idx, own), confidences(idx, other))


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
foreign questions below it. Below the default, each rule is shown at the thresholds that
answer 99%, 98%, 97%, 96%, 95% and 90% of the own questions: compare the rules at equal
"answered". "model + evidence" is the default confidence (the model's
probability weighed with retrieval's evidence, `Settings.reader_evidence`); "model alone"
is the model's own probability, as before the evidence was weighed in. The default
threshold (`Settings.reader_min_answer`) and the evidence weights were chosen on the
answer model's validation split, never on these sets.

{table}
"""
    publish(body, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
