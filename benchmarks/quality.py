"""Answer quality: seedrag against the LangChain-tutorial baseline on the reporting sets.

Every system runs in one process, on the same questions and documents, with the same MiniLM
model, and is scored by the same code (`rag.evaluation.evaluate`): the tutorial baseline, then
seedrag with each `Settings.reader` mode over one index (the ablation of the answer model:
"off" is similarity and lexical features alone, "rerank" and "windows" use one half of
the model, "full" is the default). By default every question of every set is asked.
Prints one Markdown table and writes it into benchmarks/RESULTS.md under "## Answer quality".

squadshifts_wiki trains the answer model and is no reporting set; it can still be run.
squadshifts_reddit and squadshifts_amazon are SQuADShifts' Reddit posts and Amazon reviews:
large pools of short informal documents (the files and where they come from:
docs/benchmarks.md); the section says which of them the shipped model trained on. Any
other set can be named by its path: a folder in the shared/eval format, or a SQuAD-format
.json file.

Example:
    .venv/bin/python -m benchmarks.quality --sets xquad_en,seed_questions
"""

from __future__ import annotations

import os

# Before anything loads OpenMP (faiss, torch): threads that busy-wait slow single queries.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import json
import logging
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.baseline import CHUNK_OVERLAP, CHUNK_SIZE, TOP_K, build_baseline
from benchmarks.common import (
    REPO,
    add_eval_dir,
    add_output_options,
    argument_parser,
    missing,
    publish,
    stamp,
)
from rag.config import (
    DEFAULT_MODEL_PASS,
    DEFAULT_RUNTIME,
    MODEL_ALONE,
    MODEL_PASSES,
    READER_MODES,
    RUNTIMES,
    Settings,
)
from rag.embedding.factory import make_embedder
from rag.embedding.torch import load_model
from rag.evaluation.evaluate import (
    EvalReport,
    evaluate_readers,
    evaluate_set,
    format_table,
    report_row,
)
from rag.evaluation.sets import BIG_SET_DOCS, SAMPLE_SEED, SAMPLED_OTHERS, load_eval_set, take
from rag.reader.model import MODEL_DIR

SETS = {
    "xquad_en": "xquad_en",
    "covidqa_dev": "covidqa_dev",
    "seed_questions": "seed_questions.jsonl",
    "squadshifts_wiki": "squadshifts_wiki",
    "squadshifts_reddit": "squadshifts/reddit_v1.0.json",
    "squadshifts_amazon": "squadshifts/amazon_reviews_v1.0.json",
}
# SQuADShifts' informal domains. Held out unless the shipped model trained on them
# (`trained_on`): the section says which.
INFORMAL = ("squadshifts_reddit", "squadshifts_amazon")
REPORTING = ("xquad_en", "covidqa_dev", "seed_questions")
TITLE = "Answer quality"
DEFAULT_LIMIT = 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argument_parser(__doc__)
    add_eval_dir(p)
    p.add_argument(
        "--sets",
        default=",".join(REPORTING),
        help=f"comma-separated sets of {', '.join(SETS)}, or paths to sets "
        f"(default: {', '.join(REPORTING)})",
    )
    p.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        help="a random sample of N questions per set (fixed seed), 0 for all (default)",
    )
    p.add_argument(
        "--seeds",
        type=Path,
        default=REPO / "seeds",
        help="documents of seed_questions.jsonl (default: ./seeds)",
    )
    p.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default=DEFAULT_RUNTIME,
        help=f"what runs seedrag's model (default {DEFAULT_RUNTIME}); the baseline is torch",
    )
    p.add_argument(
        "--model-pass",
        choices=MODEL_PASSES,
        default=DEFAULT_MODEL_PASS,
        help="which texts seedrag's build sends to the model (Settings.model_pass)",
    )
    p.add_argument(
        "--readers",
        default=",".join(READER_MODES[::-1]),
        help="comma-separated Settings.reader modes to compare (default: off,windows,rerank,full)",
    )
    add_output_options(p, TITLE)
    p.add_argument(
        "--dump",
        type=Path,
        metavar="JSONL",
        help="also write every question's citations and scores here",
    )
    args = p.parse_args(argv)
    args.sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = [s for s in args.sets if s not in SETS and not is_path(s)]
    if unknown or not args.sets:
        p.error(
            f"unknown set {unknown[0] if unknown else '(none)'}: choose from {', '.join(SETS)} "
            "or name a set by its path"
        )
    args.readers = [m.strip() for m in args.readers.split(",") if m.strip()]
    if not args.readers or any(m not in READER_MODES for m in args.readers):
        p.error(f"--readers takes modes of {', '.join(READER_MODES)}")
    if args.limit < 0:
        p.error(f"--limit must be >= 0, not {args.limit}")
    return args


