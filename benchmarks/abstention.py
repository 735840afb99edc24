r"""Calibrate abstention: answered rate on real questions vs refusals on foreign ones.

Positives are a corpus's own answerable questions; negatives are questions from
another set asked of that corpus (they cannot be answered there). For each
threshold pair the table shows both rates; the defaults of `Settings` are marked.

The thresholds are chosen on the calibration corpus (400 squadshifts_wiki passages,
with foreign questions that the other corpora's rows do not use) and checked on the
seed article and the xquad_en passages, which the choice never sees. Writes "## Abstention
trade-off" in RESULTS.md.

Example:
    .venv/bin/python -m benchmarks.abstention --model-pass sentences \
        --section "Abstention trade-off, sentences-only model pass"
"""

from __future__ import annotations

import random
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import (
    REPO,
    add_eval_dir,
    add_output_options,
    argument_parser,
    missing,
    publish,
    question_texts,
    read_jsonl,
    stamp,
    write_passages,
)
from rag.api import Index
from rag.config import DEFAULT_MODEL_PASS, MODEL_PASSES, Settings
from rag.embedding.torch import SentenceTransformerEmbedder
from rag.query.question import clean_question
from rag.query.quotes import relevant
from rag.query.retrieve import LexicalIndex, depth, fuse
from rag.types import Hit

Signals = list[tuple[str, list[Hit]]]  # each question with what it retrieved
Case = tuple[Index, list[str], list[str]]  # an index, its own questions, foreign questions

CALIBRATION_PASSAGES = 400


def sample(path: Path, n: int, answerable_only: bool = False) -> list[str]:
    rows = list(read_jsonl(path))
    if answerable_only:
        rows = [r for r in rows if r.get("answerable", True)]
    random.Random(0).shuffle(rows)
    return [r["question"] for r in rows[:n]]


def passages_index(
    path: Path, root: Path, model_pass: str, keep: Callable[[str], bool] = lambda _: True
) -> Index:
    write_passages((r for r in read_jsonl(path) if keep(r["passage_id"])), root / "seeds")
    return Index(
        Settings(seeds_dir=root / "seeds", index_dir=root / "index", model_pass=model_pass),
        SentenceTransformerEmbedder(),
    )


def signals(index: Index, questions: list[str], k: int) -> Signals:
    """What `relevant` sees of each question: its hits, scored by their closest sentence."""
    return [(q, index.search(q, k)) for q in questions]


def rates(cases: Signals, settings: Settings) -> float:
    return sum(relevant(q, hits, settings) for q, hits in cases) / max(1, len(cases))


