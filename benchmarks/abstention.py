"""Calibrate abstention: answered rate on real questions vs refusals on foreign ones.

Positives are a corpus's own answerable questions; negatives are questions from
another set asked of that corpus (they cannot be answered there). For each
threshold pair the table shows both rates; the defaults of `Settings` are marked.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.results import command_line, stamp, write_section
from rag.api import Index
from rag.config import MODEL_PASSES, Settings
from rag.embed import SentenceTransformerEmbedder
from rag.quotes import relevant
from rag.types import Hit

REPO = Path(__file__).resolve().parent.parent
DEFAULT_EVAL = REPO.parent / "shared" / "eval"


def sample(path: Path, n: int, answerable_only: bool = False) -> list[str]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    if answerable_only:
        rows = [r for r in rows if r.get("answerable", True)]
    random.Random(0).shuffle(rows)
    return [r["question"] for r in rows[:n]]


def passages_index(path: Path, root: Path, model_pass: str) -> Index:
    (root / "seeds").mkdir(parents=True)
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        (root / "seeds" / f"{row['passage_id']}.txt").write_bytes(row["text"].encode())
    return Index(
        Settings(seeds_dir=root / "seeds", index_dir=root / "index", model_pass=model_pass),
        SentenceTransformerEmbedder(),
    )


def rates(hits: list[tuple[str, list[Hit]]], settings: Settings) -> float:
    return sum(relevant(q, h, settings) for q, h in hits) / max(1, len(hits))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL)
    parser.add_argument("--n", type=int, default=300, help="questions per side")
    parser.add_argument(
        "--model-pass",
        choices=MODEL_PASSES,
        default=Settings().model_pass,
        help="which texts the builds send to the model (Settings.model_pass)",
    )
    parser.add_argument(
        "--section", default="Abstention trade-off", help="the RESULTS.md section to rewrite"
    )
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    ev = args.eval_dir
    if not (ev / "xquad_en").exists():
        print(f"benchmark skipped: {ev} not found (pass --eval-dir)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="seedrag-abstain-"))
    seed = Index(
        Settings(
            seeds_dir=REPO / "seeds", index_dir=tmp / "seed-index", model_pass=args.model_pass
        ),
        SentenceTransformerEmbedder(),
    )
    xquad = passages_index(ev / "xquad_en" / "passages.jsonl", tmp / "xquad", args.model_pass)
    cases = {
        "seed article": (
            seed,
            sample(ev / "seed_questions.jsonl", 100, True),
            sample(ev / "xquad_en" / "questions.jsonl", args.n // 2)
            + sample(ev / "squadshifts_wiki" / "questions.jsonl", args.n // 2),
        ),
        "xquad_en passages": (
            xquad,
            sample(ev / "xquad_en" / "questions.jsonl", args.n),
            sample(ev / "covidqa_dev" / "questions.jsonl", args.n),
        ),
    }
    default = Settings(model_pass=args.model_pass)
    lines = [
        "| corpus | min_score | confident_score | answerable answered | foreign refused |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, (index, pos, neg) in cases.items():
        pos_hits = [(q, index.search(q, default.top_k)) for q in pos]
        neg_hits = [(q, index.search(q, default.top_k)) for q in neg]
        for low in (0.25, 0.30, 0.35, 0.40):
            for high in (low, 0.45, 0.55):
                if high < low:
                    continue
                s = default.with_(min_score=low, confident_score=high)
                mark = (
                    " **(default)**"
                    if (low, high) == (default.min_score, default.confident_score)
                    else ""
                )
                lines.append(
                    f"| {name} ({len(pos)} / {len(neg)}) | {low:.2f} | {high:.2f}"
                    f"{mark} | {rates(pos_hits, s):.3f} | {1 - rates(neg_hits, s):.3f} |"
                )
    body = (
        stamp(command_line()) + "\nA question is answered when its best chunk reaches "
        "`min_score` and, below `confident_score`, one of its content words occurs in "
        "the three most similar chunks. `confident_score == min_score` is the plain threshold. "
        f"Indexes built with `model_pass={args.model_pass!r}`.\n\n" + "\n".join(lines) + "\n"
    )
    print(body)
    if not args.no_write:
        write_section(args.section, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
