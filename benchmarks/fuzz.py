"""Verbatim fuzzing: generated hostile documents through read, chunk, segment and answer.

Owns the document generators (random unicode, random bytes, CRLF, BOM, repeated
paragraphs, long lines) and the checks: every chunk, sentence and citation must satisfy
``source_text[start:end] == text``. Uses the fake HashingEmbedder, in indexes of
``--per-index`` documents. Writes "## Verbatim fuzzing" in RESULTS.md.

Example:
    .venv/bin/python -m benchmarks.fuzz --docs 10000
"""

from __future__ import annotations

import logging
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import add_output_options, argument_parser, publish, stamp
from rag.api import Index
from rag.config import Settings
from rag.embedding.fake import HashingEmbedder
from rag.errors import QuestionError

WORDS = (
    "launch fuel valve rocket the a of and Dr. e.g. U.S. café naïve “quoted” ‘single’ "
    "(aside) [note] 42 3.14 1,000 — – … ok? yes! no. Ελλάδα Москва שלום مرحبا 東京 "
    "日本語。 🚀 👩‍🚀 e\u0301 \u200b \u00a0 tab\there"
).split(" ")
RANGES = (
    (0x20, 0x7E),  # ASCII
    (0xA0, 0x17F),  # Latin-1 and Latin Extended-A
    (0x300, 0x36F),  # combining marks
    (0x370, 0x3FF),  # Greek
    (0x400, 0x4FF),  # Cyrillic
    (0x590, 0x6FF),  # Hebrew, Arabic (right to left)
    (0x2000, 0x206F),  # general punctuation: spaces, dashes, quotes, bidi marks
    (0x3000, 0x30FF),  # CJK punctuation, kana
    (0x4E00, 0x4FFF),  # CJK ideographs
    (0x1F300, 0x1F6FF),  # emoji
)
CONTROLS = "\n\n\r\n\t\r\x0b\x0c\x1c\x85\u2028\u2029"


def random_unicode(rng: random.Random) -> str:
    out = []
    for _ in range(rng.randint(1, 1500)):
        if rng.random() < 0.08:
            out.append(rng.choice(CONTROLS))
        else:
            lo, hi = rng.choice(RANGES)
            out.append(chr(rng.randint(lo, hi)))
    return "".join(out)


def prose(rng: random.Random, sentences: int) -> str:
    out = []
    for _ in range(sentences):
        words = [rng.choice(WORDS) for _ in range(rng.randint(1, 25))]
        out.append(" ".join(words).capitalize() + rng.choice([".", "?", "!", "…", ".\n", "\n\n"]))
    return " ".join(out)


def random_bytes(rng: random.Random) -> bytes:
    """Random bytes; half the time only their valid UTF-8 parts are kept."""
    raw = rng.randbytes(rng.randint(1, 2000))
    if rng.random() < 0.5:
        return raw
    return raw.decode("utf-8", "ignore").encode("utf-8")


def crlf(rng: random.Random) -> bytes:
    return prose(rng, rng.randint(1, 40)).replace("\n", "\r\n").encode("utf-8")


def bom(rng: random.Random) -> bytes:
    return ("\ufeff" + prose(rng, rng.randint(1, 40))).encode("utf-8")


def repeated(rng: random.Random) -> bytes:
    paragraph = prose(rng, rng.randint(1, 6))
    sep = rng.choice(["\n\n", "\n", " ", "\r\n\r\n", ""])
    return sep.join([paragraph] * rng.randint(2, 30)).encode("utf-8")


def long_line(rng: random.Random) -> bytes:
    words = [rng.choice(WORDS).replace("\n", " ") for _ in range(rng.randint(1000, 8000))]
    return " ".join(words).replace("\n", " ").encode("utf-8")


GENERATORS: dict[str, Callable[[random.Random], bytes]] = {
    "random unicode": lambda rng: random_unicode(rng).encode("utf-8"),
    "random bytes": random_bytes,
    "CRLF prose": crlf,
    "BOM prose": bom,
    "repeated paragraphs": repeated,
    "long line": long_line,
    "prose": lambda rng: prose(rng, rng.randint(1, 80)).encode("utf-8"),
}


@dataclass
class Tally:
    """What was generated and checked, and every broken contract found."""

    kinds: Counter[str] = field(default_factory=Counter)
    documents: int = 0
    indexed: int = 0
    chunks: int = 0
    sentences: int = 0
    answers: int = 0
    not_questions: int = 0  # refused with QuestionError: no letter or digit in them
    citations: int = 0
    failures: list[str] = field(default_factory=list)

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            self.failures.append(what)