def is_path(name: str) -> bool:
    """Whether a ``--sets`` entry names a set by its path rather than by a name of `SETS`."""
    return "/" in name or name.endswith(".json")


def set_path(name: str, eval_dir: Path) -> Path:
    """Where the set ``name`` (a name of `SETS` or a path) is read from."""
    return eval_dir / SETS[name] if name in SETS else Path(name)


def run_set(path: Path, args: argparse.Namespace) -> list[tuple[str, EvalReport]]:
    """Baseline then seedrag on one set; the same questions and documents for both."""
    eval_set = take(load_eval_set(path, args.seeds), args.limit or None)
    print(
        f"{eval_set.name}: {len(eval_set.questions)} questions, "
        f"{len(eval_set.documents)} documents",
        file=sys.stderr,
    )
    settings = Settings(runtime=args.runtime, model_pass=args.model_pass)
    embedder = make_embedder(settings)
    out = [("baseline", evaluate_set(eval_set, build_baseline(progress=True), progress=True))]
    reports = evaluate_readers(eval_set, settings, args.readers, embedder, progress=True)
    out += [(f"seedrag, reader {m}", r) for m, r in zip(args.readers, reports, strict=True)]
    if "full" in args.readers:  # the same path with the model deciding alone
        alone = settings.with_(reader_evidence=MODEL_ALONE, reader_min_answer=alone_threshold())
        (report,) = evaluate_readers(eval_set, alone, ["full"], embedder, progress=True)
        out.append(("seedrag, reader full, model alone", report))
    return out


def alone_threshold() -> float:
    """The threshold tuning chose for the model's own probability (same rule, same split)."""
    tuning = json.loads((MODEL_DIR / "tuning.json").read_text("utf-8"))
    return float(tuning["reader_min_answer_model_alone"])


def dump(path: Path, reports: list[tuple[str, EvalReport]]) -> None:
    """One JSON line per (system, question): gold data, retrieved sources and citations."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for system, report in reports:
            for r in report.results:
                q = r.question
                row = {
                    "set": report.name,
                    "system": system,
                    "qid": q.qid,
                    "question": q.question,
                    "doc": q.doc,
                    "answers": list(q.answers),
                    "answerable": q.answerable,
                    "retrieved": list(r.retrieved),
                    "seconds": round(r.seconds, 4),
                    "citations": [c.to_dict() for c in r.citations],
                }
                f.write(json.dumps(row, ensure_ascii=False) + "\n")


def section(
    table: str, minutes: float, limit: int, settings: Settings, sets: Sequence[str] = ()
) -> str:
    """The body of the "Answer quality" section: provenance, the table, definitions."""
    s = settings
    trained = trained_on()
    later = (
        f"later quotes from chunks at least {s.reader_quote_ratio} as likely to answer as the "
        "first's"
        if s.reader_quote_ratio > 0
        else "every later quote kept: `reader_quote_ratio` is 0"
    )
    chosen = (
        f"plus {s.reader_weight} times the model's probability for the window's best sentence"
        if s.reader_weight > 0
        else "the model's sentence probabilities not added: `reader_weight` is 0"
    )
    if s.reader_bridge is not None:
        later += (
            "; a quote grows over the sentence between it and the next window when the model "
            f"finds that window at least {s.reader_bridge} as likely to hold the answer"
        )
    if s.reader_widen is not None:
        later += (
            f"; an answer whose best chunk is under {s.reader_widen} likely to answer also "
            "reads the chunks a retrieval of twice top_k adds, for the places after the first "
            "quote"
        )
    changed = f'runtime="{s.runtime}"' + (
        f', model_pass="{s.model_pass}"' if s.model_pass != DEFAULT_MODEL_PASS else ""
    )
    return f"""{stamp()}
The whole run took {minutes:.1f} min on 2 cores that other work may have shared: read
latencies as upper bounds.

{table}

- **baseline**: the LangChain RAG tutorial. `RecursiveCharacterTextSplitter(chunk_size={CHUNK_SIZE},
  chunk_overlap={CHUNK_OVERLAP})`, the same bundled all-MiniLM-L6-v2, FAISS inner product on
  unit vectors, the top {TOP_K} whole chunks cited. It never abstains.