def calibration_case(ev: Path, tmp: Path, model_pass: str, n: int) -> Case:
    """400 squadshifts_wiki passages, ``n`` of their questions, and ``n`` foreign ones
    (covidqa_dev and xquad_en questions that the test rows do not ask)."""
    squad = ev / "squadshifts_wiki"
    passages = list(read_jsonl(squad / "passages.jsonl"))
    random.Random(1).shuffle(passages)
    kept = {p["passage_id"] for p in passages[:CALIBRATION_PASSAGES]}
    index = passages_index(squad / "passages.jsonl", tmp / "cal", model_pass, kept.__contains__)
    own = question_texts(squad / "questions.jsonl", kept)
    random.Random(1).shuffle(own)
    foreign: list[str] = []
    for name, used in (("covidqa_dev", n), ("xquad_en", n)):
        tested = set(sample(ev / name / "questions.jsonl", used))
        rest = [q for q in question_texts(ev / name / "questions.jsonl") if q not in tested]
        random.Random(2).shuffle(rest)
        foreign += rest[: n // 2]
    return index, own[:n], foreign


def corpora(ev: Path, tmp: Path, model_pass: str, n: int) -> dict[str, Case]:
    """Each corpus with its own questions and foreign ones; the calibration corpus first."""
    seed = Index(
        Settings(seeds_dir=REPO / "seeds", index_dir=tmp / "seed-index", model_pass=model_pass),
        SentenceTransformerEmbedder(),
    )
    xquad = passages_index(ev / "xquad_en" / "passages.jsonl", tmp / "xquad", model_pass)
    return {
        "squadshifts_wiki calibration": calibration_case(ev, tmp, model_pass, n),
        "seed article": (
            seed,
            sample(ev / "seed_questions.jsonl", 100, True),
            sample(ev / "xquad_en" / "questions.jsonl", n // 2)
            + sample(ev / "squadshifts_wiki" / "questions.jsonl", n // 2),
        ),
        "xquad_en passages": (
            xquad,
            sample(ev / "xquad_en" / "questions.jsonl", n),
            sample(ev / "covidqa_dev" / "questions.jsonl", n),
        ),
    }


def best_chunk(index: Index, questions: list[str], k: int) -> Signals:
    """The replaced rule's signals: dense (chunk vectors) and BM25 fused by reciprocal
    rank, each hit scored by its chunk's cosine rather than its closest sentence's."""
    stored = index.current()
    lexical = LexicalIndex(stored)
    out: Signals = []
    for q in questions:
        text = clean_question(q)
        query = index.embedder.embed_query(text)
        n = depth(k)
        best = fuse((stored.chunk_index.search(query, n), lexical.search(text, n)), k)
        cosines = stored.chunk_index.scores(query, best)
        hits = [
            Hit(stored.chunks[r], s, i) for i, (r, s) in enumerate(zip(best, cosines, strict=True))
        ]
        out.append((q, hits))
    return out


def main() -> int:
    parser = argument_parser(__doc__)
    add_eval_dir(parser)
    parser.add_argument("--n", type=int, default=300, help="questions per side")
    parser.add_argument(
        "--model-pass",
        choices=MODEL_PASSES,
        default=DEFAULT_MODEL_PASS,
        help="which texts the builds send to the model (Settings.model_pass)",
    )
    add_output_options(parser, "Abstention trade-off")
    args = parser.parse_args()
    ev = args.eval_dir
    sets = ("xquad_en", "squadshifts_wiki", "covidqa_dev", "seed_questions.jsonl")
    if missing(*(ev / name for name in sets)):
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="seedrag-abstain-"))
    default = Settings(model_pass=args.model_pass)
    lines = [
        "| corpus | min_score | confident_score | answerable answered | foreign refused |",
        "|---|---:|---:|---:|---:|",
    ]
    summary = [
        "| corpus | rule | answerable answered | foreign refused |",
        "|---|---|---:|---:|",
    ]
    before = Settings(model_pass="both", min_score=0.30, confident_score=0.45)
    old_cases = corpora(ev, tmp / "before", before.model_pass, args.n)
    for name, (index, pos, neg) in corpora(ev, tmp, args.model_pass, args.n).items():
        pos_hits = signals(index, pos, default.top_k)
        neg_hits = signals(index, neg, default.top_k)
        for low in (0.30, 0.35, 0.375, 0.40, 0.45):
            for high in sorted({low, 0.45, 0.50, 0.60}):
                if high < low:
                    continue
                s = default.with_(min_score=low, confident_score=high)
                mark = (
                    " **(default)**"
                    if (low, high) == (default.min_score, default.confident_score)
                    else ""
                )
                lines.append(
                    f"| {name} ({len(pos)} / {len(neg)}) | {low:.3f} | {high:.3f}"
                    f"{mark} | {rates(pos_hits, s):.3f} | {1 - rates(neg_hits, s):.3f} |"
                )
        summary.append(
            f"| {name} | closest sentence, {default.min_score} / {default.confident_score}, "
            f"model_pass {default.model_pass!r} (now) | {rates(pos_hits, default):.3f} "
            f"| {1 - rates(neg_hits, default):.3f} |"
        )
        old, pos, neg = old_cases[name]
        old_pos, old_neg = best_chunk(old, pos, default.top_k), best_chunk(old, neg, default.top_k)
        summary.append(
            f"| {name} | best chunk, {before.min_score} / {before.confident_score}, model_pass "
            f"{before.model_pass!r} (until 2026-11-26) | {rates(old_pos, before):.3f} "
            f"| {1 - rates(old_neg, before):.3f} |"
        )
    body = (
        stamp() + "\nA question is answered when the closest sentence of its "
        "retrieved chunks reaches `min_score` and, below `confident_score`, one of its "
        "content words occurs in the three most similar chunks. `confident_score == "
        "min_score` is the plain threshold. The calibration rows choose the thresholds; "
        "the other two corpora are held out. Indexes built with "
        f"`model_pass={args.model_pass!r}`.\n\n" + "\n".join(lines) + "\n\n"
        "The defaults against the rule they replaced (the best chunk's similarity, on "
        "indexes that embed every chunk itself), same questions:\n\n" + "\n".join(summary) + "\n"
    )
    print(body)
    publish(body, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