def write_batch(seeds: Path, rng: random.Random, n: int, tally: Tally) -> dict[str, bytes]:
    """Write ``n`` generated documents into ``seeds``; returns name -> bytes."""
    seeds.mkdir(parents=True)
    written = {}
    for i in range(n):
        kind = rng.choice(list(GENERATORS))
        data = GENERATORS[kind](rng)
        name = f"d{i:04d}.{rng.choice(['txt', 'md'])}"
        (seeds / name).write_bytes(data)
        written[name] = data
        tally.kinds[kind] += 1
    (seeds / "anchor.txt").write_bytes(b"Anchor text about the launch and its fuel valve.\n")
    written["anchor.txt"] = (seeds / "anchor.txt").read_bytes()
    tally.documents += n
    return written


def check_index(index: Index, written: dict[str, bytes], tally: Tally) -> None:
    """Every indexed source is its bytes decoded; every chunk and sentence is verbatim."""
    stored = index.current()
    tally.indexed += len(stored.sources) - 1  # not the anchor
    texts = {source: index.source_text(source) for source in stored.sources}
    for source, text in texts.items():
        tally.check(text == written[source].decode("utf-8"), f"{source}: text is not the bytes")
    for kind, items in (("chunk", stored.chunks), ("sentence", stored.sentences)):
        for item in items:
            ok = texts[item.source][item.start : item.end] == item.text
            tally.check(ok, f"{item.source}: {kind} {item.start}-{item.end} not verbatim")
    tally.chunks += len(stored.chunks)
    tally.sentences += len(stored.sentences)


def questions(rng: random.Random, index: Index, n: int) -> list[str]:
    """Questions from indexed sentences' words, and random unicode ones."""
    sentences = index.current().sentences
    out = []
    for _ in range(n):
        if sentences and rng.random() < 0.7:
            words = rng.choice(sentences).text.split()
            out.append(" ".join(words[: rng.randint(1, 8)]))
        else:
            out.append(random_unicode(rng)[:200])
    return [q for q in out if q.replace("\x00", " ").strip()]


def check_answers(index: Index, written: dict[str, bytes], qs: list[str], tally: Tally) -> None:
    """Every citation is verbatim in the file's bytes decoded and in `Index.source_text`."""
    for q in qs:
        try:
            answer = index.answer(q)
        except QuestionError:
            tally.not_questions += 1
            tally.check(not any(c.isalnum() for c in q), f"{q[:40]!r} refused as no question")
            continue
        tally.answers += 1
        for c in answer.citations:
            raw = written[c.source].decode("utf-8")
            ok = raw[c.start : c.end] == c.quote == index.source_text(c.source)[c.start : c.end]
            tally.check(ok, f"{c.source}: citation {c.start}-{c.end} for {q[:40]!r} not verbatim")
            tally.citations += 1


def run_batch(root: Path, rng: random.Random, n: int, n_questions: int, tally: Tally) -> None:
    written = write_batch(root / "seeds", rng, n, tally)
    settings = Settings(seeds_dir=root / "seeds", index_dir=root / "index", min_score=-1.0)
    index = Index(settings, HashingEmbedder())
    check_index(index, written, tally)
    check_answers(index, written, questions(rng, index, n_questions), tally)


def report(tally: Tally, seconds: float) -> tuple[str, str]:
    """The one-line summary, and the RESULTS.md body."""
    line = (
        f"fuzz: {tally.documents} documents ({tally.indexed} indexed, "
        f"{tally.documents - tally.indexed} skipped), {tally.chunks} chunks and "
        f"{tally.sentences} sentences checked, {tally.answers} answers ({tally.not_questions} "
        f"questions without words refused), {tally.citations} "
        f"citations checked, failures={len(tally.failures)}, {seconds:.1f}s"
    )
    rows = ["| kind | documents |", "|---|---:|"]
    rows += [f"| {kind} | {n} |" for kind, n in sorted(tally.kinds.items())]
    body = (
        stamp() + "\n" + "\n".join(rows) + "\n\n" + line + "\n\n"
        "Skipped documents are random bytes that are not UTF-8 or contain NUL: they are "
        "logged and left out, as in a real seeds folder. Uses the HashingEmbedder: this "
        "checks offsets, not answer quality.\n"
    )
    return line, body


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--docs", type=int, default=10_000, help="documents (default 10000)")
    parser.add_argument("--per-index", type=int, default=500, help="documents per index")
    parser.add_argument("--questions", type=int, default=100, help="questions per index")
    parser.add_argument("--seed", type=int, default=0)
    add_output_options(parser, "Verbatim fuzzing")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # skipped random bytes would log thousands of lines
    rng, tally = random.Random(args.seed), Tally()
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="seedrag-fuzz-"))
    try:
        for b, lo in enumerate(range(0, args.docs, args.per_index)):
            n = min(args.per_index, args.docs - lo)
            run_batch(root / f"b{b}", rng, n, args.questions, tally)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    line, body = report(tally, time.perf_counter() - started)
    print(line)
    for failure in tally.failures[:10]:
        print("FAIL", failure, file=sys.stderr)
    publish(body, args)
    return 1 if tally.failures else 0


if __name__ == "__main__":
    sys.exit(main())