- **seedrag**: `Settings({changed})`, otherwise the defaults: chunks of
  {s.chunk_size} characters ({s.chunk_overlap} overlap), {s.retrieval} retrieval of the top
  {s.top_k} chunks, at most {s.max_citations} quotes of at most {s.max_quote_sentences}
  sentences; model pass `{s.model_pass}`. One index per set serves every reader mode:
  - **reader off**: quotes by similarity and lexical features; abstains when the closest
    sentence's similarity is below {s.min_score} (or below {s.confident_score} when no
    question word is in the top chunks).
  - **reader full** (the default): the answer model reads the {s.top_k} chunks with the
    question; each chunk's probability of answering weighs the model's with retrieval's
    evidence (`reader_evidence`); it abstains when no chunk reaches {s.reader_min_answer},
    and quotes the windows that score best on the features of reader off, each chunk
    counting by its probability, {chosen} ({later}). **reader full, model alone**: the same
    with the model's own probability (`reader_evidence=(0, 1, 0, 0)`) and the threshold the
    same tuning rule chose for it ({alone_threshold()}).
  - **reader rerank**: the model orders the chunks and decides abstention; similarity picks
    the quotes inside the best 2. **reader windows**: the chunks keep retrieval's order and
    similarity; the model decides abstention and its sentence probabilities join the window
    score as in reader full.
- **questions**: {"a random sample of " + str(limit) if limit else "all"} questions of each
  set (sampled with seed {SAMPLE_SEED}, never the first N). Every document of the set is
  indexed, except for squadshifts_wiki (more than {BIG_SET_DOCS} documents) when sampled:
  the gold passages of those questions plus {SAMPLED_OTHERS} others drawn with seed
  {SAMPLE_SEED}. {training_data(trained)}{held_out(sets, trained)}
- **hit@k**: share of answerable questions whose first k citations include one from the gold
  document that contains a gold answer (case-sensitive substring; whitespace around the gold
  text ignored). Longer quotes hit more easily: read hit@k together with quote chars.
- **recall@5**: gold document among the sources of the top 5 retrieved chunks (each
  system's own chunks).
- **quote chars p50**: median length of all cited quotes. **quotes per answer**: mean
  number of quotes of the answers that cite any.
- **abstention**: unanswerable questions answered with no citation. **wrong refusals**:
  answerable questions answered with no citation.
- **verbatim**: citations with `text[start:end] == quote`.
- **latency p50**: one question at a time, warm, query embedding included. **index s**:
  time to chunk and embed the set's documents (model already loaded).
"""


def held_out(sets: Sequence[str], trained: set[str]) -> str:
    """The section's words on SQuADShifts' informal domains, when the run asked them: which
    of them the shipped answer model trained on (``trained``, `trained_on`) and which
    nothing here has seen."""
    asked = [name for name in INFORMAL if name in sets]
    if not asked:
        return ""
    seen = [n for n in asked if Path(SETS[n]).name in trained]
    unseen = [n for n in asked if n not in seen]
    words = [
        "SQuADShifts' informal domains (CC BY 4.0; one document per post or review; the table"
        " names each by its file): "
        + "; ".join(f"{name} is {Path(SETS[name]).stem}" for name in asked)
        + "."
    ]
    if seen:
        words.append(
            f"{' and '.join(seen)}: training data of the answer model (`training.train --extra`),"
            " so no held-out set."
        )
    if unseen:
        words.append(f"{' and '.join(unseen)}: never trained or tuned on.")
    return "\n  " + "\n  ".join(textwrap.wrap(" ".join(words), 88))


def training_data(trained: set[str]) -> str:
    """The section's sentence on what the shipped answer model trained on beside
    squadshifts_wiki (``trained``, `trained_on`)."""
    extra = sorted(trained)
    if not extra:
        return "squadshifts_wiki is the answer model's training data."
    return f"The answer model trained on squadshifts_wiki and {', '.join(extra)}."


def trained_on() -> set[str]:
    """The file names of the SQuAD-format files the shipped answer model trained on beside
    SQuADShifts' Wikipedia articles (``training.train --extra``)."""
    metrics = json.loads((MODEL_DIR / "metrics.json").read_text("utf-8"))
    return set(metrics.get("extra_training_data", []))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    paths = {name: set_path(name, args.eval_dir) for name in args.sets}
    if missing(*paths.values()):
        return 2
    started = time.perf_counter()
    load_model()  # once, before any timing: neither system's index time includes it
    reports = [(system, r) for path in paths.values() for system, r in run_set(path, args)]
    minutes = (time.perf_counter() - started) / 60
    table = format_table([{"set": r.name, "system": s, **report_row(r)} for s, r in reports])
    print(table)
    print(f"total {minutes:.1f} min", file=sys.stderr)
    if args.dump:
        dump(args.dump, reports)
    settings = Settings(runtime=args.runtime, model_pass=args.model_pass)
    publish(section(table, minutes, args.limit, settings, args.sets), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
